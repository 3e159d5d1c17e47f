"""Toy proofs of the engine's shapes, each end to end through the real loop on synthetic scenes:
a loss that reads two named teachers, a loss that reads two views of one batch, a teacher whose
input adapter adds a label channel (and a student that never sees one), a teacher no loss reads,
and a second model family (tinyconv) trained, saved and rebuilt by `distill eval` from its file.

The models are tinyconv (two strided conv stages, no backbone), so each run takes a second or two.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from helpers import run_distill, synthetic_data
from rich.console import Console

from distill.cards import TinyConvCard
from distill.data.scenes import CLASSES
from distill.engine.loop import forwards_of
from distill.errors import DistillError
from distill.losses import LOSSES, Loss
from distill.losses.kd import PixelWiseDistillation
from distill.models import build_model, load_model_file, save_model
from distill.outputs import STUDENT, PairView, Read
from distill.recipe import load_recipe
from distill.stages import RunOptions, run_recipe

SEEN: dict[str, list] = {"teachers": [], "views": [], "student_channels": []}


class TwoTeachers(Loss):
    """MSE of the student's logits to the mean of two named teachers' logits."""

    def reads(self) -> list[Read]:
        return [Read(STUDENT, self.view, "logits"), Read("main", self.view, "logits"), Read("wide", self.view, "logits")]

    def forward(self, pair: PairView) -> torch.Tensor:
        main, wide = pair.output("main").logits, pair.output("wide").logits
        SEEN["teachers"].append((main.shape, wide.shape, bool(torch.equal(main, wide))))
        return ((pair.student.logits - (main + wide) / 2) ** 2).mean()


class FlipConsistency(Loss):
    """MSE between the student's logits on a view and the mirrored logits on its flipped copy."""

    needs_teacher = False

    def reads(self) -> list[Read]:
        return [Read(STUDENT, "labeled", "logits"), Read(STUDENT, "flipped", "logits")]

    def forward(self, pair: PairView) -> torch.Tensor:
        plain, flipped = pair.output(STUDENT, "labeled").logits, pair.output(STUDENT, "flipped").logits
        SEEN["views"].append(bool(torch.equal(pair.batch.view("flipped").image, pair.batch.view("labeled").image.flip(-1))))
        return ((plain - flipped.flip(-1)) ** 2).mean()


@pytest.fixture(autouse=True)
def toy_losses():
    """The toy losses are registered only while a test here runs (the loss contract tests iterate
    over the registry's real losses)."""
    toys = {"test_two_teachers": TwoTeachers, "test_flip_consistency": FlipConsistency}
    for name, cls in toys.items():
        LOSSES.register(name)(cls)
    yield
    for name in toys:
        LOSSES.remove(name)


def tiny_card(name: str, checkpoint: Path | None = None, extra: str = "") -> str:
    text = f"family: tinyconv\nname: {name}\nwidths: [8, 16]\n"
    return text + (f"checkpoint: {checkpoint}\n" if checkpoint else "") + extra


def write_teacher(tmp_path: Path, name: str, seed: int) -> Path:
    torch.manual_seed(seed)
    path = tmp_path / f"{name}.safetensors"
    save_model(build_model(TinyConvCard(name=name, widths=[8, 16]), len(CLASSES), list(CLASSES)), path, {})
    (tmp_path / f"{name}.yaml").write_text(tiny_card(name, path))
    return tmp_path / f"{name}.yaml"


def write_recipe(tmp_path: Path, body: str, iterations: int = 3) -> Path:
    (tmp_path / "student.yaml").write_text(tiny_card("student"))
    text = f"name: toy\nstudent: student.yaml\ndata: {synthetic_data(8)}\n{body}train: {{iterations: {iterations}, lr: 0.01}}\n"
    (tmp_path / "toy.yaml").write_text(text)
    return tmp_path / "toy.yaml"


def run(path: Path, tmp_path: Path):
    return run_recipe(load_recipe(path), RunOptions(run_dir=tmp_path / "run"), Console(quiet=True))


def test_a_loss_reads_two_named_teachers_each_run_once_per_view(tmp_path):
    main, wide = write_teacher(tmp_path, "main_t", 1), write_teacher(tmp_path, "wide_t", 2)
    path = write_recipe(tmp_path, f"teachers: {{main: {main}, wide: {wide}}}\nlosses:\n  - {{name: ce}}\n  - {{name: test_two_teachers}}\n"
                                  "  - {name: kd, teacher: wide}\n")
    loaded = load_recipe(path)
    assert forwards_of(loaded.losses()) == {(STUDENT, "labeled"): (), ("main", "labeled"): (), ("wide", "labeled"): ()}
    SEEN["teachers"].clear()
    summary = run(path, tmp_path)
    assert len(SEEN["teachers"]) == 3  # one call per step
    assert all(m == w and not same for m, w, same in SEEN["teachers"])  # two different teachers
    assert json.loads((summary.run_dir / "metrics.json").read_text())["iterations"] == 3


