"""distill/data/base.py: reading files and mapping labels, on files written in tmp_path."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from distill.data.base import FilePairDataset, make_identity_table, make_label_table, map_label, read_rgb
from distill.errors import DistillError


def make_pair_dataset(write, tmp_path, mask_values, image_size=(6, 8), table=None):
    image = write.image(tmp_path / "a.png", *image_size)
    mask = write.mask(tmp_path / "a_mask.png", mask_values)
    table = make_identity_table(3) if table is None else table
    return FilePairDataset("t", "train", ["x", "y", "z"], [(image, mask)], table, "0..2 or 255"), mask


def test_sample_contract(write, tmp_path):
    values = np.array([[0, 1, 2, 255]] * 6, dtype=np.uint8).repeat(2, axis=1)  # (6, 8)
    dataset, _ = make_pair_dataset(write, tmp_path, values)
    sample = dataset[0]
    assert sample["image"].dtype == torch.uint8 and sample["image"].shape == (3, 6, 8)
    assert sample["label"].dtype == torch.int64 and sample["label"].shape == (6, 8)
    assert sample["name"] == "a" and dataset.stem(0) == "a"
    assert sorted(sample["label"].unique().tolist()) == [0, 1, 2, 255]


def test_out_of_range_label_names_the_mask(write, tmp_path):
    dataset, mask = make_pair_dataset(write, tmp_path, np.full((6, 8), 7))
    with pytest.raises(DistillError, match=rf"{mask.name}: expected label values 0\.\.2 or 255, got <values \[7\]>"):
        dataset[0]


def test_mask_size_mismatch_names_both_sizes(write, tmp_path):
    dataset, mask = make_pair_dataset(write, tmp_path, np.zeros((5, 8)))
    with pytest.raises(DistillError, match=rf"{mask.name}: mask size: expected 8x6 like the image a\.png, got <8x5>"):
        dataset[0]


def test_corrupt_image_names_the_file(write, tmp_path):
    dataset, _ = make_pair_dataset(write, tmp_path, np.zeros((6, 8)))
    (tmp_path / "a.png").write_bytes(b"\x89PNG\r\n\x1a\n not really a png")
    with pytest.raises(DistillError, match=r"a\.png: expected a readable image file"):
        dataset[0]


def test_truncated_jpeg_fails_at_read(write, tmp_path):
    path = write.image(tmp_path / "t.jpg", 64, 64)
    path.write_bytes(path.read_bytes()[:300])
    with pytest.raises(DistillError, match=r"t\.jpg: expected a readable image file"):
        read_rgb(path)


def test_colour_mask_is_refused(write, tmp_path):
    image = write.image(tmp_path / "a.png", 4, 4)
    mask = write.image(tmp_path / "m.png", 4, 4)  # an RGB "mask", as some re-saved VOC copies are
    dataset = FilePairDataset("t", "train", ["x"], [(image, mask)], make_identity_table(1), "0 or 255")
    with pytest.raises(DistillError, match=r"m\.png: expected a single-channel label PNG.*mode RGB"):
        dataset[0]


def test_label_table_maps_and_marks_undefined(tmp_path):
    table = make_label_table({0: 255, 1: 0, 2: 1})
    raw = np.array([[0, 1], [2, 1]], dtype=np.uint8)
    assert map_label(raw, table, tmp_path / "m.png", "0..2").tolist() == [[255, 0], [1, 0]]
    with pytest.raises(DistillError, match=r"m\.png: expected label values 0\.\.2, got <values \[3\]>"):
        map_label(np.array([[3]], dtype=np.uint8), table, tmp_path / "m.png", "0..2")
