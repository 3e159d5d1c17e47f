"""The two-stage DToP recipe: stage 1 trained by its own stage, stage 2 prunes the stage-1 file."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from distill.data.synthetic import CLASSES
from distill.errors import DistillError
from distill.models import build_model, save_model
from distill.recipe import load_recipe

from conftest import tiny_card

ROOT = Path(__file__).resolve().parents[2]


def test_dtop_recipe_loads_before_its_stage_one_model_exists(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # no checkpoints/ here
    loaded = load_recipe(ROOT / "recipes/dtop.yaml")
    assert loaded.student_card.p0 == 0.9 and loaded.teacher_cards["base"].p0 == 1.0
    assert [s.name for s in loaded.recipe.stages] == ["train_teacher", "train_teacher", "distill"]
    assert {n for loss in loaded.losses() for n in loss.teachers_read()} == {"main"}  # base is never loaded as a teacher
    assert [r.tap for loss in loaded.losses() for r in loss.reads() if r.model == "student"] == ["logits", "logits", "aux0", "aux1"]


def test_a_missing_student_init_no_stage_makes_is_still_refused(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    with pytest.raises(DistillError, match="student_init"):
        load_recipe(ROOT / "recipes/dtop.yaml", ["stages=[{name: train_teacher, teacher: main}, {name: distill}]"])


def test_stage_two_takes_p0_and_k_from_its_card_and_weights_from_the_file(tmp_path):
    from distill.stages.setup import build_student

    torch.manual_seed(0)
    base = build_model(tiny_card(num_classes=None), len(CLASSES), list(CLASSES))
    save_model(base, tmp_path / "base.safetensors", {})
    card = "name: tiny_dtop\nfamily: vit\nbackbone: test_vit\nout_indices: [1, 3, 5]\np0: 0.5\nk: 2\n"
    (tmp_path / "dtop.yaml").write_text(card)
    (tmp_path / "recipe.yaml").write_text(
        f"name: stage2\nstudent: {tmp_path / 'dtop.yaml'}\nstudent_init: {tmp_path / 'base.safetensors'}\n"
        "losses:\n  - {name: ce, aux_weight: 1.0}\ntrain: {iterations: 1}\n")
    student = build_student(load_recipe(tmp_path / "recipe.yaml"), list(CLASSES))
    assert (student.card.p0, student.card.k) == (0.5, 2)
    assert torch.equal(student.net.heads[0].classifier.weight, base.net.heads[0].classifier.weight)
