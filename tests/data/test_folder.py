"""distill/data/folder.py: the nested and flat user layouts, and every way they can be wrong."""

from __future__ import annotations

import numpy as np
import pytest

from distill.data import build_dataset
from distill.errors import DistillError


def make_nested(write, root, split="train", stems=("x1", "x2"), classes="road\ncar\n\nperson\n"):
    for i, stem in enumerate(stems):
        write.image(root / "images" / split / f"{stem}{'.jpg' if i % 2 else '.png'}", 6, 9)
        write.mask(root / "masks" / split / f"{stem}.png", np.array([[0, 1, 2, 255, 0, 1, 2, 255, 0]] * 6))
    (root / "classes.txt").write_text(classes)
    return root


def make_flat(write, root, stems=("p", "q")):
    for stem in stems:
        write.image(root / "images" / f"{stem}.png", 4, 4)
        write.mask(root / "masks" / f"{stem}.png", np.ones((4, 4)))
    (root / "classes.txt").write_text("a\nb\n")
    return root


def test_nested_layout(write, tmp_path):
    dataset = build_dataset("folder", make_nested(write, tmp_path), "train")
    assert dataset.classes == ["road", "car", "person"] and dataset.name == "folder"
    assert [dataset.stem(i) for i in range(2)] == ["x1", "x2"]  # .png and .jpg both found
    assert sorted(dataset[1]["label"].unique().tolist()) == [0, 1, 2, 255]


def test_flat_layout_with_split_list(write, tmp_path):
    root = make_flat(write, tmp_path)
    (root / "val.txt").write_text("q\n")
    dataset = build_dataset("folder", root, "val")
    assert len(dataset) == 1 and dataset[0]["name"] == "q" and (dataset[0]["label"] == 1).all()


def test_flat_list_outside_root_and_unknown_stem(write, tmp_path):
    root = make_flat(write, tmp_path / "mine")
    write.image(tmp_path / "outside.png", 4, 4)
    (root / "train.txt").write_text("p\n../../outside\n")
    with pytest.raises(DistillError, match=r"train\.txt:2: expected a path inside .*got '\.\./\.\./outside\.jpg'"):
        build_dataset("folder", root, "train")
    (root / "train.txt").write_text("p\nnope\n")
    with pytest.raises(DistillError, match=r"train\.txt:2: expected an image images/nope\.jpg or \.png, got 'nope'"):
        build_dataset("folder", root, "train")


def test_label_beyond_classes_names_mask(write, tmp_path):
    root = make_nested(write, tmp_path, stems=("x1",))
    write.mask(root / "masks/train/x1.png", np.full((6, 9), 3))
    with pytest.raises(DistillError, match=r"masks/train/x1\.png: expected label values 0\.\.2 \(classes\.txt lists 3\) or 255, got <values \[3\]>"):
        build_dataset("folder", root, "train")[0]


def test_size_mismatch_names_mask_and_sizes(write, tmp_path):
    root = make_nested(write, tmp_path, stems=("x1",))
    write.mask(root / "masks/train/x1.png", np.zeros((6, 8)))
    with pytest.raises(DistillError, match=r"masks/train/x1\.png: mask size: expected 9x6 like the image x1\.png, got <8x6>"):
        build_dataset("folder", root, "train")[0]


def test_corrupt_image_names_file(write, tmp_path):
    root = make_nested(write, tmp_path, stems=("x1",))
    (root / "images/train/x1.png").write_bytes(b"garbage")
    with pytest.raises(DistillError, match=r"images/train/x1\.png: expected a readable image file, got <UnidentifiedImageError"):
        build_dataset("folder", root, "train")[0]


def test_missing_mask_and_empty_folder(write, tmp_path):
    root = make_nested(write, tmp_path, stems=("x1",))
    write.image(root / "images/train/x9.png", 6, 9)
    with pytest.raises(DistillError, match=r"masks/train/x9\.png: expected a label file for .*x9\.png, got <missing>"):
        build_dataset("folder", root, "train")
    (root / "images/val").mkdir()
    with pytest.raises(DistillError, match=r"images/val: expected image files \(\*\.jpg, \*\.jpeg, \*\.png\), got <none found>"):
        build_dataset("folder", root, "val")


def test_classes_file_problems(write, tmp_path):
    root = make_nested(write, tmp_path, classes="a\nb\na\n")
    with pytest.raises(DistillError, match=r"classes\.txt: expected distinct class names, got 'a'"):
        build_dataset("folder", root, "train")
    (root / "classes.txt").unlink()
    with pytest.raises(DistillError, match=r"classes\.txt: expected class names, one per line"):
        build_dataset("folder", root, "train")


def test_root_required_and_missing_split(write, tmp_path):
    with pytest.raises(DistillError, match=r"r\.yaml: data\.root: expected a folder holding"):
        build_dataset("folder", None, "train", file="r.yaml")
    root = make_nested(write, tmp_path)
    with pytest.raises(DistillError, match=r"split: expected images/test/ or test\.txt, got 'test' \(this copy has: train\)"):
        build_dataset("folder", root, "test")
