"""distill/data/transforms.py: the joint transform keeps image and label aligned and labels exact."""

from __future__ import annotations

import pytest
import torch

from distill.data import TransformedDataset, build_dataset, build_train_transform
from distill.data.transforms import jitter_colours, rescale_pair
from distill.errors import DistillError


def make_sample(height=30, width=40):
    """Left third class 0, the rest class 7 with a 255 stripe; the image encodes the column in red."""
    label = torch.full((height, width), 7, dtype=torch.int64)
    label[:, : width // 3] = 0
    label[height // 2, :] = 255
    image = torch.zeros(3, height, width, dtype=torch.uint8)
    image[0] = torch.arange(width, dtype=torch.uint8) * 6  # red grows to the right
    image[1] = (label == 0).to(torch.uint8) * 200  # green marks class 0
    return {"image": image, "label": label, "name": "s"}


def seeded(seed):
    return torch.Generator().manual_seed(seed)


@pytest.mark.parametrize("crop", [(16, 24), (64, 80)])  # smaller and larger than the scaled input
def test_output_shape_and_dtypes(crop):
    transform = build_train_transform(crop)
    for seed in range(5):
        out = transform(make_sample(), seeded(seed))
        assert out["image"].shape == (3, *crop) and out["image"].dtype == torch.uint8
        assert out["label"].shape == crop and out["label"].dtype == torch.int64
        assert out["name"] == "s"


def test_labels_are_never_interpolated():
    transform = build_train_transform((48, 48), scale_range=(0.37, 2.3))
    for seed in range(10):
        values = set(transform(make_sample(), seeded(seed))["label"].unique().tolist())
        assert values <= {0, 7, 255}


def test_padding_is_ignore_and_black():
    out = build_train_transform((64, 80), scale_range=(1.0, 1.0), flip=False, photometric=False)(make_sample(), seeded(0))
    assert (out["label"][30:] == 255).all() and (out["label"][:, 40:] == 255).all()
    assert (out["image"][:, 30:] == 0).all()


def test_flip_moves_image_and_label_together():
    """Without rescale or jitter, class 0 (green) must sit on the same side in image and label."""
    transform = build_train_transform((30, 40), scale_range=(1.0, 1.0), photometric=False)
    flips = 0
    for seed in range(12):
        out = transform(make_sample(), seeded(seed))
        green = out["image"][1] == 200
        assert torch.equal(green, out["label"] == 0)
        flipped = bool(out["image"][0, 0, 0] > out["image"][0, 0, -1])
        flips += flipped
        assert bool(out["label"][0, 0] == 0) != flipped
    assert 0 < flips < 12


def test_same_generator_seed_same_output():
    transform = build_train_transform((20, 20))
    a, b = transform(make_sample(), seeded(3)), transform(make_sample(), seeded(3))
    assert torch.equal(a["image"], b["image"]) and torch.equal(a["label"], b["label"])
    c = transform(make_sample(), seeded(4))
    assert not (torch.equal(a["image"], c["image"]) and torch.equal(a["label"], c["label"]))


def test_rescale_is_nearest_at_pixel_centres():
    label = torch.tensor([[1, 2], [3, 4]])
    _, up = rescale_pair(torch.zeros(3, 2, 2, dtype=torch.uint8), label, 2.0)
    assert up.tolist() == [[1, 1, 2, 2], [1, 1, 2, 2], [3, 3, 4, 4], [3, 3, 4, 4]]


def test_jitter_identity_and_brightness():
    image = torch.randint(0, 200, (3, 4, 4), dtype=torch.uint8)
    assert torch.equal(jitter_colours(image, 1.0, 1.0, 1.0), image)
    brighter = jitter_colours(image, 1.2, 1.0, 1.0)
    assert torch.equal(brighter, (image.float() * 1.2).round().to(torch.uint8))


def test_impossible_crop_size_is_a_recipe_error():
    with pytest.raises(DistillError, match=r"data\.crop_size: expected two positive integers, got \[0, 64\]"):
        build_train_transform((0, 64))
    with pytest.raises(DistillError, match=r"data\.scale_range"):
        build_train_transform((32, 32), scale_range=(2.0, 1.0))


def test_transformed_dataset_is_deterministic_per_seed_index_epoch():
    base = build_dataset("synthetic", None, "train", {"num_images": 3, "size": [48, 64]})
    transform = build_train_transform((32, 32))
    a, b = TransformedDataset(base, transform, seed=5), TransformedDataset(base, transform, seed=5)
    assert (a.classes, a.name, len(a)) == (base.classes, "synthetic", 3)
    assert torch.equal(a[2]["image"], b[2]["image"])
    first = a[1]["image"]
    a.set_epoch(1)
    assert not torch.equal(first, a[1]["image"])
    a.set_epoch(0)
    assert torch.equal(first, a[1]["image"])
    assert not torch.equal(first, TransformedDataset(base, transform, seed=6)[1]["image"])


def test_transformed_dataset_sees_through_torch_subset():
    base = build_dataset("synthetic", None, "train", {"num_images": 4, "size": [32, 32]})
    wrapped = TransformedDataset(torch.utils.data.Subset(base, [3, 1]), build_train_transform((16, 16)))
    assert wrapped.classes == base.classes and wrapped.stem(0) == "train_00003"
