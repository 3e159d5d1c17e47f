"""One set of columns, rendered three ways: a rich table, Markdown, and JSON.

The columns are defined once so the terminal, the Markdown file and the HTML page cannot
disagree about what is shown or which value counts as best.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from rich.table import Table

from distill.report.compare import Comparison, Entry
from distill.report.groups import mean_of, seeds_text


@dataclass(frozen=True)
class Column:
    key: str
    label: str
    better: str | None = None  # "high" or "low": which value is highlighted as best
    digits: int = 2


COLUMNS = (
    Column("name", "model"),
    Column("method", "method"),
    Column("seeds", "seeds"),
    Column("miou", "mIoU %", "high"),
    Column("delta_miou", "Δ mIoU"),
    Column("boundary_iou", "boundary IoU %", "high"),
    Column("trimap_iou", "trimap IoU %", "high"),
    Column("params_m", "params (M)", "low"),
    Column("gflops", "GFLOPs", "low", 3),
    Column("executed_gflops", "executed GFLOPs", "low", 3),  # mean per image over the split (DToP)
    Column("exited_pct", "tokens exited %", None, 1),  # before the final head, all exit heads together (DToP)
    Column("latency_ms", "latency ms (median)", "low"),
    Column("latency_p90_ms", "p90 ms", "low"),
    Column("file_mb", "file MB", "low"),
)


def row_values(entry: Entry, baseline: Entry) -> dict[str, Any]:
    """A row's values; a group of seeds averages its members' rows and keeps their min–max."""
    if entry.members:
        return group_values(entry, baseline)
    miou, base = entry.metrics.get("miou"), baseline.metrics.get("miou")
    return {
        "name": entry.name,
        "method": entry.method,
        "seeds": list(entry.seeds),
        "executed_gflops": entry.metrics.get("executed_gflops"),  # input-dependent models only (DToP)
        "exited_pct": exited_percent(entry.metrics),
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


def exited_percent(metrics: dict[str, Any]) -> float | None:
    """The share of tokens that left at an auxiliary head (DToP's metrics.json: final_fraction)."""
    final = metrics.get("final_fraction")
    return None if final is None else 100.0 * (1.0 - final)


# The accuracy columns of a grouped row also show min–max over its seeds; its cost columns are
# one architecture measured n times, so their mean alone is shown (the JSON keeps each seed's).
SPREAD = ("miou", "boundary_iou", "trimap_iou")


def group_values(entry: Entry, baseline: Entry) -> dict[str, Any]:
    """Each numeric column: the mean over the seeds that have it. Δ mIoU is the mean against the
    baseline's mean (the baseline row's metrics are its group's means too)."""
    rows = [row_values(m, baseline) for m in entry.members]
    row = {"name": entry.name, "method": entry.method, "seeds": list(entry.seeds)}
    spread = {}
    for key in rows[0]:
        values = [r[key] for r in rows if isinstance(r[key], (int, float))]
        if key not in row:
            row[key] = mean_of(values)
        if key in SPREAD and values:
            spread[key] = [min(values), max(values)]
    return {**row, "spread": spread}


def table_rows(comp: Comparison) -> list[dict[str, Any]]:
    return [row_values(e, comp.entries[comp.baseline]) for e in comp.entries]


def delta_note(comp: Comparison) -> str:
    """What the per-seed Δ mIoU is taken against: the baseline's row, a mean when it is a group."""
    base = comp.entries[comp.baseline]
    return f"Δ mIoU against the baseline{' mean' if base.members else ''} ({base.name})"


def seed_rows(comp: Comparison) -> list[dict[str, Any]]:
    """One row per seed of every grouped row, Δ mIoU against the baseline's mean (--per-seed)."""
    return [row_values(m, comp.entries[comp.baseline]) for e in comp.entries for m in e.members]


def shown_columns(rows: list[dict[str, Any]], keys: tuple[str, ...] | None = None) -> list[Column]:
    """The columns, less `seeds` when no row holds more than one (so an ungrouped table is as before),
    and less `executed_gflops` and `exited_pct` when no model's compute depends on its input."""
    grouped = any(len(r.get("seeds") or ()) > 1 for r in rows)
    dynamic = any(r.get("executed_gflops") is not None for r in rows)
    return [c for c in COLUMNS if (keys is None or c.key in keys) and (grouped or c.key != "seeds")
            and (dynamic or c.key not in ("executed_gflops", "exited_pct"))]


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
    if col.key == "seeds":
        return seeds_text(value or [])
    if value is None:
        return "-"
    return f"{value:.{col.digits}f}" if isinstance(value, float) else str(value)


def spread_text(col: Column, row: dict[str, Any]) -> str:
    """"(60.00–63.00)": the min–max over a grouped row's seeds; "" for a single run."""
    low_high = row.get("spread", {}).get(col.key)
    return "" if low_high is None else f"({low_high[0]:.{col.digits}f}–{low_high[1]:.{col.digits}f})"


def caption_parts(comp: Comparison) -> list[str]:
    """What the numbers mean: where the metrics come from, the GFLOPs input, how latency was taken,
    and what a grouped row's figures are."""
    h, w = comp.size
    parts = [f"metrics: {comp.evaluated}", f"GFLOPs at 1x3x{h}x{w} (2 FLOPs per multiply-add)",
             f"latency: {comp.setting.describe()}" if comp.setting else "latency: not measured (--repeats 0)"]
    if any(e.members for e in comp.entries):
        parts.append("a row of several seeds shows their mean, and (min–max) for mIoU, boundary and trimap IoU")
    return parts


def caption(comp: Comparison) -> str:
    return "; ".join(caption_parts(comp))


# On a terminal narrower than this, the table keeps the columns a decision needs (the Markdown,
# JSON and HTML outputs keep them all): the method, trimap IoU, p90 and file size are dropped.
NARROW = 120
NARROW_GROUPED = 155  # the seeds column and the min–max lines need about 35 more


def is_narrow(rows: list[dict[str, Any]], width: int | None) -> bool:
    return width is not None and width < (NARROW_GROUPED if any(r.get("spread") for r in rows) else NARROW)
NARROW_COLUMNS = ("name", "seeds", "miou", "delta_miou", "boundary_iou", "params_m", "gflops", "latency_ms")
SHORT_LABELS = {"boundary_iou": "bound. IoU", "latency_ms": "ms (med.)", "params_m": "params M", "delta_miou": "Δ"}


def rich_table(comp: Comparison, width: int | None = None) -> Table:
    """Every column at `width` >= NARROW (NARROW_GROUPED with a group of seeds) or None; fewer,
    with short headers, below it. Cells wrap (fold) rather than end in an ellipsis."""
    rows = table_rows(comp)
    narrow = is_narrow(rows, width)
    columns = shown_columns(rows, NARROW_COLUMNS if narrow else None)
    return rows_table("comparison", rows, columns, comp.baseline, best_rows(rows), narrow, caption(comp))


def seed_table(comp: Comparison, width: int | None = None) -> Table:
    """Each seed of the grouped rows on its own line (--per-seed), in the main table's columns."""
    rows = table_rows(comp)
    narrow = is_narrow(rows, width)
    columns = shown_columns(rows, NARROW_COLUMNS if narrow else None)
    return rows_table("per seed", seed_rows(comp), columns, None, {}, narrow, delta_note(comp))


def rows_table(title: str, rows: list[dict[str, Any]], columns: list[Column], base: int | None,
               best: dict[str, set[int]], narrow: bool, note: str) -> Table:
    """A rich table of `rows`: `best` cells bold green; a grouped row's min–max dim, under its mean
    (on one line it would widen the accuracy columns until the headers wrap)."""
    table = Table(title=title, caption=note, header_style="bold", caption_justify="left")
    for col in columns:
        label = SHORT_LABELS.get(col.key, col.label) if narrow else col.label
        table.add_column(label, justify="left" if col.key in ("name", "method") else "right", overflow="fold")
    for i, row in enumerate(rows):
        cells = []
        for col in columns:
            text, spread = format_value(col, row[col.key], i == base), spread_text(col, row)
            text = f"[bold green]{text}[/]" if i in best.get(col.key, ()) else text
            cells.append(f"{text}\n[dim]{spread}[/]" if spread else text)
        table.add_row(*cells)
    return table


def markdown(comp: Comparison, per_seed: bool = False) -> str:
    """The table, its notes, and with `per_seed` each grouped row's seeds in a second table."""
    rows = table_rows(comp)
    columns = shown_columns(rows)
    text = markdown_table(rows, columns, comp.baseline, best_rows(rows))
    notes = [f"Best value per column in bold. {caption(comp)}."] + [f"Note: {n}." for n in comp.notes]
    text += "\n\n" + "\n\n".join(notes) + "\n"
    if per_seed and any(e.members for e in comp.entries):
        text += (f"\n### Per seed\n\n{delta_note(comp)}.\n\n"
                 + markdown_table(seed_rows(comp), columns, None, {}) + "\n")
    return text


def markdown_table(rows: list[dict[str, Any]], columns: list[Column], base: int | None,
                   best: dict[str, set[int]]) -> str:
    lines = ["| " + " | ".join(c.label for c in columns) + " |",
             "|" + "|".join("---" if c.key in ("name", "method") else "---:" for c in columns) + "|"]
    for i, row in enumerate(rows):
        cells = []
        for col in columns:
            text = format_value(col, row[col.key], i == base).replace("|", "\\|")
            text = f"**{text}**" if i in best.get(col.key, ()) else text
            cells.append(f"{text} {spread_text(col, row)}".strip())
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def model_record(entry: Entry, row: dict[str, Any], baseline: Entry) -> dict[str, Any]:
    """A JSON row: the table's values and what they come from; a grouped row lists its seeds'."""
    record = {**row, "model_path": None if entry.members else str(entry.model_path),
              "evaluated_on": entry.evaluated_on, "params": entry.params, "file_bytes": entry.file_bytes,
              "pixel_acc": entry.metrics.get("pixel_acc"), "per_class_iou": entry.metrics.get("per_class_iou"),
              "latency_samples_ms": [round(s, 4) for s in entry.latency.samples_ms] if entry.latency else None}
    if entry.members:
        record["members"] = [model_record(m, row_values(m, baseline), baseline) for m in entry.members]
    return record


def to_json(comp: Comparison) -> dict[str, Any]:
    rows, baseline = table_rows(comp), comp.entries[comp.baseline]
    models = [model_record(e, row, baseline) for e, row in zip(comp.entries, rows)]
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
