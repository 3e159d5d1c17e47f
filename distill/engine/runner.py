"""From a loaded recipe to a finished run folder.

runs/<name>/ receives recipe.resolved.yaml, log.jsonl, checkpoints/, student.safetensors and
metrics.json. A teacher whose checkpoint is missing is trained first from its card's `train:`
block (and cached at the card's `checkpoint` path), so the embedded default works end to end.
"""

from __future__ import annotations

import json
import os
import shutil
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from accelerate import Accelerator
from accelerate.state import AcceleratorState, GradientState
from accelerate.utils import DataLoaderConfiguration, set_seed
from rich.console import Console
from torch.utils.data import DataLoader

from distill.data import TransformedDataset, build_dataset, build_train_transform, make_labeled_split
from distill.data.subsets import parse_fraction
from distill.data.transforms import stem_of
from distill.engine.evaluate import collate
from distill.engine.loop import Distillation, Trainer
from distill.engine.schedule import build_optimizer, build_scheduler
from distill.errors import DistillError
from distill.io import atomic_copy, atomic_write_text, existing_ancestor
from distill.losses import LOSSES, Loss
from distill.models import SegmentationModel, build_model, load_model_file, save_model
from distill.recipe import LoadedRecipe, recipe_from_card
from distill.specs import DataSpec, TrainSpec


@dataclass
class RunOptions:
    resume: bool = False
    overwrite: bool = False
    run_dir: Path | None = None  # default: <recipe.output_dir>/<recipe.name>


@dataclass
class RunSummary:
    run_dir: Path
    metrics: dict[str, Any]
    wall_time_s: float
    params: int
    processes: int = 1
    is_main_process: bool = True


def make_accelerator(spec: TrainSpec) -> Accelerator:
    # Accelerate keeps process-wide singletons; a teacher trained first in the same process
    # must not leave its settings behind for the student run.
    AcceleratorState._reset_state(reset_partial_state=False)
    GradientState._reset_state()
    if spec.mixed_precision == "fp16" and not torch.cuda.is_available():
        raise DistillError(None, "train.mixed_precision", "no or bf16 on a machine without a GPU", got="fp16")
    return Accelerator(
        cpu=not torch.cuda.is_available(),  # with LOCAL_RANK set this selects gloo multi-CPU DDP
        mixed_precision=spec.mixed_precision,
        gradient_accumulation_steps=spec.grad_accum,
        dataloader_config=DataLoaderConfiguration(use_seedable_sampler=True),
        step_scheduler_with_optimizer=False,
    )


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


def build_data(spec: DataSpec, file: str, seed: int) -> tuple[TransformedDataset, Any, list[str], list[str] | None]:
    """(train set with augmentation, val set, class names, stems of the labeled subset or None)."""
    train = build_dataset(spec.name, spec.root, "train", spec.options, file=file)
    val = build_dataset(spec.name, spec.root, spec.val_split, spec.options, file=file)
    classes = list(train.classes)
    base: Any = train
    stems = None
    if spec.labeled_fraction is not None:
        labeled, _ = make_labeled_split(len(train), parse_fraction(spec.labeled_fraction), spec.subset_seed)
        stems = [stem_of(train, i) for i in labeled]
        base = torch.utils.data.Subset(train, labeled)
    transform = build_train_transform(spec.crop_size, spec.scale_range, spec.flip, spec.photometric)
    return TransformedDataset(base, transform, seed=seed), val, classes, stems


def build_losses(loaded: LoadedRecipe, student: SegmentationModel, teacher: SegmentationModel | None) -> list[tuple[str, Loss, float]]:
    built, seen = [], set()
    for i, (spec, params) in enumerate(zip(loaded.recipe.losses, loaded.loss_params)):
        cls = LOSSES.get(spec.name)
        loss = cls(**params)
        for who, model in (("student", student), ("teacher", teacher if loss.needs_teacher else None)):
            missing = [tap for tap in loss.needs if model is not None and tap not in model.taps]
            if missing:
                raise DistillError(loaded.path, f"losses[{i}]", f"taps the {who} records ({', '.join(model.taps)})", got=missing[0])
        loss.setup(student.taps, teacher.taps if teacher is not None else None)
        name = spec.name if spec.name not in seen else f"{spec.name}#{i}"
        seen.add(name)
        built.append((name, loss, spec.weight if spec.weight is not None else cls.default_weight))
    return built


def build_student(loaded: LoadedRecipe, classes: list[str]) -> SegmentationModel:
    """The card's student, or the trained (possibly pruned) model of `student_init`."""
    recipe = loaded.recipe
    if recipe.student_init is None:
        return build_model(loaded.student_card, len(classes), classes, card_file=recipe.student)
    student, meta = load_model_file(recipe.student_init)
    if meta.classes and meta.classes != classes:
        raise DistillError(recipe.student_init, "classes", f"the data set's {len(classes)} classes {classes}", got=meta.classes)
    return student


