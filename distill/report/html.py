"""One self-contained HTML page: the comparison table, two charts, and (with data) a picture grid.

Nothing is fetched when the page opens: the CSS is inline, the charts are inline SVG and the
pictures are PNG data URIs, so the file can be attached to an issue or archived as it is.
"""

from __future__ import annotations

from html import escape

from distill.report.compare import Comparison
from distill.report.samples import SampleGrid, colour_of
from distill.report.svg import Point, bars_svg, scatter_svg
from distill.report.tables import (Column, best_rows, caption_parts, delta_note, format_value, seed_rows, shown_columns,
                                   spread_text, table_rows)

CSS = """
body { font-family: system-ui, -apple-system, "Segoe UI", Helvetica, Arial, sans-serif; color: #222;
       margin: 24px auto; max-width: 1180px; padding: 0 16px; background: #fff; }
h1 { font-size: 22px; margin: 0 0 4px; } h2 { font-size: 17px; margin: 28px 0 8px; }
p.meta { color: #555; font-size: 13px; margin: 2px 0; } p.note { color: #8a4b00; font-size: 13px; }
table.cmp { border-collapse: collapse; font-size: 13px; margin-top: 8px; }
table.cmp th, table.cmp td { padding: 5px 9px; border-bottom: 1px solid #e2e2e2; text-align: right; white-space: nowrap; }
table.cmp th { background: #f3f4f6; border-bottom: 2px solid #bbb; }
table.cmp td.text, table.cmp th.text { text-align: left; }
table.cmp tr.baseline td { background: #f7f7ee; }
table.cmp tr td.best { font-weight: 700; color: #0b6e2f; background: #e3f4e8; }
table.cmp .spread { color: #666; font-weight: 400; font-size: 12px; }
details { margin-top: 10px; font-size: 13px; } summary { cursor: pointer; color: #333; }
.charts { display: flex; flex-wrap: wrap; gap: 24px; align-items: flex-start; }
figure { margin: 0; } figcaption { font-size: 12px; color: #555; max-width: 560px; }
.grid { display: grid; gap: 6px 8px; align-items: center; font-size: 12px; }
.grid img { width: 100%; image-rendering: pixelated; border: 1px solid #ddd; display: block; }
.grid .label { text-align: right; color: #333; font-weight: 600; padding-right: 6px; }
.grid .cell span { display: block; color: #666; font-size: 11px; text-align: center; }
.legend { display: flex; flex-wrap: wrap; gap: 4px 14px; font-size: 12px; margin: 8px 0; }
.swatch { display: inline-block; width: 12px; height: 12px; border: 1px solid #999; vertical-align: -2px; margin-right: 4px; }
"""


def render_html(comp: Comparison) -> str:
    baseline = comp.entries[comp.baseline].name
    body = ["<h1>distill comparison</h1>",
            f'<p class="meta">baseline: <b>{escape(baseline)}</b></p>']
    body += [f'<p class="meta">{escape(part)}</p>' for part in caption_parts(comp)]
    body += [f'<p class="note">Note: {escape(n)}.</p>' for n in comp.notes]
    body += ["<h2>Models</h2>", table_html(comp), seeds_html(comp),
             '<p class="meta">Best value per column highlighted. GFLOPs from torch.utils.flop_counter '
             "(2 FLOPs per multiply-add; convolutions and matmuls only).</p>"]
    body += ['<h2>Accuracy and cost</h2><div class="charts">', scatter_figure(comp), bars_figure(comp), "</div>"]
    if comp.samples is not None:
        body += [f"<h2>Predictions on {escape(comp.evaluated.removeprefix('re-evaluated on '))}</h2>",
                 samples_html(comp.samples)]
    return ("<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
            "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">"
            f"<title>distill comparison: {escape(', '.join(e.name for e in comp.entries))}</title>"
            f"<style>{CSS}</style></head><body>\n" + "\n".join(body) + "\n</body></html>\n")


def table_html(comp: Comparison) -> str:
    rows = table_rows(comp)
    return rows_html(rows, shown_columns(rows), comp.baseline, best_rows(rows))


def seeds_html(comp: Comparison) -> str:
    """Each seed of the grouped rows, folded away under the table (the plots use the means)."""
    if not any(e.members for e in comp.entries):
        return ""
    table = rows_html(seed_rows(comp), shown_columns(table_rows(comp)), None, {})
    return f"<details><summary>Per seed ({escape(delta_note(comp))})</summary>{table}</details>"


