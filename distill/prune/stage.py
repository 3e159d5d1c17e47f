"""The `prune:` stage of a recipe: prune the student, optionally fine-tune between steps, and
keep the pruned architecture so that `--resume` rebuilds exactly it (no re-pruning on resume).
"""

from __future__ import annotations

import itertools
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import torch
from rich.console import Console
from torch.utils.data import DataLoader

from distill.engine.evaluate import collate
from distill.errors import DistillError
from distill.losses import LOSSES
from distill.models import SegmentationModel, load_model_file, save_model
from distill.outputs import PairView
from distill.prune.channels import PruneReport, prune_model
from distill.recipe import LoadedRecipe

PRUNED_FILE = "pruned_student.safetensors"  # the student right after pruning, before training


def prune_size(loaded: LoadedRecipe) -> tuple[int, int]:
    """Where latency and GFLOPs are measured: prune.size, else the evaluation size, else the crop."""
    recipe = loaded.recipe
    assert recipe.prune is not None
    return tuple(recipe.prune.size or recipe.data.eval_size or recipe.data.crop_size)


def _batches(train_set: Any, batch_size: int, seed: int) -> Iterator[dict[str, torch.Tensor]]:
    loader = DataLoader(train_set, batch_size=batch_size, shuffle=True, drop_last=True, num_workers=0,
                        collate_fn=collate, generator=torch.Generator().manual_seed(seed))
    while True:
        yield from loader


def _ce(model: SegmentationModel, batch: dict[str, torch.Tensor]) -> torch.Tensor:
    return LOSSES.get("ce")()(PairView(model(batch["image"]), None, batch["label"]))


def _finetune(loaded: LoadedRecipe, model: SegmentationModel, teacher: SegmentationModel | None,
              batches: Iterator[dict[str, torch.Tensor]], console: Console) -> None:
    """prune.finetune_iterations steps of the recipe's own losses at the recipe's base lr.

    Losses are built afresh for each step (a feature loss's adapter must match the new channel
    counts), and a constant lr is used: this is recovery between steps, not the run's schedule.
    """
    from distill.engine.loop import Distillation
    from distill.engine.runner import build_losses
    from distill.engine.schedule import build_optimizer

    spec = loaded.recipe.train
    core = Distillation(model, build_losses(loaded, model, teacher))
    backbone, rest = model.param_groups()
    adapters = [p for loss in core.losses for p in loss.parameters()]
    optimizer = build_optimizer([(backbone, 1.0), (rest + adapters, spec.head_lr_mult)], spec)
    model.train()
    for _ in range(loaded.recipe.prune.finetune_iterations):
        batch = next(batches)
        target = None
        if teacher is not None:
            with torch.inference_mode():
                out = teacher(batch["image"], taps=sorted({t for loss in core.losses for t in loss.needs if t != "logits"}))
            target = type(out)(out.logits.clone(), {k: v.clone() for k, v in out.features.items()})
        terms = core(batch["image"], batch["label"], target)
        loss = sum(w * v for w, v in zip(core.weights, terms.values()))
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
    console.print(f"  fine-tuned {loaded.recipe.prune.finetune_iterations} iterations (last loss {float(loss.detach()):.4g})")


def prune_student(loaded: LoadedRecipe, student: SegmentationModel, teacher: SegmentationModel | None, train_set: Any,
                  run_dir: Path, resume: bool, console: Console) -> tuple[SegmentationModel, dict[str, Any] | None]:
    """(the student to train, the prune report as a dict); on resume, the pruned file saved before."""
    spec = loaded.recipe.prune
    saved = run_dir / PRUNED_FILE
    if resume and saved.is_file():
        model, meta = load_model_file(saved)
        check_same_settings(loaded, saved, meta.info.get("prune_settings"))
        console.print(f"[bold]prune[/] resuming with the pruned student of {saved}")
        return model, meta.info.get("prune")
    if spec.target_latency_ratio is not None and int(os.environ.get("WORLD_SIZE", "1")) > 1:
        raise DistillError(loaded.path, "prune.target_latency_ratio", "a single process (each process would time "
                           "its own latency and could stop at another step): prune with --processes 1, then train "
                           "from the pruned file with student_init", got=f"<{os.environ['WORLD_SIZE']} processes>")
    size = prune_size(loaded)
    seed = loaded.recipe.train.seed
    batches = _batches(train_set, loaded.recipe.data.batch_size, seed)
    taylor = lambda: itertools.islice(batches, spec.taylor_batches)  # noqa: E731
    between = (lambda model, k: _finetune(loaded, model, teacher, batches, console)) if spec.finetune_iterations else None
    console.print(f"[bold]prune[/] {spec.importance} importance, ratio {spec.ratio}"
                  f"{' (global)' if spec.global_pruning else ''}, {spec.step_count} step(s), measured at {size[0]}x{size[1]}")
    report: PruneReport = prune_model(student, spec, size, file=loaded.path, gradient_batches=taylor, loss_fn=_ce,
                                      between_steps=between, progress=lambda text: console.print(f"  {text}"))
    if report.target_met:
        console.print(f"  target met after step {len(report.steps)} of {spec.step_count}")
    if report.target_met is False:
        console.print(f"[yellow]prune target not met at ratio {spec.ratio}[/]: raise prune.ratio to prune further")
    return student, report.as_dict()


def prune_settings(loaded: LoadedRecipe) -> dict[str, Any]:
    """What decides the pruned architecture: the prune block and the model it starts from."""
    assert loaded.recipe.prune is not None
    return {**loaded.recipe.prune.model_dump(mode="json"), "student_init": loaded.recipe.student_init,
            "student": loaded.recipe.student}


def check_same_settings(loaded: LoadedRecipe, saved: Path, recorded: dict[str, Any] | None) -> None:
    """--resume must not train a student pruned under other settings than the recipe's now."""
    if recorded is None:  # a file from before settings were recorded: nothing to compare
        return
    now = prune_settings(loaded)
    changed = sorted(k for k in now.keys() | recorded.keys() if now.get(k) != recorded.get(k))
    if changed:
        key = changed[0]
        field = key if key in ("student_init", "student") else f"prune.{key}"
        raise DistillError(loaded.path, field, f"{recorded.get(key)!r} as when {saved} was pruned "
                           "(--overwrite prunes again from the start)", got=now.get(key))


def save_pruned(student: SegmentationModel, loaded: LoadedRecipe, run_dir: Path, report: dict[str, Any]) -> None:
    save_model(student, run_dir / PRUNED_FILE, {"prune": report, "prune_settings": prune_settings(loaded),
                                                "note": "the student right after pruning, untrained"})
