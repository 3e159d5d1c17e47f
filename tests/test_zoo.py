"""Shipped model files (zoo/): each file's sha256 is the one recorded in zoo/index.json, and
evaluating it on the recorded slice of its data set reproduces the recorded mIoU (skipped when
the data set is not beside the checkout)."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest
import torch

ZOO = Path(__file__).resolve().parents[1] / "zoo"
INDEX = json.loads((ZOO / "index.json").read_text()) if (ZOO / "index.json").is_file() else {}


@pytest.mark.parametrize("name", sorted(INDEX) or [pytest.param("none", marks=pytest.mark.skip(reason="zoo/index.json lists no file"))])
def test_zoo_file_matches_its_record(name):
    entry, path = INDEX[name], ZOO / name
    assert hashlib.sha256(path.read_bytes()).hexdigest() == entry["sha256"]
    assert path.stat().st_size <= 16_000_000  # kept small enough for the repository


@pytest.mark.parametrize("name", sorted(INDEX) or [pytest.param("none", marks=pytest.mark.skip(reason="zoo/index.json lists no file"))])
def test_zoo_file_reproduces_its_recorded_slice_miou(name):
    from accelerate import Accelerator

    from distill.data import build_dataset
    from distill.engine.evaluate import evaluate
    from distill.models import load_model_file

    entry = INDEX[name]
    check = entry["slice"]
    root = (ZOO.parent / check["root"]).resolve()
    if not root.is_dir():
        pytest.skip(f"{root} is not here")
    model, meta = load_model_file(ZOO / name)
    dataset = build_dataset(check["dataset"], str(root), check["split"])
    part = torch.utils.data.Subset(dataset, range(check["images"]))
    metrics = evaluate(model.eval(), part, list(dataset.classes), Accelerator(cpu=True))
    assert metrics["miou"] == pytest.approx(check["miou"], abs=0.01)
