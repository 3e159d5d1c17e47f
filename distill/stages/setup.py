"""What the stages build: accelerator, data, student, teachers, losses, optimizer, loader."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from accelerate import Accelerator
from accelerate.state import AcceleratorState, GradientState
from accelerate.utils import DataLoaderConfiguration
from torch.utils.data import DataLoader

from distill.data import TransformedDataset, build_dataset, build_train_transform
from distill.data.partitions import select_partition, stems_at
from distill.data.semisup import SemiSupervisedDataset
from distill.engine.evaluate import collate
from distill.engine.loop import Distillation
from distill.engine.schedule import build_optimizer
from distill.errors import DistillError
from distill.io import sha256_of
from distill.losses import Loss
from distill.models import Segmenter, build_model, load_model_file
from distill.models.build import weights_file
from distill.models.cards import LogitTeacherCard
from distill.outputs import STUDENT
from distill.processes import processes
from distill.recipe import LoadedRecipe
from distill.specs import DataSpec, TrainSpec


@dataclass
class TrainData:
    train: TransformedDataset | SemiSupervisedDataset  # with augmentation
    val: Any
    classes: list[str]
    labeled: list[str] | None  # stems of the labeled subset, when the recipe takes one
    unlabeled: list[str] | None = None  # stems the unlabeled views draw from (data.unlabeled_views)


def make_accelerator(spec: TrainSpec, project_dir: Path | None = None) -> Accelerator:
    # Accelerate keeps process-wide singletons; a teacher trained first in the same process
    # must not leave its settings behind for the student run.
    AcceleratorState._reset_state(reset_partial_state=False)
    GradientState._reset_state()
    if spec.mixed_precision == "fp16" and not torch.cuda.is_available():
        raise DistillError(None, "train.mixed_precision", "no or bf16 on a machine without a GPU", got="fp16")
    if spec.teacher_precision == "fp16" and not torch.cuda.is_available():
        raise DistillError(None, "train.teacher_precision", "same or bf16 on a machine without a GPU", got="fp16")
    return Accelerator(
        cpu=not torch.cuda.is_available(),  # with LOCAL_RANK set this selects gloo multi-CPU DDP
        mixed_precision=spec.mixed_precision,
        gradient_accumulation_steps=spec.grad_accum,
        # split_batches: data.batch_size is the global batch, cut into one slice per process, so a
        # recipe means the same optimisation with one process or several (tests/engine/test_processes.py)
        # data_seed: every process shuffles alike (set_seed is device_specific: the global seeds differ)
        dataloader_config=DataLoaderConfiguration(use_seedable_sampler=True, split_batches=True, data_seed=spec.seed),
        step_scheduler_with_optimizer=False,
        log_with=list(spec.log_with) or None,
        project_dir=str(project_dir) if project_dir is not None and spec.log_with else None,
    )


def check_global_batch(path: Path | None, spec: DataSpec, train_images: int) -> None:
    """data.batch_size is the global batch: at most the training images, and split evenly across processes."""
    if train_images < spec.batch_size:
        raise DistillError(path, "data.batch_size", f"at most {train_images} (the training images)", got=spec.batch_size)
    if spec.batch_size % processes():
        raise DistillError(path, "data.batch_size", f"a multiple of the {processes()} processes (the global batch is split "
                           "evenly across them)", got=spec.batch_size)


def start_trackers(accelerator: Accelerator, loaded: LoadedRecipe) -> None:
    """The recipe's trackers, with the resolved recipe (flattened to scalars) as the run config."""
    if not loaded.recipe.train.log_with:
        return
    from distill.stages.rundir import flatten

    config = {k: v if isinstance(v, (int, float, str, bool)) else str(v)
              for k, v in flatten(loaded.recipe.model_dump(mode="json")).items()}
    accelerator.init_trackers(loaded.recipe.name, config=config)


def build_data(spec: DataSpec, file: str, seed: int) -> TrainData:
    """The training set (a labeled subset of it, and unlabeled views, when the recipe says so) and val."""
    train = build_dataset(spec.name, spec.root, "train", spec.options, file=file)
    val = build_dataset(spec.name, spec.root, spec.val_split, spec.options, file=file)
    transform = build_train_transform(spec.crop_size, spec.scale_range, spec.flip, spec.photometric)
    partition = select_partition(train, spec.labeled_fraction, spec.labeled_list, spec.subset_seed)
    classes = list(train.classes)
    if partition is None:
        return TrainData(TransformedDataset(train, transform, seed=seed), val, classes, None)
    labeled, unlabeled = partition
    if not spec.unlabeled_views:
        subset = torch.utils.data.Subset(train, labeled)
        return TrainData(TransformedDataset(subset, transform, seed=seed), val, classes, stems_at(train, labeled))
    semi = SemiSupervisedDataset(train, labeled, unlabeled, spec.unlabeled_views, transform, seed=seed)
    return TrainData(semi, val, classes, stems_at(train, labeled), stems_at(train, unlabeled))


