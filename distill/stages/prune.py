"""The `prune` stage: prune the student's channels (torch-pruning), fine-tune between steps
through the one training loop, and keep the pruned architecture so that `--resume` rebuilds
exactly it (no re-pruning on resume)."""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from typing import Any

from accelerate.utils import set_seed

from distill.batch import Batch
from distill.engine.loop import Distillation, Trainer
from distill.engine.schedule import build_scheduler
from distill.errors import DistillError
from distill.losses import LOSSES
from distill.models import Segmenter, load_model_file, save_model
from distill.outputs import PairView
from distill.processes import is_main_process, processes
from distill.prune.channels import PruneReport, prune_model
from distill.recipe import LoadedRecipe
from distill.model_card import write_model_card
from distill.stages.base import STAGES, RunContext, Stage
from distill.stages.setup import build_losses, build_student, check_global_batch, make_accelerator, make_loader, make_optimizer

PRUNED_FILE = "pruned_student.safetensors"  # the student right after pruning, before training


def prune_size(loaded: LoadedRecipe) -> tuple[int, int]:
    """Where latency and GFLOPs are measured: prune.size, else the evaluation size, else the crop."""
    recipe = loaded.recipe
    assert recipe.prune is not None
    return tuple(recipe.prune.size or recipe.data.eval_size or recipe.data.crop_size)


def _batches(train_set: Any, loaded: LoadedRecipe) -> Iterator[dict[str, Any]]:
    loader = make_loader(train_set, loaded.recipe.data.model_copy(update={"workers": 0}), loaded.recipe.train.seed)
    while True:
        yield from loader


def _ce(model: Segmenter, sample: dict[str, Any]) -> Any:
    batch = Batch.from_loader(sample, next(model.parameters()).device)
    view = batch.view("labeled")
    return LOSSES.get("ce")()(PairView.single(model(model.prepare_input(view)), None, view.label))


def finetune(ctx: RunContext, model: Segmenter, step: int) -> None:
    """prune.finetune_iterations steps of the recipe's own losses, through the Trainer, at the
    recipe's base lr held constant: this is recovery between steps, not the run's schedule.
    Losses are built afresh (a feature loss's adapter must match the new channel counts)."""
    loaded = ctx.loaded
    spec = loaded.recipe.train.model_copy(update={
        "iterations": loaded.recipe.prune.finetune_iterations, "schedule": "constant", "warmup_iters": 0,
        "eval_every": 0, "checkpoint_every": 0, "seed": loaded.recipe.train.seed + step})
    accelerator = make_accelerator(spec)
    teachers = ctx.teachers()
    core = Distillation(model, build_losses(loaded, model, teachers))
    optimizer = make_optimizer(core, spec)
    wrapped, optimizer, loader = accelerator.prepare(core, optimizer, make_loader(ctx.data.train, loaded.recipe.data, spec.seed))
    trainer = Trainer(accelerator, wrapped, teachers, loader, optimizer, build_scheduler(optimizer, spec), spec,
                      transforms=loaded.transforms())
    trainer.fit()
    last = trainer.history[-1]["loss"] if trainer.history else float("nan")
    ctx.console.print(f"  fine-tuned {spec.iterations} iterations (last loss {last:.4g})")


@STAGES.register("prune")
class Prune(Stage):
    name = "prune"

    def describe(self, loaded: LoadedRecipe) -> str:
        spec = loaded.recipe.prune
        return f"prune: {spec.importance} importance, ratio {spec.ratio}, {spec.step_count} step(s)"

    def check(self, ctx: RunContext) -> None:
        check_global_batch(ctx.loaded.path, ctx.loaded.recipe.data, len(ctx.data.train))
        if ctx.loaded.recipe.prune.target_latency_ratio is not None and processes() > 1:
            raise DistillError(ctx.loaded.path, "prune.target_latency_ratio", "a single process (each process would time "
                               "its own latency and could stop at another step): prune with --processes 1, then train "
                               "from the pruned file with student_init", got=f"<{processes()} processes>")

    def run(self, ctx: RunContext) -> None:
        saved = ctx.run_dir / PRUNED_FILE
        if ctx.options.resume and saved.is_file():
            model, meta = load_model_file(saved)
            check_same_settings(ctx.loaded, saved, meta.info.get("prune_settings"))
            ctx.console.print(f"[bold]prune[/] resuming with the pruned student of {saved}")
            ctx.student, ctx.prune_report = model, meta.info.get("prune")
            return
        make_accelerator(ctx.loaded.recipe.train)
        set_seed(ctx.loaded.recipe.train.seed, device_specific=True, deterministic=ctx.loaded.recipe.train.deterministic)
        student = build_student(ctx.loaded, ctx.data.classes)
        report = self._prune(ctx, student)
        ctx.student, ctx.prune_report = student, report.as_dict()
        ctx.prepare()
        if is_main_process():
            info = {"prune": ctx.prune_report, "prune_settings": prune_settings(ctx.loaded),
                    "note": "the student right after pruning, untrained"}
            save_model(student, saved, info)
            after = ctx.prune_report["after"]
            write_model_card(saved, student.card.model_dump(mode="json"), info,
                             {"params": after["params"], "gflops": after["gflops"], "gflops_size": ctx.prune_report["size"]})

    def _prune(self, ctx: RunContext, student: Segmenter) -> PruneReport:
        spec, size = ctx.loaded.recipe.prune, prune_size(ctx.loaded)
        batches = _batches(ctx.data.train, ctx.loaded)
        taylor = lambda: itertools.islice(batches, spec.taylor_batches)  # noqa: E731
        between = (lambda model, k: finetune(ctx, model, k)) if spec.finetune_iterations else None
        ctx.console.print(f"[bold]prune[/] {spec.importance} importance, ratio {spec.ratio}"
                          f"{' (global)' if spec.global_pruning else ''}, {spec.step_count} step(s), measured at {size[0]}x{size[1]}")
        report = prune_model(student, spec, size, file=ctx.loaded.path, gradient_batches=taylor, loss_fn=_ce,
                             between_steps=between, progress=lambda text: ctx.console.print(f"  {text}"))
        if report.target_met:
            ctx.console.print(f"  target met after step {len(report.steps)} of {spec.step_count}")
        if report.target_met is False:
            ctx.console.print(f"[yellow]prune target not met at ratio {spec.ratio}[/]: raise prune.ratio to prune further")
        return report


def prune_settings(loaded: LoadedRecipe) -> dict[str, Any]:
    """What decides the pruned architecture: the prune block and the model it starts from."""
    assert loaded.recipe.prune is not None
    return {**loaded.recipe.prune.model_dump(mode="json"), "student_init": loaded.recipe.student_init,
            "student": loaded.recipe.student}


def check_same_settings(loaded: LoadedRecipe, saved: Any, recorded: dict[str, Any] | None) -> None:
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
