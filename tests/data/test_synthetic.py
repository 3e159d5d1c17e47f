"""distill/data/synthetic.py: determinism, split separation and the sample contract."""

from __future__ import annotations

import pytest
import torch

from distill.data import DATASETS, build_dataset
from distill.data.synthetic import SyntheticScenes
from distill.errors import DistillError


def test_contract_and_default_counts():
    train = build_dataset("synthetic", None, "train")
    assert (len(train), len(build_dataset("synthetic", None, "val")), len(build_dataset("synthetic", None, "test"))) == (96, 24, 24)
    sample = train[5]
    assert sample["image"].dtype == torch.uint8 and sample["image"].shape == (3, 96, 128)
    assert sample["label"].dtype == torch.int64 and sample["label"].shape == (96, 128)
    assert sample["name"] == train.stem(5) == "train_00005"
    assert train.classes[:3] == ["sky", "ground", "road"] and int(sample["label"].max()) < len(train.classes)


def test_same_seed_and_index_give_identical_tensors():
    a = build_dataset("synthetic", None, "train", {"num_images": 4})
    b = DATASETS.get("synthetic")(None, "train", num_images=4)
    for index in (3, 0):  # order of access must not matter
        assert torch.equal(a[index]["image"], b[index]["image"]) and torch.equal(a[index]["label"], b[index]["label"])


def test_index_split_and_seed_change_the_scene():
    train = build_dataset("synthetic", None, "train", {"num_images": 4})
    val = build_dataset("synthetic", None, "val", {"num_images": 4})
    other_seed = build_dataset("synthetic", None, "train", {"num_images": 4, "seed": 1})
    assert not torch.equal(train[0]["image"], train[1]["image"])
    assert not torch.equal(train[0]["label"], val[0]["label"])
    assert not torch.equal(train[0]["image"], other_seed[0]["image"])


def test_size_option_from_yaml_list():
    dataset = build_dataset("synthetic", "ignored/root", "val", {"size": [48, 64], "num_images": 2})
    assert dataset[1]["image"].shape == (3, 48, 64) and len(dataset) == 2
    with pytest.raises(IndexError):
        dataset[2]


def test_bad_options_name_the_field():
    with pytest.raises(DistillError, match=r"r\.yaml: data\.options\.size\[0\]: expected a number > 0"):
        build_dataset("synthetic", None, "train", {"size": [0, 64]}, file="r.yaml")
    with pytest.raises(DistillError, match=r"r\.yaml: data\.options\.size: expected \[H, W\] with both sides >= 16"):
        build_dataset("synthetic", None, "train", {"size": [8, 64]}, file="r.yaml")
    with pytest.raises(DistillError, match=r"split: expected one of train, val, test"):
        SyntheticScenes("dev", 2, (32, 32), 0)
