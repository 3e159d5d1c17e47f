"""distill/data/voc.py on the real VOC2012 samples (palette PNGs) and on tmp_path fakes."""

from __future__ import annotations

import shutil

import numpy as np
import pytest
import torch

from distill.data import build_dataset
from distill.errors import DistillError


@pytest.fixture
def voc_root(shared_data):
    root = shared_data / "samples" / "voc2012"
    if not (root / "ImageSets").is_dir():
        pytest.skip(f"VOC samples not found at {root} (expected ../shared/data/samples/voc2012)")
    return root


def test_real_samples_read_as_palette_indices(voc_root):
    train, val = build_dataset("voc", voc_root, "train"), build_dataset("voc", voc_root, "val")
    assert (len(train), len(val)) == (2, 1) and len(train.classes) == 21 and train.classes[15] == "person"
    first = train[0]
    assert first["name"] == "2007_000032" and first["image"].shape == (3, 281, 500)
    assert sorted(first["label"].unique().tolist()) == [0, 1, 15, 255]  # aeroplane, person, border
    assert sorted(train[1]["label"].unique().tolist()) == [0, 9, 12, 255]
    assert val[0]["label"].dtype == torch.int64 and val[0]["image"].shape == (3, 366, 500)


def test_test_split_is_missing(voc_root):
    with pytest.raises(DistillError, match=r"voc2012: split: expected a list file ImageSets/Segmentation/test\.txt"):
        build_dataset("voc", voc_root, "test")


def make_fake(write, root, ids=("2008_000001",), val_ids=("2008_000009",)):
    for stem in (*ids, *val_ids):
        write.image(root / "JPEGImages" / f"{stem}.jpg", 6, 8)
        write.mask(root / "SegmentationClass" / f"{stem}.png", np.full((6, 8), 3), palette=True)
    (root / "ImageSets/Segmentation").mkdir(parents=True)
    (root / "ImageSets/Segmentation/train.txt").write_text("\n".join(ids) + "\n")
    (root / "ImageSets/Segmentation/val.txt").write_text("\n".join(val_ids) + "\n")
    return root


def test_nested_vocdevkit_root_and_sbd_list(write, tmp_path):
    root = make_fake(write, tmp_path / "VOCdevkit" / "VOC2012")
    write.image(root / "JPEGImages/2010_000005.jpg", 6, 8)
    write.mask(root / "SegmentationClassAug/2010_000005.png", np.full((6, 8), 20))
    (root / "train_aug.txt").write_text("/JPEGImages/2010_000005.jpg /SegmentationClassAug/2010_000005.png\n2008_000001\n")
    plain = build_dataset("voc", tmp_path, "train")
    aug = build_dataset("voc", tmp_path, "train", {"sbd_list": "train_aug.txt"})
    assert len(plain) == 1 and [aug.stem(i) for i in range(len(aug))] == ["2008_000001", "2010_000005"]
    assert aug[0]["label"].unique().tolist() == [3] and aug[1]["label"].unique().tolist() == [20]
    assert len(build_dataset("voc", tmp_path, "val", {"sbd_list": "train_aug.txt"})) == 1  # val is never extended


def test_sbd_list_refuses_val_ids_and_outside_paths(write, tmp_path):
    root = make_fake(write, tmp_path / "voc")
    (root / "aug.txt").write_text("2008_000009\n")
    with pytest.raises(DistillError, match=r"aug\.txt:1: expected training ids only .*got '2008_000009'"):
        build_dataset("voc", root, "train", {"sbd_list": "aug.txt"})
    (root / "aug.txt").write_text("/JPEGImages/../../x.jpg /SegmentationClassAug/x.png\n")
    with pytest.raises(DistillError, match=r"aug\.txt:1: expected a path inside"):
        build_dataset("voc", root, "train", {"sbd_list": "aug.txt"})
    with pytest.raises(DistillError, match=r"data\.options\.sbd_list: expected an existing list file under the root"):
        build_dataset("voc", root, "train", {"sbd_list": "../elsewhere.txt"})


def test_list_id_escaping_root_and_missing_mask(write, tmp_path):
    root = make_fake(write, tmp_path / "voc")
    (root / "ImageSets/Segmentation/train.txt").write_text("../../../etc/passwd\n")
    with pytest.raises(DistillError, match=r"train\.txt:1: expected a path inside"):
        build_dataset("voc", root, "train")
    (root / "ImageSets/Segmentation/train.txt").write_text("2008_000001\n")
    (root / "SegmentationClass/2008_000001.png").unlink()
    with pytest.raises(DistillError, match=r"SegmentationClass/2008_000001\.png: expected an existing file for id 2008_000001"):
        build_dataset("voc", root, "train")


def test_border_255_kept_and_21_is_an_error(write, tmp_path, voc_root):
    root = tmp_path / "voc"
    shutil.copytree(voc_root, root)
    write.mask(root / "SegmentationClass/2007_000033.png", np.full((366, 500), 21), palette=True)
    with pytest.raises(DistillError, match=r"2007_000033\.png: expected label values 0\.\.20 or 255, got <values \[21\]>"):
        build_dataset("voc", root, "val")[0]
