"""distill/data/semisup.py: a labeled sample plus unlabeled images per index; the labeled set
repeats, unlabeled images never come with (or from) a label."""

from __future__ import annotations

from collections import Counter

import pytest
import torch

from distill.batch import Batch
from distill.data import build_dataset, build_train_transform, make_labeled_split
from distill.data.semisup import SemiSupervisedDataset
from distill.engine.evaluate import collate
from distill.errors import DistillError


class LabelTrap:
    """A training split whose labels must never be read for the `unlabeled` indices: reading one fails."""

    def __init__(self, dataset, unlabeled) -> None:
        self.dataset, self.unlabeled = dataset, set(unlabeled)
        self.classes, self.name, self.split = dataset.classes, dataset.name, dataset.split
        self.label_reads: list[int] = []

    def __len__(self) -> int:
        return len(self.dataset)

    def stem(self, index: int) -> str:
        return self.dataset.stem(index)

    def read_image(self, index: int) -> torch.Tensor:
        return self.dataset.read_image(index)

    def __getitem__(self, index: int) -> dict:
        assert index not in self.unlabeled, f"the label of unlabeled image {index} was read"
        self.label_reads.append(index)
        return self.dataset[index]


def make(n: int = 24, fraction: str = "1/4", views=("unlabeled0", "unlabeled1"), seed: int = 0):
    train = build_dataset("synthetic", None, "train", {"num_images": n, "size": [24, 32]})
    labeled, unlabeled = make_labeled_split(n, fraction, seed=0)
    trap = LabelTrap(train, unlabeled)
    transform = build_train_transform((16, 24), (0.75, 1.25))
    return SemiSupervisedDataset(trap, labeled, unlabeled, views, transform, seed=seed), trap, labeled, unlabeled


def test_an_epoch_is_the_larger_set_and_the_labeled_set_repeats_evenly():
    semi, trap, labeled, unlabeled = make(24, "1/4")
    assert (len(labeled), len(unlabeled), len(semi)) == (6, 18, 18)  # max(6, 18)
    picks = Counter(semi.pick(0, i) for i in range(len(semi)))
    assert set(picks) == set(labeled) and set(picks.values()) == {3}  # 18 / 6: each labeled image 3 times
    for stream in (1, 2):  # each unlabeled image once per view per epoch
        assert sorted(semi.pick(stream, i) for i in range(len(semi))) == unlabeled


def test_views_pair_other_images_in_each_epoch_and_the_pairing_is_seeded():
    semi, *_ = make()
    first = [(semi.pick(1, i), semi.pick(2, i)) for i in range(len(semi))]
    semi.set_epoch(1)
    second = [(semi.pick(1, i), semi.pick(2, i)) for i in range(len(semi))]
    assert first != second
    again, *_ = make()
    assert [(again.pick(1, i), again.pick(2, i)) for i in range(len(again))] == first


def test_unlabeled_views_have_no_label_and_no_unlabeled_label_is_read():
    semi, trap, labeled, unlabeled = make()
    samples = [semi[i] for i in range(len(semi))]  # LabelTrap fails on any unlabeled label read
    assert set(trap.label_reads) <= set(labeled)
    for sample in samples:
        assert sample["label"].shape == (16, 24)
        assert set(sample["views"]) == {"unlabeled0", "unlabeled1"}
        assert all(set(v) == {"image", "name", "geometry"} and v["image"].shape == (3, 16, 24) for v in sample["views"].values())
    batch = Batch.from_loader(collate(samples[:4]))
    assert set(batch.views) == {"labeled", "unlabeled0", "unlabeled1"}
    assert batch.view("labeled").label.shape == (4, 16, 24)
    for name in ("unlabeled0", "unlabeled1"):
        assert batch.view(name).label is None and batch.view(name).image.shape == (4, 3, 16, 24)
        with pytest.raises(DistillError, match="unlabeled view"):
            batch.view(name).labels()


def test_a_label_smuggled_into_an_unlabeled_sample_never_reaches_the_batch():
    sample = {"image": torch.zeros(2, 3, 4, 4, dtype=torch.uint8), "label": torch.zeros(2, 4, 4, dtype=torch.long), "name": ["a", "b"],
              "views": {"unlabeled0": {"image": torch.zeros(2, 3, 4, 4, dtype=torch.uint8),
                                       "label": torch.full((2, 4, 4), -7), "name": ["c", "d"]}}}
    assert Batch.from_loader(sample).view("unlabeled0").label is None


def test_a_repeated_labeled_image_gets_another_crop_each_time():
    semi, *_ = make(24, "1/4")
    repeats = [i for i in range(len(semi)) if semi.pick(0, i) == semi.pick(0, 0)]  # one labeled image, 3 times
    images = [semi[i]["image"] for i in repeats]
    assert len(images) == 3 and not all(torch.equal(images[0], other) for other in images[1:])


def test_an_empty_side_is_an_error():
    train = build_dataset("synthetic", None, "train", {"num_images": 4, "size": [16, 16]})
    with pytest.raises(DistillError, match=r"data\.unlabeled_views: expected a partition with labeled and unlabeled images"):
        SemiSupervisedDataset(train, [0, 1, 2, 3], [], ["u"], build_train_transform((16, 16)))
