"""The shipped recipes themselves, end to end on a few synthetic images (seconds, not minutes).

Only the models are swapped for tiny cards (and the budget shrunk) on the command line; the
recipe's own losses, weights and data set are what runs.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest
from helpers import run_distill, student_card, teacher_card

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.parametrize("recipe", ["bpkd", "kd", "cwd"])
def test_shipped_recipe_runs_end_to_end_on_tiny_models(tmp_path: Path, recipe: str):
    (tmp_path / "teacher.yaml").write_text(teacher_card(head_channels=16, checkpoint=tmp_path / "teacher.safetensors"))
    (tmp_path / "student.yaml").write_text(student_card(head_channels=16))
    overrides = [f"teacher={tmp_path / 'teacher.yaml'}", f"student={tmp_path / 'student.yaml'}",
                 "data.options={num_images: 8, size: [48, 64]}", "data.crop_size=[48, 64]", "data.batch_size=4",
                 "data.workers=0", "train.iterations=3", "train.eval_every=0", "train.log_every=1"]
    result = run_distill("run", str(ROOT / f"recipes/{recipe}.yaml"), *overrides, "--out-dir", str(tmp_path / "run"),
                         cwd=tmp_path)
    assert result.returncode == 0, result.stderr[-2000:]
    assert (tmp_path / "teacher.safetensors").is_file()  # the missing teacher was trained first
    metrics = json.loads((tmp_path / "run/metrics.json").read_text())
    assert 0 <= metrics["miou"] <= 100 and metrics["iterations"] == 3
    logged = [json.loads(line) for line in (tmp_path / "run/log.jsonl").read_text().splitlines()]
    steps = [r for r in logged if "loss" in r]
    assert [r["step"] for r in steps] == [1, 2, 3]
    terms = [name for name in steps[0] if name not in ("step", "lr", "loss", "elapsed_s")]
    expected = {"bpkd": ["ce", "bpkd.edge", "bpkd.body"], "kd": ["ce", "kd"], "cwd": ["ce", "cwd"]}[recipe]
    assert terms == expected
    for record in steps:  # every distillation term is live (positive) and finite at every step
        assert all(math.isfinite(record[t]) and record[t] > 0 for t in terms)


SHIPPED = sorted((ROOT / "recipes").rglob("*.yaml"))  # _base.yaml included: it is a complete recipe too


@pytest.mark.parametrize("path", SHIPPED, ids=[str(p.relative_to(ROOT)) for p in SHIPPED])
def test_every_shipped_recipe_loads(path: Path, monkeypatch, tmp_path):
    """Schema, bases, loss parameters and cards of every recipe we ship, from a clean checkout.

    No runs/ exist there, so a recipe that starts from a trained student (student_init, relative
    to the working directory) gets an untrained file of its own student card in a temporary
    working directory: the loader reads only that file's card, so every check still runs.
    """
    from distill.cards import load_card
    from distill.models import build_model, save_model
    from distill.recipe import _read_with_bases, _Sources, load_recipe

    monkeypatch.chdir(tmp_path)
    merged = _read_with_bases(path, _Sources(), chain=[])  # the recipe's raw values, bases applied
    if merged.get("student_init") is not None:
        card = load_card(ROOT / merged["student"])  # card paths in recipes are relative to the repository root
        save_model(build_model(card, 11, None, load_pretrained=False), tmp_path / merged["student_init"], {})
    loaded = load_recipe(path)
    assert loaded.recipe.name and loaded.recipe.losses
    assert loaded.recipe.train.iterations > 0
    assert len(loaded.loss_params) == len(loaded.recipe.losses)


def test_lad_recipe_trains_its_label_assisted_teacher_then_distils(tmp_path: Path):
    """recipes/lad.yaml with its own teacher card (label input, dual-path training block), only the
    budget and image size shrunk and a tiny student: the teacher is trained first on two noised
    paths, then the student is distilled from it."""
    (tmp_path / "student.yaml").write_text(student_card(head_channels=16))
    tiny = ["data.options={num_images: 8, size: [48, 64]}", "data.crop_size=[48, 64]", "data.batch_size=4", "data.workers=0"]
    overrides = [f"teacher={ROOT / 'teachers/synthetic_lad_lraspp_lite0.yaml'}", f"student={tmp_path / 'student.yaml'}",
                 *tiny, "train.iterations=2", "train.eval_every=0", "train.log_every=1",
                 *(f"teacher.{o}" for o in tiny), "teacher.train.iterations=2", "teacher.train.log_every=1"]
    result = run_distill("run", str(ROOT / "recipes/lad.yaml"), *overrides, "--out-dir", str(tmp_path / "run"), cwd=tmp_path)
    assert result.returncode == 0, result.stderr[-2000:]
    assert (tmp_path / "checkpoints/synthetic_lad_lraspp_lite0.safetensors").is_file()
    teacher_log = [json.loads(line) for line in (tmp_path / "run/teacher-main/log.jsonl").read_text().splitlines()]
    steps = [r for r in teacher_log if "loss" in r]
    assert [r["step"] for r in steps] == [1, 2]
    assert all(r["ce"] > 0 and r["ce#1"] > 0 and r["lad.consistency"] > 0 for r in steps)  # both paths, and their distance
    evaluated = [r["eval"] for r in teacher_log if "eval" in r]
    assert evaluated and evaluated[-1]["label_input"] == "ground truth (privileged information)"
    student_log = [json.loads(line) for line in (tmp_path / "run/log.jsonl").read_text().splitlines()]
    assert [name for name in next(r for r in student_log if "loss" in r) if name not in ("step", "lr", "loss", "elapsed_s")] == ["ce", "cwd"]
