"""distill/data/cityscapes.py on a tiny fake tree in the native layout (Cityscapes files may not be shared)."""

from __future__ import annotations

import numpy as np
import pytest

from distill.data import build_dataset
from distill.data.cityscapes import CLASSES, LABEL_TO_TRAIN
from distill.errors import DistillError


def make_tree(write, root, split="train", frames=(("aachen", "000000_000019"), ("bochum", "000001_000020"))):
    for city, frame in frames:
        write.image(root / "leftImg8bit" / split / city / f"{city}_{frame}_leftImg8bit.png", 4, 34)
        write.mask(root / "gtFine" / split / city / f"{city}_{frame}_gtFine_labelIds.png", np.tile(np.arange(34), (4, 1)))
    return root


def test_label_ids_map_to_19_train_ids(write, tmp_path):
    dataset = build_dataset("cityscapes", make_tree(write, tmp_path), "train")
    assert len(CLASSES) == 19 and sorted(LABEL_TO_TRAIN.values()) == list(range(19))
    assert [dataset.stem(i) for i in range(2)] == ["aachen_000000_000019", "bochum_000001_000020"]
    row = dataset[0]["label"][0].tolist()  # column j holds labelId j
    assert row[7] == 0 and row[8] == 1 and row[11] == 2 and row[17] == 5 and row[23] == 10 and row[26] == 13 and row[33] == 18
    assert row[0] == row[6] == row[9] == row[14] == row[29] == 255
    assert sorted(set(row) - {255}) == list(range(19))
    assert dataset[1]["name"] == "bochum_000001_000020"


def test_value_beyond_label_ids_is_an_error(write, tmp_path):
    root = make_tree(write, tmp_path, frames=(("ulm", "000000_000001"),))
    mask = write.mask(root / "gtFine/train/ulm/ulm_000000_000001_gtFine_labelIds.png", np.full((4, 34), 40))
    with pytest.raises(DistillError, match=rf"{mask.name}: expected label values \(labelIds\) 0\.\.33, got <values \[40\]>"):
        build_dataset("cityscapes", root, "train")[0]


def test_missing_gt_file_names_it(write, tmp_path):
    root = make_tree(write, tmp_path)
    (root / "gtFine/train/bochum/bochum_000001_000020_gtFine_labelIds.png").unlink()
    with pytest.raises(DistillError, match=r"bochum_000001_000020_gtFine_labelIds\.png: expected a gtFine labelIds file"):
        build_dataset("cityscapes", root, "train")


def test_missing_split_and_missing_data(write, tmp_path):
    root = make_tree(write, tmp_path / "cs")
    with pytest.raises(DistillError, match=r"cs: split: expected a leftImg8bit/val/ folder, got 'val' \(this copy has: train\)"):
        build_dataset("cityscapes", root, "val")
    with pytest.raises(DistillError, match=r"data\.root: expected the Cityscapes layout .*cityscapes-dataset\.com"):
        build_dataset("cityscapes", tmp_path / "nothing", "train")


def test_empty_split_folder(write, tmp_path):
    root = make_tree(write, tmp_path)
    (root / "leftImg8bit" / "val").mkdir()
    with pytest.raises(DistillError, match=r"leftImg8bit/val: expected city folders holding \*_leftImg8bit\.png files"):
        build_dataset("cityscapes", root, "val")