def test_a_loss_reads_two_views_of_one_batch(tmp_path):
    path = write_recipe(tmp_path, "batch_transforms: [{name: hflip}]\nlosses:\n  - {name: ce}\n  - {name: test_flip_consistency}\n")
    SEEN["views"].clear()
    run(path, tmp_path)
    assert SEEN["views"] == [True, True, True]


def test_a_view_no_transform_makes_is_refused_at_load(tmp_path):
    path = write_recipe(tmp_path, "losses:\n  - {name: ce}\n  - {name: test_flip_consistency}\n")
    with pytest.raises(DistillError, match=r"losses\[1\]\.view: expected a view of the batch \(labeled\), got 'flipped'"):
        load_recipe(path)


def test_a_teacher_no_loss_reads_is_neither_trained_nor_loaded(tmp_path):
    main = write_teacher(tmp_path, "main_t", 1)
    (tmp_path / "unused.yaml").write_text(tiny_card("unused", tmp_path / "nowhere.safetensors"))
    path = write_recipe(tmp_path, f"teachers: {{main: {main}, unused: unused.yaml}}\nlosses:\n  - {{name: ce}}\n  - {{name: kd}}\n")
    run(path, tmp_path)
    assert not (tmp_path / "nowhere.safetensors").exists() and not (tmp_path / "run" / "teacher-unused").exists()


def test_a_label_channel_teacher_is_trained_and_read_while_the_student_sees_images(tmp_path):
    train_block = f"train:\n  data: {synthetic_data(8)}\n  train: {{iterations: 4, lr: 0.05}}\n"
    (tmp_path / "lt.yaml").write_text(tiny_card("lt", tmp_path / "lt.safetensors", "input: {name: label_channel}\n" + train_block))
    path = write_recipe(tmp_path, "teacher: lt.yaml\nlosses:\n  - {name: ce}\n  - {name: kd}\n")
    channels: list[int] = []
    original = PixelWiseDistillation.forward
    PixelWiseDistillation.forward = lambda self, pair: (channels.append(pair.batch.view("labeled").image.shape[1]), original(self, pair))[1]
    try:
        run(path, tmp_path)
    finally:
        PixelWiseDistillation.forward = original
    teacher, meta = load_model_file(tmp_path / "lt.safetensors")
    assert teacher.stages[0][0].in_channels == 4 and meta.card["input"]["name"] == "label_channel"
    student, _ = load_model_file(tmp_path / "run" / "student.safetensors")
    assert student.stages[0][0].in_channels == 3 and channels == [3, 3, 3]  # the view's image is RGB; the label channel is the teacher's


def test_a_student_that_reads_labels_is_refused(tmp_path):
    main = write_teacher(tmp_path, "main_t", 1)
    path = write_recipe(tmp_path, f"teacher: {main}\nlosses:\n  - {{name: ce}}\n  - {{name: kd}}\n")
    (tmp_path / "student.yaml").write_text(tiny_card("student", extra="input: {name: label_channel}\n"))
    with pytest.raises(DistillError, match=r"student\.yaml: input\.name: expected image for a student"):
        load_recipe(path)


def test_second_family_trains_saves_and_is_rebuilt_by_eval_from_the_file_alone(tmp_path):
    path = write_recipe(tmp_path, "losses:\n  - {name: ce}\n", iterations=1)
    summary = run(path, tmp_path)
    model_file = summary.run_dir / "student.safetensors"
    result = run_distill("eval", str(model_file), "--data", "synthetic", "--json", str(tmp_path / "eval.json"), cwd=tmp_path / "run")
    assert result.returncode == 0, result.stderr[-2000:]
    stored = json.loads((summary.run_dir / "metrics.json").read_text())
    evaluated = json.loads((tmp_path / "eval.json").read_text())
    assert evaluated["miou"] == stored["miou"] and evaluated["per_class_iou"] == stored["per_class_iou"]
    model, meta = load_model_file(model_file)
    assert meta.card["family"] == "tinyconv" and type(model).__name__ == "TinyConvSegmenter"


def test_explicit_stages_are_typed_and_checked_at_load(tmp_path):
    main = write_teacher(tmp_path, "main_t", 1)
    body = f"teacher: {main}\nlosses:\n  - {{name: ce}}\n  - {{name: kd}}\n"
    good = write_recipe(tmp_path, body + "stages:\n  - {name: train_teacher, teacher: main}\n  - {name: distill}\n")
    assert [stage.name for stage in load_recipe(good).recipe.stages] == ["train_teacher", "distill"]
    for stages, message in [("[{name: distil}]", r"stages\[0\]\.name: expected one of train_teacher, prune, distill, quantize, got 'distil' \(did you mean 'distill'\?\)"),
                            ("[{name: distill}, {name: train_teacher}]", r"stages: expected a list that ends with its one distill stage"),
                            ("[{name: train_teacher, teacher: wide}, {name: distill}]", r"stages\[0\]\.teacher: expected a teacher named"),
                            ("[{name: prune}, {name: distill}]", r"stages: expected a prune: block")]:
        path = write_recipe(tmp_path, body + f"stages: {stages}\n")
        with pytest.raises(DistillError, match=message):
            load_recipe(path)
