"""The shared columns: values, deltas, which cell is best, and the Markdown and JSON renderings."""

from __future__ import annotations

import json

from rich.console import Console

from distill.report.tables import best_rows, markdown, rich_table, table_rows, to_json


def test_rows_hold_deltas_to_the_baseline(comparison):
    rows = table_rows(comparison)
    assert [r["delta_miou"] for r in rows] == [0.0, 2.5, 10.0]
    assert rows[2]["params_m"] == 9.0 and rows[2]["file_mb"] == 36.0
    assert rows[1]["latency_ms"] == 12.0 and rows[1]["latency_p90_ms"] == 13.0


def test_best_per_column_with_ties_and_no_best_when_all_tie(comparison):
    best = best_rows(table_rows(comparison))
    assert best["miou"] == {2} and best["boundary_iou"] == {1}
    assert best["params_m"] == {0, 1} and best["latency_ms"] == {0}  # a tie highlights both
    assert "delta_miou" not in best and "name" not in best
    comparison.entries = comparison.entries[:2]
    assert "params_m" not in best_rows(table_rows(comparison))  # every row ties: nothing stands out


def test_markdown_bolds_the_best_and_states_how_things_were_measured(comparison):
    text = markdown(comparison)
    lines = text.splitlines()
    assert lines[0].startswith("| model | method | mIoU % | Δ mIoU |")
    assert lines[2].split(" | ")[:4] == ["| ce", "ce", "60.00", "baseline"]
    assert "| big | ce+cwd | **70.00** | +10.00 |" in text
    assert "GFLOPs at 1x3x48x64 (2 FLOPs per multiply-add)" in text
    assert "cpu, 1 torch thread(s)" in text


def test_json_is_complete_and_serialisable(comparison):
    data = json.loads(json.dumps(to_json(comparison)))
    assert data["baseline"] == "ce" and data["input_size"] == [48, 64]
    assert data["latency"] == {"device": "cpu", "threads": 1, "repeats": 2, "warmup": 1, "batch": 1, "interleaved": True}
    assert data["best"]["miou"] == ["big"]
    assert data["models"][1]["per_class_iou"] == {"sky": 91.0, "road": 34.0, "pole": None}
    assert data["models"][2]["latency_samples_ms"] == [40.0, 50.0]


def test_rich_table_marks_best_cells_green(comparison):
    console = Console(width=220, force_terminal=True, color_system="standard")
    with console.capture() as captured:
        console.print(rich_table(comparison))
    out = captured.get()
    assert "\x1b[1;32m70.00\x1b[0m" in out  # best mIoU: bold green
    assert "\x1b[1;32m60.00" not in out and "baseline" in out and "+10.00" in out
    assert "cpu, 1 torch thread(s)" in out


def test_rich_table_stays_readable_at_80_columns(comparison):
    console = Console(width=80)
    with console.capture() as captured:
        console.print(rich_table(comparison, 80))
    out = captured.get()
    assert "…" not in out and max(len(line) for line in out.splitlines()) <= 80
    header = next(line for line in out.splitlines() if "mIoU" in line)
    assert all(label in header for label in ("model", "mIoU %", "Δ", "GFLOPs", "ms (med.)"))
    assert "70.00" in out and "+10.00" in out and "big" in out  # the figures themselves are whole
    full = Console(width=220)
    with full.capture() as captured_full:
        full.print(rich_table(comparison, 220))
    assert "trimap IoU %" in captured_full.get() and "p90 ms" in captured_full.get()
