"""distill/data/subsets.py: fixed-seed labeled subsets, split lists and the unlabeled view."""

from __future__ import annotations

import pytest
import torch

from distill.data import build_dataset, make_labeled_split, parse_fraction, read_split_list, write_split_list
from distill.data.subsets import SubsetDataset
from distill.errors import DistillError


@pytest.mark.parametrize("text, value", [("1/8", 0.125), (" 1/2 ", 0.5), ("0.25", 0.25), (1, 1.0), (0.3, 0.3)])
def test_parse_fraction(text, value):
    assert parse_fraction(text) == value


@pytest.mark.parametrize("bad", ["1/0", "0", "9/8", "eighth", -0.5, 0.0, 1.5, True])
def test_parse_fraction_refuses(bad):
    with pytest.raises(DistillError, match=r"data\.labeled_fraction: expected a fraction in \(0, 1\]"):
        parse_fraction(bad)


def test_camvid_eighth_rounds_half_up_to_46():
    labeled, unlabeled = make_labeled_split(367, "1/8", seed=0)
    assert len(labeled) == 46  # 367 / 8 = 45.875 -> 46
    assert labeled == sorted(labeled) and unlabeled == sorted(unlabeled)
    assert set(labeled).isdisjoint(unlabeled) and set(labeled) | set(unlabeled) == set(range(367))


def test_fixed_seed_same_subset_other_seed_other_subset():
    assert make_labeled_split(100, 0.25, seed=3) == make_labeled_split(100, 0.25, seed=3)
    assert make_labeled_split(100, 0.25, seed=3)[0] != make_labeled_split(100, 0.25, seed=4)[0]


def test_subsets_nest_across_fractions():
    eighth = set(make_labeled_split(200, 1 / 8, seed=1)[0])
    quarter = set(make_labeled_split(200, 1 / 4, seed=1)[0])
    assert eighth < quarter


def test_at_least_one_labeled_and_empty_is_an_error():
    assert len(make_labeled_split(3, 0.01, seed=0)[0]) == 1
    assert make_labeled_split(4, 1.0, seed=0) == ([0, 1, 2, 3], [])
    with pytest.raises(DistillError, match=r"data\.labeled_fraction"):
        make_labeled_split(0, 0.5, seed=0)


def test_split_list_round_trip(tmp_path):
    dataset = build_dataset("synthetic", None, "train", {"num_images": 10, "size": [32, 32]})
    labeled, _ = make_labeled_split(len(dataset), "1/4", seed=0)
    path = tmp_path / "run" / "labeled.txt"
    write_split_list(path, dataset, labeled)
    assert path.read_text().split() == [f"train_{i:05d}" for i in labeled]
    assert [p.name for p in path.parent.iterdir()] == ["labeled.txt"]  # no temporary file left behind
    assert read_split_list(path, dataset) == labeled


def test_read_split_list_errors(tmp_path):
    dataset = build_dataset("synthetic", None, "train", {"num_images": 3, "size": [32, 32]})
    path = tmp_path / "labeled.txt"
    path.write_text("train_00001\ntrain_0002\n")
    with pytest.raises(DistillError, match=r"labeled\.txt:2: expected a file stem of synthetic/train, got 'train_0002'"):
        read_split_list(path, dataset)
    path.write_text("\n")
    with pytest.raises(DistillError, match=r"labeled\.txt: data\.labeled_fraction"):
        read_split_list(path, dataset)


def test_subset_keeps_classes_stems_and_labels():
    dataset = build_dataset("synthetic", None, "train", {"num_images": 6, "size": [32, 32]})
    labeled, _ = make_labeled_split(len(dataset), 0.5, seed=0)
    kept = SubsetDataset(dataset, labeled)
    assert len(kept) == 3 and kept.classes == dataset.classes and kept.stem(0) == dataset.stem(labeled[0])
    assert torch.equal(kept[1]["label"], dataset[labeled[1]]["label"])
