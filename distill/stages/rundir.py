"""The run folder: refuse a used one, make it, and on --resume make sure it is the same run.

A resumed run whose resolved recipe differs from the one recorded in its folder is refused with
the fields that differ (continuing would silently mix two schedules and overwrite the old
model file); a finished run resumed with the same recipe trains nothing and says so.
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path
from typing import Any

import yaml

from distill.errors import DistillError
from distill.io import existing_ancestor
from distill.recipe import LoadedRecipe, Recipe
from distill.stages.base import RunOptions, RunSummary

RESOLVED = "recipe.resolved.yaml"


def check_run_dir(path: Path, options: RunOptions) -> None:
    """Refuse a used folder, or one that cannot be made, before anything is built or trained."""
    used = path.is_dir() and any(path.iterdir())
    if used and not (options.resume or options.overwrite):
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


def check_resume(run_dir: Path, loaded: LoadedRecipe, options: RunOptions) -> RunSummary | None:
    """On --resume: refuse another recipe; a finished run returns its stored summary."""
    recorded = recorded_recipe(run_dir / RESOLVED) if options.resume else None
    if recorded is None:
        return None
    before, now = flatten(recorded), flatten(loaded.recipe.model_dump(mode="json"))
    changed = sorted(k for k in before.keys() | now.keys() if before.get(k) != now.get(k))
    if changed:
        more = f" (+{len(changed) - 3} more)" if len(changed) > 3 else ""
        was = ", ".join(repr(before.get(k)) for k in changed[:3])
        raise DistillError(run_dir / RESOLVED, ", ".join(changed[:3]) + more,
                           f"{was} as recorded in this run folder (--resume needs the same recipe; --overwrite starts again)",
                           got=now.get(changed[0]) if len(changed) == 1 else [now.get(k) for k in changed[:3]])
    metrics, model = run_dir / "metrics.json", run_dir / "student.safetensors"
    if not (metrics.is_file() and model.is_file()):
        return None
    record = json.loads(metrics.read_text(encoding="utf-8"))
    return RunSummary(run_dir, record, float(record.get("wall_time_s", 0.0)), int(record.get("params", 0)), already_finished=True)
