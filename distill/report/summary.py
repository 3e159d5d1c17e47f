"""Rich tables for the end of a run and for `distill eval`."""

from __future__ import annotations

from typing import Any

from rich.table import Table


def metrics_table(title: str, metrics: dict[str, Any], extra: dict[str, Any] | None = None) -> Table:
    table = Table(title=title, show_header=True, header_style="bold")
    table.add_column("metric")
    table.add_column("value", justify="right")
    for key, label in (("miou", "mIoU %"), ("pixel_acc", "pixel accuracy %"), ("boundary_iou", "boundary IoU %"),
                       ("trimap_iou", "trimap IoU %")):
        if key in metrics:
            table.add_row(label, "-" if metrics[key] is None else f"{metrics[key]:.2f}")
    for key, label in dynamic_rows(metrics):
        table.add_row(label, "-" if metrics[key] is None else f"{metrics[key]:.{3 if 'gflops' in key else 2}f}")
    for key, value in (extra or {}).items():
        table.add_row(key, str(value))
    return table


def dynamic_rows(metrics: dict[str, Any]) -> list[tuple[str, str]]:
    """(key, label) of the executed-cost figures of an input-dependent model (DToP), when present."""
    rows = [("executed_gflops", "executed GFLOPs (mean per image)"), ("latency_ms", "batch-1 latency ms (median)")]
    rows += [(k, f"tokens exiting at aux head {k.removeprefix('exit_fraction_head')}") for k in sorted(metrics)
             if k.startswith("exit_fraction_head")]
    rows.append(("final_fraction", "tokens reaching the final head"))
    return [(k, label) for k, label in rows if k in metrics]


def per_class_table(metrics: dict[str, Any]) -> Table:
    table = Table(title="per-class IoU %", show_header=True, header_style="bold")
    table.add_column("class")
    table.add_column("IoU", justify="right")
    table.add_column("boundary IoU", justify="right")
    boundary = metrics.get("per_class_boundary_iou", {})
    for name, value in metrics.get("per_class_iou", {}).items():
        b = boundary.get(name)
        table.add_row(name, "-" if value is None else f"{value:.2f}", "-" if b is None else f"{b:.2f}")
    return table
