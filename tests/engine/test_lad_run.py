"""LAD end to end through the real loop on synthetic scenes (tinyconv models, seconds): the
label-assisted teacher is trained on two noised paths from recipe data alone, then the student is
distilled from it and never receives a label, in training or in evaluation."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from helpers import synthetic_data
from rich.console import Console

from distill.models import load_model_file
from distill.recipe import load_recipe
from distill.stages import RunOptions, run_recipe

TEACHER = """family: tinyconv
name: lad_teacher
widths: [8, 16]
input: {{name: lad_label}}
checkpoint: {checkpoint}
train:
  data: {data}
  batch_transforms: [{{name: copy, into: path2}}]
  losses:
    - {{name: ce}}
    - {{name: ce, view: path2}}
    - {{name: lad.consistency, other: path2}}
  train: {{iterations: 3, lr: 0.01}}
"""


def write_project(tmp_path: Path) -> Path:
    (tmp_path / "teacher.yaml").write_text(TEACHER.format(checkpoint=tmp_path / "lad.safetensors", data=synthetic_data(8)))
    (tmp_path / "student.yaml").write_text("family: tinyconv\nname: student\nwidths: [8, 16]\n")
    (tmp_path / "lad.yaml").write_text(f"name: lad\nteacher: teacher.yaml\nstudent: student.yaml\ndata: {synthetic_data(8)}\n"
                                       "losses:\n  - {name: ce}\n  - {name: cwd, weight: 3.0, tau: 4.0}\n"
                                       "train: {iterations: 3, lr: 0.01}\n")
    return tmp_path / "lad.yaml"


SEEN: list[tuple[str, bool, int]] = []  # (card, training, input channels) of every forward of the run


@pytest.fixture(scope="module")
def lad_run(tmp_path_factory):
    """One LAD run (3 teacher steps, 3 student steps), every model forward recorded."""
    from distill.models.tinyconv import TinyConvSegmenter

    tmp_path = tmp_path_factory.mktemp("lad")
    path = write_project(tmp_path)
    real_forward = TinyConvSegmenter.forward

    def recording(self, images, taps=()):
        SEEN.append((self.card.name, self.training, images.shape[1]))
        return real_forward(self, images, taps)

    TinyConvSegmenter.forward = recording
    try:
        run_recipe(load_recipe(path), RunOptions(run_dir=tmp_path / "run"), Console(quiet=True))
    finally:
        TinyConvSegmenter.forward = real_forward
    return tmp_path


def test_lad_teacher_trains_on_two_paths_then_the_student_never_sees_a_label(lad_run):
    teacher_steps = [s for s in SEEN if s[0] == "lad_teacher" and s[1]]
    assert len(teacher_steps) == 6 and all(s[2] == 4 for s in teacher_steps)  # two noised paths a step, 3 steps
    frozen = [s for s in SEEN if s[0] == "lad_teacher" and not s[1]]
    assert frozen and all(s[2] == 4 for s in frozen)  # the frozen teacher reads its label channel
    student = [s for s in SEEN if s[0] == "student"]
    assert any(s[1] for s in student) and any(not s[1] for s in student)  # trained and evaluated
    assert all(s[2] == 3 for s in student)  # RGB only, in training and in evaluation
    assert "label_input" not in json.loads((lad_run / "run" / "metrics.json").read_text())  # image-only figures
    teacher_metrics = json.loads((lad_run / "run" / "teacher-main" / "metrics.json").read_text())
    assert teacher_metrics["label_input"] == "ground truth (privileged information)"
    model, meta = load_model_file(lad_run / "lad.safetensors")
    assert model.in_channels == 4 and meta.card["input"]["name"] == "lad_label"


def evaluate_cli(*args: str) -> tuple[str, dict]:
    """`distill eval ARGS --json` in this process; (its output, the JSON it wrote)."""
    from typer.testing import CliRunner

    from distill.cli import app

    out = Path(args[0]).with_suffix(f".{len(SEEN)}.json")
    result = CliRunner().invoke(app, ["eval", *args, "--data", "synthetic", "--json", str(out)], env={"COLUMNS": "200"})
    assert result.exit_code == 0, result.output[-2000:]
    return result.output, json.loads(out.read_text())


def test_distill_eval_feeds_a_lad_teacher_its_label_and_says_so(lad_run):
    teacher = str(lad_run / "lad.safetensors")
    output, with_label = evaluate_cli(teacher)
    assert "label input: ground truth (privileged information)" in output
    assert with_label["label_input"] == "ground truth (privileged information)"
    output, without = evaluate_cli(teacher, "--no-label-input")
    assert without["label_input"] == "none (label channel zeroed)" and "label channel zeroed" in output
    _, again = evaluate_cli(teacher)  # the evaluation's noise is seeded: the same figures twice
    assert again["miou"] == with_label["miou"] and again["per_class_iou"] == with_label["per_class_iou"]
    output, student = evaluate_cli(str(lad_run / "run" / "student.safetensors"))
    assert "label input" not in output and "label_input" not in student
