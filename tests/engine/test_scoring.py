"""`distill eval` of a foreign torch state dict: only with --allow-pickle and a --card, loaded with
weights_only=True, and scored exactly like the same weights in a distill model file."""

from __future__ import annotations

import json
from functools import partial

import pytest
import torch
from helpers import cli_env, run_distill, student_card

from distill.cards import CnnCard
from distill.data.scenes import CLASSES
from distill.models import build_model, save_model

STUDENT = student_card()
distill = partial(run_distill, env=cli_env(PYTHONDONTWRITEBYTECODE="1"), timeout=600)


@pytest.mark.slow
def test_allow_pickle_scores_a_state_dict_like_the_model_file(tmp_path):
    (tmp_path / "student.yaml").write_text(STUDENT)
    torch.manual_seed(0)
    card = CnnCard(name="tiny_student", arch="lraspp", backbone="mobilenetv3_small_100", head_channels=8)
    model = build_model(card, len(CLASSES), list(CLASSES), load_pretrained=False)
    save_model(model, tmp_path / "m.safetensors", {})
    torch.save({"state_dict": model.state_dict()}, tmp_path / "m.pth")  # a Lightning-style wrapper

    data = ("--data", "synthetic", "--split", "val")
    ours = distill("eval", "m.safetensors", *data, "--json", "a.json", cwd=tmp_path)
    assert ours.returncode == 0, ours.stderr
    foreign = distill("eval", "m.pth", "--allow-pickle", "--card", "student.yaml", *data, "--json", "b.json", cwd=tmp_path)
    assert foreign.returncode == 0, foreign.stderr
    a, b = (json.loads((tmp_path / name).read_text()) for name in ("a.json", "b.json"))
    for key in ("miou", "pixel_acc", "boundary_iou", "trimap_iou", "per_class_iou", "num_pixels"):
        assert a[key] == b[key], key

    (tmp_path / "fcn.yaml").write_text(STUDENT.replace("lraspp", "fcn"))
    wrong = distill("eval", "m.pth", "--allow-pickle", "--card", "fcn.yaml", *data, cwd=tmp_path)
    assert wrong.returncode == 2
    assert wrong.stderr.splitlines() == [
        "distill: m.pth: expected weights matching the card's architecture, got <7 missing, 11 unexpected, "
        "e.g. head.block.0.0.weight>"]
