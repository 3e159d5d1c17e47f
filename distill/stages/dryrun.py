"""`distill run RECIPE --dry-run`: everything a run would check, and what it would do, without
writing a file or training a step.

It loads and checks the recipe, the run folder (a used one, or a resume with another recipe, is
refused as a real run would refuse it), the data and every stage's pre-flight; builds each model
on a tiny input; and prints the resolved recipe, the stages with what each will do (a missing
teacher: how many iterations, and about how long at a step time measured here), params and
GFLOPs of every model, and the (model, view, tap) each loss reads.
"""

from __future__ import annotations

import os
import time
from pathlib import Path

import torch
from rich.console import Console
from rich.table import Table

from distill.measure.flops import count_gflops, count_params
from distill.models import Segmenter, build_model, load_model_file
from distill.models.cards import BaseCard
from distill.outputs import STUDENT
from distill.recipe import LoadedRecipe
from distill.specs import DataSpec, TrainSpec
from distill.stages.base import RunContext, RunOptions, plan_stages
from distill.stages.rundir import check_resume, check_run_dir
from distill.stages.setup import apply_memory_format, build_data, teacher_file
from distill.stages.teacher_cache import describe_caches


def measure_step_seconds(model: Segmenter, data: DataSpec, spec: TrainSpec, timed: int = 2) -> float:
    """Seconds of one training step (forward, CE, backward, AdamW) at the crop and batch size, on
    random inputs, after one warm-up step, in the memory format training will use: the basis of
    the time estimates."""
    apply_memory_format(spec, model)
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-4)
    images = torch.rand(data.batch_size, model.in_channels, *data.crop_size)
    labels = torch.randint(0, model.num_classes, (data.batch_size, *data.crop_size))
    model.train()
    times = []
    for _ in range(timed + 1):
        started = time.perf_counter()
        logits = torch.nn.functional.interpolate(model(images).logits, size=data.crop_size, mode="bilinear")
        torch.nn.functional.cross_entropy(logits, labels).backward()
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        times.append(time.perf_counter() - started)
    return sum(times[1:]) / timed


def model_of(card: BaseCard, path: Path | None, classes: list[str], card_file: str) -> tuple[Segmenter, str]:
    """The trained model when its file exists, else a fresh build of the card (no weights fetched)."""
    if path is not None and path.is_file():
        return load_model_file(path)[0], str(path)
    return build_model(card, len(classes), classes, card_file=card_file, load_pretrained=False), "untrained (card)"


def models_table(loaded: LoadedRecipe, classes: list[str], size: tuple[int, int]) -> Table:
    table = Table(title=f"models (GFLOPs at 1x3x{size[0]}x{size[1]})")
    for column in ("role", "card", "family", "params (M)", "GFLOPs", "weights"):
        table.add_column(column, justify="right" if column in ("params (M)", "GFLOPs") else "left", overflow="fold")
    rows = [("student", loaded.recipe.student, loaded.student_card, Path(loaded.recipe.student_init) if loaded.recipe.student_init else None)]
    rows += [(f"teacher {name}", loaded.recipe.teachers[name], card, teacher_file(loaded, name))
             for name, card in loaded.teacher_cards.items()]
    for role, card_file, card, path in rows:
        model, source = model_of(card, path, classes, card_file)
        table.add_row(role, card_file, card.family, f"{count_params(model) / 1e6:.2f}", f"{count_gflops(model, size):.2f}", source)
    return table


def reads_table(loaded: LoadedRecipe) -> Table:
    table = Table(title="what each loss reads (model@view: taps)")
    table.add_column("loss")
    table.add_column("weight", justify="right")
    table.add_column("reads", overflow="fold")
    for spec, loss in zip(loaded.recipe.losses, loaded.losses()):
        reads: dict[str, list[str]] = {}
        for read in loss.reads():
            reads.setdefault(f"{read.model}@{read.view}", []).append(read.tap)
        weight = spec.weight if spec.weight is not None else type(loss).default_weight
        table.add_row(spec.name, f"{weight:g}", "; ".join(f"{k}: {', '.join(v)}" for k, v in reads.items()))
    return table


def student_forwards(loaded: LoadedRecipe) -> int:
    """Forwards of the trained model a step runs: one per view its losses read it on (LAD's two
    noised paths are two)."""
    return max(1, len({read.view for loss in loaded.losses() for read in loss.reads() if read.model == STUDENT}))


def load_note() -> str:
    """A warning when other work shares the CPU: the step was timed under it, so the estimate is high."""
    cores = os.cpu_count() or 1
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else 0.0
    return f"; load average {load:.1f} on {cores} cores: other work is running, so this overestimates" if load > 0.5 * cores else ""


def teacher_estimate(loaded: LoadedRecipe, name: str, classes: list[str]) -> str:
    card = loaded.teacher_cards[name]
    if teacher_file(loaded, name).is_file() or card.train is None:
        return ""
    model = build_model(card, len(classes), classes, card_file=loaded.recipe.teachers[name], load_pretrained=False)
    from distill.stages.teacher import teacher_recipe

    training = teacher_recipe(loaded, name)
    spec = training.recipe.train
    forwards = student_forwards(training)
    seconds = forwards * measure_step_seconds(model, training.recipe.data, spec)
    paths = f" ({forwards} forwards a step)" if forwards > 1 else ""
    return (f"; about {seconds * spec.iterations / 60:.0f} min at {seconds:.2f} s/step{paths}, measured here "
            f"({torch.get_num_threads()} threads{load_note()})")


def dry_run(loaded: LoadedRecipe, options: RunOptions, console: Console) -> None:
    recipe = loaded.recipe
    run_dir = options.run_dir or Path(recipe.output_dir) / recipe.name
    finished = check_resume(run_dir, loaded, options)
    if finished is None:
        check_run_dir(run_dir, options)
    ctx = RunContext(loaded, run_dir, options, console, build_data(recipe.data, str(loaded.path), recipe.train.seed))
    stages = plan_stages(loaded)
    for stage in stages:
        stage.check(ctx)
    console.print(f"[bold]{loaded.path}[/]: resolved recipe", highlight=False)
    console.print(loaded.to_yaml().rstrip(), markup=False, highlight=False)
    console.print(f"\n[bold]run folder[/] {run_dir}" + (" (finished: --resume would train nothing)" if finished else ""))
    console.print("[bold]stages[/]")
    for i, stage in enumerate(stages, 1):
        extra = teacher_estimate(loaded, stage.spec.teacher, ctx.data.classes) if stage.name == "train_teacher" else ""
        console.print(f"  {i}. {stage.describe(loaded)}{extra}", highlight=False)
    for line in describe_caches(loaded, ctx.data):
        console.print(line, highlight=False, soft_wrap=True)
    size = tuple(recipe.data.eval_size or recipe.data.crop_size)
    console.print(models_table(loaded, ctx.data.classes, size))
    console.print(reads_table(loaded))
    console.print("dry run: nothing was written", highlight=False)
