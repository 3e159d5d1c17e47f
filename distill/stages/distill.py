"""The `distill` stage: train the student with the recipe's losses and write the run's files
(student.safetensors with everything needed to rebuild it, metrics.json)."""

from __future__ import annotations

import json
from functools import partial
from typing import Any

from accelerate import Accelerator
from accelerate.utils import set_seed

from distill.engine.cache import TeacherCache
from distill.engine.evaluate import evaluate
from distill.engine.loop import Distillation, Trainer
from distill.engine.schedule import build_scheduler
from distill.io import atomic_write_text
from distill.measure.flops import count_gflops
from distill.models import Segmenter, save_model
from distill.model_card import write_model_card
from distill.stages.base import STAGES, RunContext, RunSummary, Stage
from distill.stages.setup import apply_memory_format, build_losses, check_global_batch, build_student, make_accelerator, make_loader, make_optimizer, start_trackers
from distill.stages.teacher_cache import prepare_caches


def build_trainer(ctx: RunContext, accelerator: Accelerator, model: Distillation, teachers: dict[str, Segmenter],
                  caches: dict[str, TeacherCache] | None = None) -> Trainer:
    """`teachers` are run each step; those in `caches` are read from disk instead (and not moved)."""
    recipe, spec = ctx.loaded.recipe, ctx.loaded.recipe.train
    apply_memory_format(spec, model, *teachers.values())
    optimizer = make_optimizer(model, spec)
    scheduler = build_scheduler(optimizer, spec)
    loader = make_loader(ctx.data.train, recipe.data, spec.seed)
    for name, stems in (("labeled", ctx.data.labeled), ("unlabeled", ctx.data.unlabeled)):
        if stems is not None and accelerator.is_main_process:  # the partition this run used, as lists
            atomic_write_text(ctx.run_dir / f"{name}.txt", "".join(f"{stem}\n" for stem in stems))
    model, optimizer, loader = accelerator.prepare(model, optimizer, loader)
    accelerator.register_for_checkpointing(scheduler)
    caches = caches or {}
    teachers = {name: teacher for name, teacher in teachers.items() if name not in caches}
    for teacher in teachers.values():
        teacher.to(accelerator.device)
    evaluator = partial(evaluate, dataset=ctx.data.val, classes=ctx.data.classes, accelerator=accelerator,
                        batch_size=recipe.data.eval_batch_size, eval_size=recipe.data.eval_size)
    return Trainer(accelerator, model, teachers, loader, optimizer, scheduler, spec, ctx.run_dir, evaluator,
                   ctx.loaded.transforms(), caches=caches)


def save_run(ctx: RunContext, accelerator: Accelerator, student: Segmenter, metrics: dict[str, Any], wall: float) -> RunSummary:
    recipe, spec = ctx.loaded.recipe, ctx.loaded.recipe.train
    params = sum(p.numel() for p in student.parameters())
    info = {
        "recipe": recipe.name, "recipe_hash": recipe.fingerprint(), "seed": spec.seed, "iterations": spec.iterations,
        "dataset": recipe.data.name, "data_options": recipe.data.options, "split": recipe.data.val_split,
        "eval_size": recipe.data.eval_size,
        "metrics": {k: metrics[k] for k in ("miou", "pixel_acc", "boundary_iou", "trimap_iou")},
        "teacher": recipe.teacher, "teachers": recipe.teachers, "losses": [s.name for s in recipe.losses],
        "student_init": recipe.student_init, "prune": ctx.prune_report,
        "teacher_cache": recipe.teacher_cache.model_dump(mode="json") if recipe.teacher_cache else None,
    }
    record = {**metrics, "split": recipe.data.val_split, "dataset": recipe.data.name, "recipe": recipe.name,
              "recipe_hash": info["recipe_hash"], "iterations": spec.iterations, "seed": spec.seed,
              "wall_time_s": round(wall, 1), "params": params, "eval_size": recipe.data.eval_size,
              **({"prune": ctx.prune_report} if ctx.prune_report is not None else {})}
    if accelerator.is_main_process:
        save_model(student, ctx.run_dir / "student.safetensors", info)
        atomic_write_text(ctx.run_dir / "metrics.json", json.dumps(record, indent=2))
        write_card(ctx, student, info, params)
    accelerator.wait_for_everyone()
    return RunSummary(ctx.run_dir, metrics, wall, params, accelerator.num_processes, accelerator.is_main_process)


def write_card(ctx: RunContext, student: Segmenter, info: dict[str, Any], params: int) -> None:
    """README.md beside student.safetensors: classes, normalisation, metrics, cost, the recipe."""
    size = tuple(ctx.loaded.recipe.data.eval_size or (360, 480))
    facts = {"params": params, "gflops": count_gflops(student, size, next(student.parameters()).device), "gflops_size": size}
    card = student.card.model_dump(mode="json")
    write_model_card(ctx.run_dir / "student.safetensors", card, info, facts, ctx.loaded.to_yaml())


@STAGES.register("distill")
class Distill(Stage):
    name = "distill"

    def describe(self, loaded: Any) -> str:
        losses = " + ".join(s.name for s in loaded.recipe.losses)
        return f"distill: {losses}, {loaded.recipe.train.iterations} iterations"

    def check(self, ctx: RunContext) -> None:
        check_global_batch(ctx.loaded.path, ctx.loaded.recipe.data, len(ctx.data.train))

    def run(self, ctx: RunContext) -> None:
        spec = ctx.loaded.recipe.train
        teachers = ctx.teachers()  # before this run's Accelerator exists
        accelerator = make_accelerator(spec, ctx.run_dir)
        set_seed(spec.seed, device_specific=True, deterministic=spec.deterministic)  # device_specific: seed + process index
        student = ctx.student if ctx.student is not None else build_student(ctx.loaded, ctx.data.classes)
        model = Distillation(student, build_losses(ctx.loaded, student, teachers))
        # Before the run folder: an interrupted cache build leaves nothing that a rerun would refuse.
        caches = prepare_caches(ctx.loaded, ctx.data, accelerator, teachers, ctx.console)
        ctx.prepare()  # everything the user's files can break has been built
        accelerator.wait_for_everyone()  # the run folder exists before any process writes to it
        trainer = build_trainer(ctx, accelerator, model, teachers, caches)
        start_trackers(accelerator, ctx.loaded)
        metrics = trainer.fit(resume=ctx.options.resume)
        wall = trainer.elapsed_s  # across resumes
        if spec.log_with:
            accelerator.end_training()
        ctx.summary = save_run(ctx, accelerator, accelerator.unwrap_model(trainer.model).student, metrics, wall)
