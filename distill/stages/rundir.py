"""The run folder: refuse a used one, make it, and on --resume make sure it is the same run.

A resumed run whose resolved recipe differs from the one recorded in its folder is refused with
the fields that differ (continuing would silently mix two schedules and overwrite the old
model file); a finished run resumed with the same recipe trains nothing and says so.
"""

from __future__ import annotations

import json
import os
import shutil
import time
from pathlib import Path
from typing import Any

import yaml

from distill.errors import DistillError
from distill.io import atomic_write_text, existing_ancestor
from distill.processes import is_main_process
from distill.recipe import LoadedRecipe, Recipe
from distill.stages.base import RunOptions, RunSummary

QUANTIZED = "quantize.json"  # the quantize stage's record (distill.stages.quantize)
RESOLVED = "recipe.resolved.yaml"


def check_run_dir(path: Path, options: RunOptions) -> None:
    """Refuse a used folder, or one that cannot be made, before anything is built or trained."""
    used = path.is_dir() and any(path.iterdir())
    main = is_main_process()  # other processes may already see the main one's files
    if used and main and not (options.resume or options.overwrite):
        raise DistillError(path, "output folder", "a new folder, or --resume / --overwrite", got="<exists>")
    existing = existing_ancestor(path)
    if not existing.is_dir() or not os.access(existing, os.W_OK):
        raise DistillError(path, "output folder", "a writable folder", got=f"<{existing} is not a writable folder>")


def prepare_run_dir(path: Path, options: RunOptions) -> None:
    check_run_dir(path, options)
    try:
        if options.overwrite and not options.resume and path.is_dir():
            shutil.rmtree(path)
        path.mkdir(parents=True, exist_ok=True)
        probe = path / ".write-test"
        probe.write_text("")
        probe.unlink()
    except OSError as exc:
        raise DistillError(path, "output folder", "a writable folder", got=f"<{exc.strerror or exc}>") from None


def flatten(node: Any, prefix: str = "") -> dict[str, Any]:
    if isinstance(node, dict):
        return {k: v for key, value in node.items() for k, v in flatten(value, f"{prefix}{key}.").items()} or {prefix[:-1]: {}}
    if isinstance(node, list) and node and all(isinstance(item, dict) for item in node):
        return {k: v for i, item in enumerate(node) for k, v in flatten(item, f"{prefix}{i}.").items()}
    return {prefix[:-1]: node}


def recorded_recipe(path: Path) -> dict[str, Any] | None:
    """The run folder's resolved recipe, normalised through today's schema where it still fits."""
    if not path.is_file():
        return None
    data = yaml.safe_load(path.read_text(encoding="utf-8"))
    try:
        return Recipe.model_validate(data).model_dump(mode="json")
    except Exception:  # a recipe from an older schema: compare it as written
        return data if isinstance(data, dict) else {}


def recipe_changes(run_dir: Path, loaded: LoadedRecipe) -> dict[str, list[Any]]:
    """{field: [recorded, now]} for every field where the recipe differs from the run folder's."""
    recorded = recorded_recipe(run_dir / RESOLVED)
    if recorded is None:
        return {}
    before, now = flatten(recorded), flatten(loaded.recipe.model_dump(mode="json"))
    return {k: [before.get(k), now.get(k)] for k in sorted(before.keys() | now.keys()) if before.get(k) != now.get(k)}


def check_resume(run_dir: Path, loaded: LoadedRecipe, options: RunOptions) -> RunSummary | None:
    """On --resume: refuse another recipe (unless --accept-changes); a finished run with the same
    recipe returns its stored summary."""
    changes = recipe_changes(run_dir, loaded) if options.resume else {}
    if changes and not options.accept_changes:
        keys = list(changes)
        more = f" (+{len(keys) - 3} more)" if len(keys) > 3 else ""
        was = ", ".join(repr(changes[k][0]) for k in keys[:3])
        raise DistillError(run_dir / RESOLVED, ", ".join(keys[:3]) + more,
                           f"{was} as recorded in this run folder (--resume needs the same recipe; --accept-changes "
                           "continues with the new one; --overwrite starts again)",
                           got=changes[keys[0]][1] if len(keys) == 1 else [changes[k][1] for k in keys[:3]])
    options.changes = changes
    metrics, model, quantized = run_dir / "metrics.json", run_dir / "student.safetensors", run_dir / QUANTIZED
    if changes or not options.resume:
        return None
    if loaded.recipe.quantize is not None:  # finished once the quantize stage has written its record
        if not quantized.is_file():
            return None
        if loaded.recipe.quantize_only:  # no metrics.json: the int8 file is the run's result
            record = json.loads(quantized.read_text(encoding="utf-8"))
            return RunSummary(run_dir, record.get("metrics") or {}, float(record.get("wall_time_s", 0.0)),
                              int(record.get("params", 0)), already_finished=True)
    if not (metrics.is_file() and model.is_file()):
        return None
    record = json.loads(metrics.read_text(encoding="utf-8"))
    return RunSummary(run_dir, record, float(record.get("wall_time_s", 0.0)), int(record.get("params", 0)), already_finished=True)


def record_changes(run_dir: Path, changes: dict[str, list[Any]]) -> None:
    """Append what --accept-changes changed to changes.jsonl, so the run folder says so."""
    line = json.dumps({"time": time.strftime("%Y-%m-%dT%H:%M:%S%z"), "changed": changes})
    old = (run_dir / "changes.jsonl").read_text(encoding="utf-8") if (run_dir / "changes.jsonl").is_file() else ""
    atomic_write_text(run_dir / "changes.jsonl", old + line + "\n")