def rows_html(rows: list[dict], columns: list[Column], base: int | None, best: dict[str, set[int]]) -> str:
    text_cols = ("name", "method")
    head = "".join(f'<th class="{"text" if c.key in text_cols else "num"}">{escape(c.label)}</th>' for c in columns)
    lines = [f'<table class="cmp"><thead><tr>{head}</tr></thead><tbody>']
    for i, row in enumerate(rows):
        cells = []
        for col in columns:
            classes = ["text" if col.key in text_cols else "num"] + (["best"] if i in best.get(col.key, ()) else [])
            value, spread = escape(format_value(col, row[col.key], i == base)), escape(spread_text(col, row))
            value += f' <span class="spread">{spread}</span>' if spread else ""
            cells.append(f'<td class="{" ".join(classes)}">{value}</td>')
        tr_class = ' class="baseline"' if i == base else ""
        lines.append(f"<tr{tr_class}>{''.join(cells)}</tr>")
    lines.append("</tbody></table>")
    return "\n".join(lines)


def scatter_figure(comp: Comparison) -> str:
    """mIoU against median latency (against GFLOPs when latency was not measured), from the table's
    rows, so a group of seeds is one point at its means with its mIoU min–max as a bar."""
    usable = [r for r in table_rows(comp) if r["miou"] is not None]
    if not usable:
        return "<figure><figcaption>No mIoU to plot.</figcaption></figure>"
    timed = comp.setting is not None and all(r["latency_ms"] is not None for r in usable)
    points = [Point(r["name"], r["latency_ms"] if timed else r["gflops"], r["miou"], r["latency_p90_ms"] if timed else None,
                    *r.get("spread", {}).get("miou", (None, None))) for r in usable]
    if timed:
        x_label, what = "latency, ms (median; batch 1)", f"Latency: {comp.setting.describe()}"
    else:
        x_label, what = "GFLOPs", "Latency was not measured, so GFLOPs stand in for cost"
    h, w = comp.size
    svg = scatter_svg(points, x_label, "mIoU, %")
    seeds = " A group of seeds is drawn at its means, its mIoU min–max as a vertical bar." if any(
        p.y_low is not None for p in points) else ""
    return (f"<figure>{svg}<figcaption>mIoU against cost at {h}x{w}: up and to the left is better. "
            f"Filled points form the Pareto front.{seeds} {escape(what)}.</figcaption></figure>")


def bars_figure(comp: Comparison) -> str:
    with_classes = [e for e in comp.entries if e.metrics.get("per_class_iou")]
    if not with_classes or not comp.classes:
        return ("<figure><figcaption>Per-class IoU is not stored in model files; compare run folders, "
                "or pass --data to evaluate.</figcaption></figure>")
    series = [(f"{e.name} (mean of {len(e.members)})" if e.members else e.name,
               [e.metrics["per_class_iou"].get(c) for c in comp.classes]) for e in with_classes]
    note = "" if len(with_classes) == len(comp.entries) else " Models without per-class figures are left out."
    return (f"<figure>{bars_svg(comp.classes, series)}<figcaption>Per-class IoU, % ({escape(comp.evaluated)}); "
            f"n/a: the class is in neither prediction nor ground truth.{note}</figcaption></figure>")


def samples_html(grid: SampleGrid) -> str:
    legend = "".join(f'<span><i class="swatch" style="background: rgb{colour_of(i)}"></i>{escape(c)}</span>'
                     for i, c in enumerate(grid.classes))
    legend += ('<span><i class="swatch" style="background: rgb(220, 20, 60)"></i>wrong pixel (error maps)</span>'
               '<span><i class="swatch" style="background: #fff"></i>not labelled</span>')
    columns = len(grid.rows)
    style = f"grid-template-columns: 150px repeat({columns}, minmax(120px, 220px));"
    cells = ['<div></div>'] + [f'<div class="cell"><span>{escape(r.name)}</span></div>' for r in grid.rows]

    def line(label: str, pictures: list[tuple[str, str]]) -> None:
        cells.append(f'<div class="label">{escape(label)}</div>')
        cells.extend(f'<div class="cell"><img alt="{escape(label)}" src="{uri}"><span>{escape(under)}</span></div>'
                     for uri, under in pictures)

    line("image", [(r.image, "") for r in grid.rows])
    line("ground truth", [(r.truth, "") for r in grid.rows])
    models = [p.model for p in grid.rows[0].predictions] if grid.rows else []
    for m, model in enumerate(models):
        line(f"{model}", [(r.predictions[m].picture, f"{r.predictions[m].accuracy:.1f} % pixels right") for r in grid.rows])
        line(f"{model} errors", [(r.predictions[m].errors, "") for r in grid.rows])
    return f'<div class="legend">{legend}</div><div class="grid" style="{style}">{"".join(cells)}</div>'
