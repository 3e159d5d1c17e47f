"""Runs of one recipe that differ only in seed, shown as one row: the mean, and min–max over the seeds.

One seed's mIoU moves by a point or more, often as much as the gain being compared, so a row per
seed invites reading noise as progress; the mean and range over seeds say whether a gain is real.
Runs group when their resolved recipes (the run folder's recipe.resolved.yaml) are equal once
the fields that must differ between seeds of one experiment are removed: the seeds themselves
(train.seed, data.subset_seed) and where and under what name the run was written. Anything else
that differs (lr, a loss weight, iterations, even log_every) keeps runs apart: only the recipe
can say two runs are the same experiment, and a false group would hide a real difference.
"""

from __future__ import annotations

import json
import os
import re
from dataclasses import replace
from statistics import mean
from typing import TYPE_CHECKING, Any

import yaml

if TYPE_CHECKING:
    from distill.report.compare import Entry

RESOLVED = "recipe.resolved.yaml"  # what distill.stages.rundir writes (report cannot import stages)
SEED_FIELDS = (("train", "seed"), ("data", "subset_seed"))
WHERE_FIELDS = ("name", "output_dir", "description")  # differ between seeds of one experiment by necessity
METRIC_KEYS = ("miou", "pixel_acc", "boundary_iou", "trimap_iou")
PER_CLASS_KEYS = ("per_class_iou", "per_class_boundary_iou")
Key = tuple[str, tuple[Any, ...]]  # (the recipe without seeds, as canonical JSON; its seeds)


def read_recipe(entry: Entry) -> dict[str, Any] | None:
    """The resolved recipe beside a run's student.safetensors, normalised through today's schema
    where it fits (so a field added since, at its default, does not split a group); None for a
    bare model file or a folder without one, which then always stays a row of its own."""
    path = entry.model_path.parent / RESOLVED
    if entry.model_path.name != "student.safetensors" or not path.is_file():
        return None
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (yaml.YAMLError, UnicodeDecodeError):
        return None
    if not isinstance(data, dict):
        return None
    from distill.recipe import Recipe

    try:
        return Recipe.model_validate(data).model_dump(mode="json")
    except Exception:  # a recipe from an older schema: compare it as written
        return data


def recipe_key(recipe: dict[str, Any]) -> Key:
    """The recipe with its seeds and run location removed, and the seeds (None where absent)."""
    rest = {k: v for k, v in recipe.items() if k not in WHERE_FIELDS}
    seeds = []
    for section, key in SEED_FIELDS:
        part = dict(rest[section]) if isinstance(rest.get(section), dict) else {}
        seeds.append(part.pop(key, None))
        if section in rest:
            rest[section] = part
    return json.dumps(rest, sort_keys=True, default=str), tuple(seeds)


def find_groups(entries: list[Entry]) -> tuple[list[list[int]], list[Key | None], list[str]]:
    """Entry indices per row, in order of first appearance; each entry's key; notes on runs of
    one recipe and seed given twice, which are left as rows of their own (they are not seeds)."""
    keys = [None if (r := read_recipe(e)) is None else recipe_key(r) for e in entries]
    rows: list[list[int]] = []
    by_recipe: dict[str, list[int]] = {}
    for i, key in enumerate(keys):
        if key is None:
            rows.append([i])
        elif key[0] not in by_recipe:
            by_recipe[key[0]] = [i]
            rows.append(by_recipe[key[0]])
        else:
            by_recipe[key[0]].append(i)
    notes, split = [], []
    for row in rows:
        if len(row) > 1 and len({keys[i][1] for i in row}) < len(row):
            names = ", ".join(entries[i].name for i in row)
            notes.append(f"{names} have one recipe but repeat a seed (a run given twice?), so they are shown apart")
            split += [[i] for i in row]
        else:
            split.append(row)
    return split, keys, notes


def seed_labels(keys: list[Key]) -> list[int | str | None]:
    """train.seed of each run; "seed/subset_seed" where the labelled subset's seed varies too."""
    subsets = {k[1][1] for k in keys}
    return [k[1][0] if len(subsets) == 1 else f"{k[1][0]}/{k[1][1]}" for k in keys]


def group_name(names: list[str]) -> str:
    """The members' common name: kd_s0, kd_s1 -> kd; kd, kd#2 -> kd; else the first member's name."""
    prefix = re.sub(r"(?:[-_.#]+(?:seed|s)?\d*)?[-_.#]*$", "", os.path.commonprefix(names))
    return prefix or names[0]


def mean_of(values: list[float | None]) -> float | None:
    known = [v for v in values if v is not None]
    return mean(known) if known else None


def mean_metrics(members: list[Entry]) -> dict[str, Any]:
    """Every headline metric and per-class figure averaged over the seeds that have it."""
    metrics = {k: members[0].metrics[k] for k in ("dataset", "split") if k in members[0].metrics}
    for key in METRIC_KEYS:
        if any(key in m.metrics for m in members):
            metrics[key] = mean_of([m.metrics.get(key) for m in members])
    for key in PER_CLASS_KEYS:
        tables = [m.metrics.get(key) or {} for m in members]
        classes = list(dict.fromkeys(c for t in tables for c in t))
        if classes:
            metrics[key] = {c: mean_of([t.get(c) for t in tables]) for c in classes}
    return metrics


def merge(members: list[Entry]) -> Entry:
    """One row for a group: metrics averaged (per class too), costs averaged; the members are kept
    for the min–max, the per-seed rows and the JSON. Latency stays with the members: a row's
    latency figures are the mean of theirs (tables.row_values)."""
    params = mean_of([m.params for m in members])
    return replace(members[0], name=group_name([m.name for m in members]), metrics=mean_metrics(members),
                   file_bytes=round(mean(m.file_bytes for m in members)),
                   params=None if params is None else round(params), gflops=mean_of([m.gflops for m in members]),
                   latency=None, members=members, seeds=[s for m in members for s in m.seeds])


def group_seeds(entries: list[Entry], baseline: int) -> tuple[list[Entry], int, list[str]]:
    """The rows, each group of seeds merged at its first member's place; the baseline's row (a
    group's mean, when the baseline is one of its seeds); notes."""
    rows, keys, notes = find_groups(entries)
    merged: list[Entry] = []
    for row in rows:
        known = [keys[i] for i in row]
        labels = seed_labels(known) if all(known) else [None] * len(row)
        for i, label in zip(row, labels):
            entries[i].seeds = [label] if label is not None else []
        merged.append(merge([entries[i] for i in row]) if len(row) > 1 else entries[row[0]])
    unique_row_names(merged)
    return merged, next(r for r, row in enumerate(rows) if baseline in row), notes


def unique_row_names(rows: list[Entry]) -> None:
    """A group's name can equal another row's (kd_s0 + kd_s1 -> kd, next to a run named kd)."""
    seen: set[str] = set()
    for row in rows:
        name, n = row.name, 1
        while name in seen:
            n += 1
            name = f"{row.name}#{n}"
        row.name = name
        seen.add(name)


def seeds_text(seeds: list[Any]) -> str:
    """0,1,2; a long run of consecutive seeds as 0–9; "-" when unknown."""
    if not seeds:
        return "-"
    if len(seeds) > 4 and all(isinstance(s, int) for s in seeds) and seeds == list(range(seeds[0], seeds[0] + len(seeds))):
        return f"{seeds[0]}–{seeds[-1]}"
    return ",".join("?" if s is None else str(s) for s in seeds)
