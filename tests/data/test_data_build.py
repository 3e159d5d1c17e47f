"""distill/data/build.py: the registry, option checking and errors that name the recipe."""

from __future__ import annotations

import pytest

from distill.data import DATASETS, SegDataset, build_dataset
from distill.data.build import make_options_model
from distill.errors import DistillError


def test_every_dataset_is_registered():
    assert list(DATASETS) == ["ade20k", "camvid", "cityscapes", "folder", "synthetic", "voc"]


@pytest.mark.parametrize("name", ["ade20k", "camvid", "cityscapes", "folder", "synthetic", "voc"])
def test_every_builder_has_a_checkable_signature(name):
    """Contract: root and split first, then keyword options with defaults, so recipes can be checked at load."""
    builder = DATASETS.get(name)
    model = make_options_model(builder)
    assert all(not field.is_required() for field in model.model_fields.values())
    assert builder.__doc__


def test_unknown_name_has_did_you_mean():
    with pytest.raises(DistillError, match=r"recipes/x\.yaml: data\.name: expected a known data set name, got 'cityscape' \(did you mean 'cityscapes'\?\)"):
        build_dataset("cityscape", None, "train", file="recipes/x.yaml")


def test_unknown_option_has_did_you_mean():
    with pytest.raises(DistillError, match=r"x\.yaml: data\.options\.sed: expected one of num_images, size, seed, .*did you mean 'seed'"):
        build_dataset("synthetic", None, "train", {"sed": 1}, file="x.yaml")
    with pytest.raises(DistillError, match=r"data\.options\.size: expected no options \(this data set takes none\)"):
        build_dataset("camvid", None, "train", {"size": 1})


def test_option_types_are_checked_and_coerced():
    with pytest.raises(DistillError, match=r"data\.options\.num_images: expected an integer, got 'many'"):
        build_dataset("synthetic", None, "train", {"num_images": "many"})
    dataset = build_dataset("synthetic", None, "train", {"num_images": 2, "size": [32, 40]})
    assert isinstance(dataset, SegDataset) and dataset.size == (32, 40)


def test_unknown_split():
    with pytest.raises(DistillError, match=r"split: expected one of train, val, test, got 'dev'"):
        build_dataset("synthetic", None, "dev")