def ensure_teacher(loaded: LoadedRecipe, console: Console) -> Path:
    """The teacher's model file, training it first when the card says how."""
    card, card_path = loaded.teacher_card, loaded.recipe.teacher
    assert card is not None and card_path is not None
    target = Path(card.checkpoint or f"checkpoints/{card.name}.safetensors")
    if target.is_file():
        return target
    if card.train is None:
        raise DistillError(card_path, "checkpoint", "an existing model file, or a train: block to make one", got=str(target))
    console.print(f"[bold]teacher[/] {target} is missing: training it first from {card_path} ({card.train.train.iterations} iterations)")
    teacher_run = recipe_from_card(card_path)
    summary = run_recipe(teacher_run, RunOptions(resume=True), console)
    atomic_copy(summary.run_dir / "student.safetensors", target)
    console.print(f"[bold]teacher[/] saved to {target}: val mIoU {summary.metrics['miou']:.2f}")
    return target


def load_teacher(loaded: LoadedRecipe, classes: list[str], console: Console) -> SegmentationModel:
    path = ensure_teacher(loaded, console)
    teacher, meta = load_model_file(path)
    if meta.classes and meta.classes != classes:
        raise DistillError(path, "classes", f"the data set's {len(classes)} classes {classes}", got=meta.classes)
    teacher.requires_grad_(False)
    return teacher.eval()


def run_recipe(loaded: LoadedRecipe, options: RunOptions, console: Console | None = None) -> RunSummary:
    console = console or Console(stderr=True)
    recipe, spec = loaded.recipe, loaded.recipe.train
    run_dir = options.run_dir or Path(recipe.output_dir) / recipe.name
    check_run_dir(run_dir, options)  # before a missing teacher is trained for nothing
    # Everything the user's files can break is built before the run folder exists (and before a
    # missing teacher is trained). Building data draws on no global random state.
    train_set, val_set, classes, labeled = build_data(recipe.data, str(loaded.path), spec.seed)
    teacher = None
    if loaded.teacher_card is not None:  # before this run's Accelerator exists
        teacher = load_teacher(loaded, classes, console)
    accelerator = make_accelerator(spec)
    set_seed(spec.seed, deterministic=spec.deterministic)
    student = build_student(loaded, classes)
    prune_report = None
    if recipe.prune is not None:
        from distill.prune.stage import prune_student

        student, prune_report = prune_student(loaded, student, teacher, train_set, run_dir, options.resume, console)
    model = Distillation(student, build_losses(loaded, student, teacher))
    backbone, rest = student.param_groups()
    adapters = [p for loss in model.losses for p in loss.parameters()]
    optimizer = build_optimizer([(backbone, 1.0), (rest + adapters, spec.head_lr_mult)], spec)
    scheduler = build_scheduler(optimizer, spec)
    generator = torch.Generator().manual_seed(spec.seed)
    loader = DataLoader(train_set, batch_size=recipe.data.batch_size, shuffle=True, drop_last=True,
                        num_workers=recipe.data.workers, collate_fn=collate, generator=generator)
    if len(loader) == 0:
        raise DistillError(loaded.path, "data.batch_size", f"at most {len(train_set)} (the training images)", got=recipe.data.batch_size)
    prepare_run_dir(run_dir, options)
    if prune_report is not None and accelerator.is_main_process and not (run_dir / "pruned_student.safetensors").is_file():
        from distill.prune.stage import save_pruned

        save_pruned(student, loaded, run_dir, prune_report)
    if labeled is not None and accelerator.is_main_process:
        atomic_write_text(run_dir / "labeled.txt", "".join(f"{stem}\n" for stem in labeled))
    model, optimizer, loader = accelerator.prepare(model, optimizer, loader)
    accelerator.register_for_checkpointing(scheduler)
    if teacher is not None:
        teacher.to(accelerator.device)
    if accelerator.is_main_process:
        atomic_write_text(run_dir / "recipe.resolved.yaml", loaded.to_yaml())
    trainer = Trainer(accelerator, model, teacher, train_set, val_set, classes, spec, run_dir, loader, optimizer,
                      scheduler, eval_size=recipe.data.eval_size, eval_batch_size=recipe.data.eval_batch_size)
    started = time.perf_counter()
    metrics = trainer.fit(resume=options.resume)
    wall = time.perf_counter() - started
    student = accelerator.unwrap_model(model).student
    params = sum(p.numel() for p in student.parameters())
    info = {
        "recipe": recipe.name, "recipe_hash": recipe.fingerprint(), "seed": spec.seed, "iterations": spec.iterations,
        "dataset": recipe.data.name, "data_options": recipe.data.options, "split": recipe.data.val_split,
        "eval_size": recipe.data.eval_size,
        "metrics": {k: metrics[k] for k in ("miou", "pixel_acc", "boundary_iou", "trimap_iou")},
        "teacher": recipe.teacher, "losses": [s.name for s in recipe.losses],
        "student_init": recipe.student_init, "prune": prune_report,
    }
    record = {**metrics, "split": recipe.data.val_split, "dataset": recipe.data.name, "recipe": recipe.name,
              "recipe_hash": info["recipe_hash"], "iterations": spec.iterations, "seed": spec.seed,
              "wall_time_s": round(wall, 1), "params": params, "eval_size": recipe.data.eval_size,
              **({"prune": prune_report} if prune_report is not None else {})}
    if accelerator.is_main_process:
        save_model(student, run_dir / "student.safetensors", info)
        atomic_write_text(run_dir / "metrics.json", json.dumps(record, indent=2))
    accelerator.wait_for_everyone()
    return RunSummary(run_dir, metrics, wall, params, accelerator.num_processes, accelerator.is_main_process)
