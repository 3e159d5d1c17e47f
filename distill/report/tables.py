"""One set of columns, rendered three ways: a rich table, Markdown, and JSON.

The columns are defined once so the terminal, the Markdown file and the HTML page cannot
disagree about what is shown or which value counts as best.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from rich.table import Table

from distill.report.compare import Comparison, Entry


@dataclass(frozen=True)
class Column:
    key: str
    label: str
    better: str | None = None  # "high" or "low": which value is highlighted as best
    digits: int = 2


COLUMNS = (
    Column("name", "model"),
    Column("method", "method"),
    Column("miou", "mIoU %", "high"),
    Column("delta_miou", "Δ mIoU"),
    Column("boundary_iou", "boundary IoU %", "high"),
    Column("trimap_iou", "trimap IoU %", "high"),
    Column("params_m", "params (M)", "low"),
    Column("gflops", "GFLOPs", "low", 3),
    Column("latency_ms", "latency ms (median)", "low"),
    Column("latency_p90_ms", "p90 ms", "low"),
    Column("file_mb", "file MB", "low"),
)


def row_values(entry: Entry, baseline: Entry) -> dict[str, Any]:
    miou, base = entry.metrics.get("miou"), baseline.metrics.get("miou")
    return {
        "name": entry.name,
        "method": entry.method,
        "miou": miou,
        "delta_miou": None if miou is None or base is None else miou - base,
        "boundary_iou": entry.metrics.get("boundary_iou"),
        "trimap_iou": entry.metrics.get("trimap_iou"),
        "params_m": None if entry.params is None else entry.params / 1e6,
        "gflops": entry.gflops,
        "latency_ms": entry.latency.median_ms if entry.latency else None,
        "latency_p90_ms": entry.latency.p90_ms if entry.latency else None,
        "file_mb": entry.file_bytes / 1e6,
    }


def table_rows(comp: Comparison) -> list[dict[str, Any]]:
    return [row_values(e, comp.entries[comp.baseline]) for e in comp.entries]


def best_rows(rows: list[dict[str, Any]]) -> dict[str, set[int]]:
    """Per column, the rows holding the best value (all of them on a tie, unless every row ties)."""
    best: dict[str, set[int]] = {}
    for col in COLUMNS:
        values = [(i, r[col.key]) for i, r in enumerate(rows) if col.better and r[col.key] is not None]
        if len(rows) < 2 or not values:
            continue
        pick = max if col.better == "high" else min
        target = round(pick(v for _, v in values), col.digits)
        winners = {i for i, v in values if round(v, col.digits) == target}
        if len(winners) < len(rows):  # a column where every model ties has no best
            best[col.key] = winners
    return best


def format_value(col: Column, value: Any, is_baseline: bool = False) -> str:
    if col.key == "delta_miou":
        return "baseline" if is_baseline else ("-" if value is None else f"{value:+.{col.digits}f}")
    if value is None:
        return "-"
    return f"{value:.{col.digits}f}" if isinstance(value, float) else str(value)


def caption_parts(comp: Comparison) -> list[str]:
    """What the numbers mean: where the metrics come from, the GFLOPs input, how latency was taken."""
    h, w = comp.size
    return [f"metrics: {comp.evaluated}", f"GFLOPs at 1x3x{h}x{w} (2 FLOPs per multiply-add)",
            f"latency: {comp.setting.describe()}" if comp.setting else "latency: not measured (--repeats 0)"]


def caption(comp: Comparison) -> str:
    return "; ".join(caption_parts(comp))


# On a terminal narrower than this, the table keeps the columns a decision needs (the Markdown,
# JSON and HTML outputs keep them all): the method, trimap IoU, p90 and file size are dropped.
NARROW = 120
NARROW_COLUMNS = ("name", "miou", "delta_miou", "boundary_iou", "params_m", "gflops", "latency_ms")
SHORT_LABELS = {"boundary_iou": "bound. IoU", "latency_ms": "ms (med.)", "params_m": "params M", "delta_miou": "Δ"}


def rich_table(comp: Comparison, width: int | None = None) -> Table:
    """Every column at `width` >= NARROW (or None); fewer, with short headers, below it. Cells
    wrap (fold) rather than end in an ellipsis."""
    rows, base = table_rows(comp), comp.baseline
    best = best_rows(rows)
    narrow = width is not None and width < NARROW
    columns = [c for c in COLUMNS if c.key in NARROW_COLUMNS] if narrow else list(COLUMNS)
    table = Table(title="comparison", caption=caption(comp), header_style="bold", caption_justify="left")
    for col in columns:
        label = SHORT_LABELS.get(col.key, col.label) if narrow else col.label
        table.add_column(label, justify="left" if col.key in ("name", "method") else "right", overflow="fold")
    for i, row in enumerate(rows):
        cells = []
        for col in columns:
            text = format_value(col, row[col.key], i == base)
            cells.append(f"[bold green]{text}[/]" if i in best.get(col.key, ()) else text)
        table.add_row(*cells)
    return table


def markdown(comp: Comparison) -> str:
    rows, base = table_rows(comp), comp.baseline
    best = best_rows(rows)
    lines = ["| " + " | ".join(c.label for c in COLUMNS) + " |",
             "|" + "|".join("---" if c.key in ("name", "method") else "---:" for c in COLUMNS) + "|"]
    for i, row in enumerate(rows):
        cells = []
        for col in COLUMNS:
            text = format_value(col, row[col.key], i == base).replace("|", "\\|")
            cells.append(f"**{text}**" if i in best.get(col.key, ()) else text)
        lines.append("| " + " | ".join(cells) + " |")
    notes = [f"Best value per column in bold. {caption(comp)}."] + [f"Note: {n}." for n in comp.notes]
    return "\n".join(lines) + "\n\n" + "\n\n".join(notes) + "\n"


def to_json(comp: Comparison) -> dict[str, Any]:
    rows = table_rows(comp)
    models = []
    for entry, row in zip(comp.entries, rows):
        models.append({**row, "model_path": str(entry.model_path), "evaluated_on": entry.evaluated_on,
                       "params": entry.params, "file_bytes": entry.file_bytes,
                       "pixel_acc": entry.metrics.get("pixel_acc"),
                       "per_class_iou": entry.metrics.get("per_class_iou"),
                       "latency_samples_ms": [round(s, 4) for s in entry.latency.samples_ms] if entry.latency else None})
    setting = comp.setting
    return {
        "baseline": comp.entries[comp.baseline].name,
        "metrics": comp.evaluated,
        "input_size": list(comp.size),
        "flops_convention": "torch.utils.flop_counter total; 2 FLOPs per multiply-add",
        "latency": None if setting is None else {"device": setting.device, "threads": setting.threads,
                                                  "repeats": setting.repeats, "warmup": setting.warmup,
                                                  "batch": 1, "interleaved": True},
        "best": {k: sorted(rows[i]["name"] for i in v) for k, v in best_rows(rows).items()},
        "notes": comp.notes,
        "models": models,
    }
