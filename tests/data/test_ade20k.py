"""distill/data/ade20k.py on the real ADEChallengeData2016 samples."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image

from distill.data import build_dataset
from distill.data.ade20k import CLASSES
from distill.errors import DistillError


@pytest.fixture
def ade_root(shared_data):
    root = shared_data / "samples" / "ade20k"
    if not (root / "images").is_dir():
        pytest.skip(f"ADE20K samples not found at {root} (expected ../shared/data/samples/ade20k)")
    return root


def test_class_names_match_object_info_150():
    assert len(CLASSES) == 150 == len(set(CLASSES))
    assert CLASSES[:5] == ["wall", "building", "sky", "floor", "tree"] and CLASSES[12] == "person" and CLASSES[-1] == "flag"


def test_reduce_zero_label_on_real_samples(ade_root):
    val, train = build_dataset("ade20k", ade_root, "val"), build_dataset("ade20k", ade_root, "train")
    assert (len(val), len(train)) == (3, 1)
    sample = val[0]
    assert sample["name"] == "ADE_val_00000001" and sample["image"].shape == (3, 512, 683)
    raw = torch.from_numpy(np.array(Image.open(ade_root / "annotations/validation/ADE_val_00000001.png")).astype(np.int64))
    assert torch.equal(sample["label"] == 255, raw == 0)
    assert torch.equal(sample["label"][raw > 0], raw[raw > 0] - 1)
    assert sorted(sample["label"].unique().tolist()) == [0, 1, 2, 4, 6, 9, 17, 255]  # raw {0,1,2,3,5,7,10,18}
    assert int(train[0]["label"][train[0]["label"] != 255].max()) == 149  # raw 150 -> flag


def test_no_test_split(ade_root):
    with pytest.raises(DistillError, match=r"ade20k: split: expected a labelled split .*got 'test' \(this copy has: train, val\)"):
        build_dataset("ade20k", ade_root, "test")


def test_missing_annotation_and_bad_value(write, tmp_path):
    root = tmp_path / "ADEChallengeData2016"
    write.image(root / "images/training/ADE_train_1.jpg", 5, 7)
    (root / "annotations/training").mkdir(parents=True)
    with pytest.raises(DistillError, match=r"annotations/training/ADE_train_1\.png: expected a label file"):
        build_dataset("ade20k", tmp_path, "train")  # the ADEChallengeData2016/ level is found by itself
    write.mask(root / "annotations/training/ADE_train_1.png", np.full((5, 7), 151))
    with pytest.raises(DistillError, match=r"ADE_train_1\.png: expected label values 0\.\.150 \(0 = unlabeled\), got <values \[151\]>"):
        build_dataset("ade20k", tmp_path, "train")[0]


def test_missing_data_message(tmp_path):
    with pytest.raises(DistillError, match=r"expected the ADEChallengeData2016 layout .*sceneparsing\.csail\.mit\.edu"):
        build_dataset("ade20k", tmp_path, "train")
