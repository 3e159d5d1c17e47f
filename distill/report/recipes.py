"""`distill recipes`: the shipped recipes as a table, and `--copy` of one to edit.

The table reads each recipe with its `base:` merged in (no card is loaded and nothing is
validated, so a broken recipe is still listed; `distill run --dry-run` says what is wrong).
It stays readable at 80 columns: cells wrap, none is cut to "...".
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml
from rich.table import Table

from distill.errors import DistillError
from distill.io import atomic_write_text


def merged(path: Path) -> dict[str, Any] | None:
    """The recipe with its bases merged, or None when it cannot be read as YAML."""
    from distill.recipe import _read_with_bases, _Sources

    try:
        return _read_with_bases(path, _Sources(), chain=[])
    except DistillError:
        return None


def card_stem(value: Any) -> str:
    return Path(value).stem if isinstance(value, str) else "-"


def describe(data: dict[str, Any]) -> tuple[str, str, str, str, str]:
    losses = data.get("losses") or []
    names = " + ".join(str(l.get("name", "?")) for l in losses if isinstance(l, dict)) or "-"
    teachers = data.get("teachers") or ({"main": data["teacher"]} if data.get("teacher") else {})
    teacher = ", ".join(card_stem(v) for v in teachers.values()) if isinstance(teachers, dict) else "-"
    dataset = (data.get("data") or {}).get("name", "synthetic") if isinstance(data.get("data"), dict) else "synthetic"
    iterations = (data.get("train") or {}).get("iterations", "-") if isinstance(data.get("train"), dict) else "-"
    return names, teacher or "-", card_stem(data.get("student")), str(dataset), str(iterations)


def recipes_table(folder: Path) -> Table:
    table = Table(title=f"recipes in {folder}", expand=False)
    for column, justify in (("recipe", "left"), ("losses", "left"), ("teacher", "left"), ("student", "left"),
                            ("data", "left"), ("iters", "right")):
        table.add_column(column, justify=justify, overflow="fold")
    for path in sorted(folder.rglob("*.yaml")):
        if path.name.startswith("_"):
            continue  # shared bases (_base.yaml) are not run on their own
        data = merged(path)
        row = describe(data) if isinstance(data, dict) else ("(unreadable)", "", "", "", "")
        table.add_row(str(path.relative_to(folder.parent)), *row)
    return table


def find_recipe(folder: Path, name: str) -> Path:
    """A shipped recipe by path (camvid/kd.yaml, recipes/kd.yaml) or stem (kd, camvid/kd)."""
    stem = name.removeprefix("recipes/").removesuffix(".yaml")
    candidate = folder / f"{stem}.yaml"
    if candidate.is_file():
        return candidate
    matches = sorted(p for p in folder.rglob(f"{Path(stem).name}.yaml") if not p.name.startswith("_"))
    if len(matches) == 1:
        return matches[0]
    known = ", ".join(str(p.relative_to(folder).with_suffix("")) for p in sorted(folder.rglob("*.yaml")) if not p.name.startswith("_"))
    raise DistillError("command line", "--copy", "a shipped recipe (distill recipes lists them)", got=name,
                       hint=f"several match: {', '.join(str(m) for m in matches)}" if matches else f"known: {known}")


def copy_recipe(folder: Path, name: str, dest: Path) -> Path:
    """Copy a shipped recipe to `dest` with its base merged in (a standalone file to edit)."""
    source = find_recipe(folder, name)
    if dest.is_dir():
        dest = dest / source.name
    if dest.exists():
        raise DistillError(dest, "--copy", "a path that does not exist yet (nothing is overwritten)", got="<exists>")
    data = merged(source)
    if data is None:
        raise DistillError(source, None, "a readable recipe to copy")
    header = f"# Copied from {source} with its base merged in: this file stands alone. Edit it, then: distill run {dest}\n"
    atomic_write_text(dest, header + yaml.safe_dump(data, sort_keys=False))
    return dest
