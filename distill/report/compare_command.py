"""`distill compare` from arguments to output: build the comparison, print it, write the report.

It lives beside the renderers rather than in distill.commands because the seed options
(--no-group, --per-seed) reach into them; the format is chosen by the caller
(distill.commands.choose_format), which keeps the usage errors in one place.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

from rich.console import Console

from distill.io import atomic_write_text
from distill.report.compare import DataChoice, build_comparison


def compare_and_report(paths: list[Path], baseline: Path | None, fmt: str, out: Path | None, data: str | None,
                       data_root: str | None, split: str, size: tuple[int, int] | None, repeats: int,
                       console: Console, group: bool = True, per_seed: bool = False) -> None:
    """`fmt` is table, md, json or html. With `group`, runs of one recipe that differ only in seed
    are one row (mean and min–max); `per_seed` adds each seed's row to the terminal and Markdown
    (the JSON always lists them, the HTML page folds them under its table)."""
    from distill.report.html import render_html
    from distill.report.tables import markdown, rich_table, seed_table, to_json

    choice = DataChoice(data, data_root, split) if data else None
    comparison = build_comparison(paths, baseline, size, repeats, choice, group=group)
    render = {"md": lambda c: markdown(c, per_seed), "html": render_html,
              "json": lambda c: json.dumps(to_json(c), indent=2) + "\n"}
    if fmt != "table" and out is None:
        sys.stdout.write(render[fmt](comparison))  # plain text for pipes: no table, no colour
        return
    console.print(rich_table(comparison, console.width))
    if per_seed and any(e.members for e in comparison.entries):
        console.print(seed_table(comparison, console.width))
    for note in comparison.notes:
        console.print(f"[yellow]note:[/] {note}", highlight=False)
    if out is not None:
        atomic_write_text(out, render[fmt](comparison))
        console.print(f"wrote {out}", highlight=False)