def make_loader(train_set: Any, spec: DataSpec, seed: int) -> DataLoader:
    generator = torch.Generator().manual_seed(seed)
    return DataLoader(train_set, batch_size=spec.batch_size, shuffle=True, drop_last=True,
                      num_workers=spec.workers, collate_fn=collate, generator=generator)


def apply_memory_format(spec: TrainSpec, *modules: torch.nn.Module) -> None:
    """The layout training runs in (TrainSpec.channels_last), set in place: call it before the
    optimizer and DDP see the parameters."""
    if spec.channels_last:
        for module in modules:
            module.to(memory_format=torch.channels_last)


def make_optimizer(model: Distillation, spec: TrainSpec) -> torch.optim.Optimizer:
    backbone, rest = model.student.param_groups()
    adapters = [p for loss in model.losses for p in loss.parameters()]
    return build_optimizer([(backbone, 1.0), (rest + adapters, spec.head_lr_mult)], spec)


def teachers_read(loaded: LoadedRecipe) -> set[str]:
    return {name for loss in loaded.losses() for name in loss.teachers_read()}


def build_losses(loaded: LoadedRecipe, student: Segmenter, teachers: dict[str, Segmenter]) -> list[tuple[str, Loss, float]]:
    """The recipe's losses, their taps checked against the models they read, adapters made."""
    built, seen = [], set()
    for i, (spec, loss) in enumerate(zip(loaded.recipe.losses, loaded.losses())):
        for read in loss.reads():
            who = "student" if read.model == STUDENT else f"teacher {read.model}"
            model = student if read.model == STUDENT else teachers[read.model]
            if read.tap != "logits" and read.tap not in model.taps:
                raise DistillError(loaded.path, f"losses[{i}]", f"taps the {who} records ({', '.join(model.taps)})", got=read.tap)
        own = teachers.get(loss.teacher_name)
        loss.setup(student.taps, own.taps if own is not None else None)
        name = spec.name if spec.name not in seen else f"{spec.name}#{i}"
        seen.add(name)
        built.append((name, loss, spec.weight if spec.weight is not None else type(loss).default_weight))
    return built


def build_student(loaded: LoadedRecipe, classes: list[str]) -> Segmenter:
    """The card's student, or the trained (possibly pruned) model of `student_init`."""
    recipe = loaded.recipe
    if recipe.student_init is None:
        return build_model(loaded.student_card, len(classes), classes, card_file=recipe.student)
    student, meta = load_model_file(recipe.student_init)
    student.adopt_runtime_settings(loaded.student_card)  # e.g. DToP's p0: stage 2 prunes the stage-1 model
    if meta.classes and meta.classes != classes:
        raise DistillError(recipe.student_init, "classes", f"the data set's {len(classes)} classes {classes}", got=meta.classes)
    return student


def teacher_file(loaded: LoadedRecipe, name: str) -> Path:
    """The teacher's model file; a teacher-only card (ensemble, onnx) is its own, and it always exists."""
    card = loaded.teacher_cards[name]
    if isinstance(card, LogitTeacherCard):
        return Path(loaded.recipe.teachers[name])
    return weights_file(card)


def teacher_sha256(loaded: LoadedRecipe, name: str) -> str:
    """What the teacher-output cache key hashes: the model file, or for a teacher-only card a hash
    of everything its outputs depend on (each member's file, the .onnx file; LogitTeacherCard)."""
    card = loaded.teacher_cards[name]
    return card.sources_sha256() if isinstance(card, LogitTeacherCard) else sha256_of(teacher_file(loaded, name))


def load_teacher(loaded: LoadedRecipe, name: str, classes: list[str]) -> Segmenter:
    path, card = teacher_file(loaded, name), loaded.teacher_cards[name]
    if not path.is_file():
        raise DistillError(loaded.recipe.teachers[name], "checkpoint", "an existing model file (train_teacher makes it)", got=str(path))
    teacher, meta = load_model_file(path)
    # A teacher-only card has no file recording its classes: its count is checked too, on its own field.
    teacher_only = isinstance(card, LogitTeacherCard)
    if (meta.classes and meta.classes != classes) or (teacher_only and teacher.num_classes != len(classes)):
        raise DistillError(path, card.classes_field if teacher_only else "classes", f"the data set's {len(classes)} classes {classes}",
                           got=meta.classes or f"<{teacher.num_classes} classes>")
    teacher.adopt_runtime_settings(loaded.teacher_cards[name])  # the recipe's card: e.g. its multi-scale + flip inference
    teacher.requires_grad_(False)
    return teacher.eval()
