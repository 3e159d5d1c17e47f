"""distill/data/partitions.py: saved labeled lists (MGD's 1/16 .. 1/2 protocols) for CamVid,
Cityscapes and VOC layouts; deterministic per seed, disjoint, of the right sizes."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from distill.data import build_dataset
from distill.data.partitions import PROTOCOLS, main, partition_name, select_partition, write_partitions
from distill.errors import DistillError

ROOT = Path(__file__).resolve().parents[2]
CAMVID_LISTS = ROOT / "recipes" / "camvid" / "partitions"


def synthetic(n: int = 40):
    return build_dataset("synthetic", None, "train", {"num_images": n, "size": [16, 16]})


def test_partition_file_names():
    assert partition_name("1/8", 0) == "1-8_seed0.txt"
    assert partition_name(0.25, 3) == "0.25_seed3.txt"
    with pytest.raises(DistillError, match=r"data\.labeled_fraction"):
        partition_name("9/8", 0)


def test_lists_are_deterministic_per_seed_disjoint_and_sized(tmp_path):
    dataset = synthetic(40)
    first = write_partitions(dataset, tmp_path / "a", seed=0)
    again = write_partitions(dataset, tmp_path / "b", seed=0)
    other = write_partitions(dataset, tmp_path / "c", seed=1)
    assert [p.name for p in first] == ["1-16_seed0.txt", "1-8_seed0.txt", "1-4_seed0.txt", "1-2_seed0.txt"]
    assert [p.read_text() for p in first] == [p.read_text() for p in again]
    assert [p.read_text() for p in first] != [p.read_text() for p in other]
    sizes = [len(p.read_text().split()) for p in first]
    assert sizes == [3, 5, 10, 20]  # 40/16 = 2.5 rounds half up to 3
    for path in first:
        labeled, unlabeled = select_partition(dataset, None, path, seed=0)
        assert set(labeled).isdisjoint(unlabeled) and sorted(labeled + unlabeled) == list(range(40))
    nested = [set(p.read_text().split()) for p in first]
    assert nested[0] < nested[1] < nested[2] < nested[3]


def test_a_list_and_a_fraction_of_the_same_seed_select_the_same_images(tmp_path):
    dataset = synthetic(40)
    (path,) = write_partitions(dataset, tmp_path, ["1/8"], seed=2)
    assert select_partition(dataset, None, path, seed=0) == select_partition(dataset, "1/8", None, seed=2)
    assert select_partition(dataset, None, None, seed=0) is None


def test_committed_camvid_lists_have_the_protocol_sizes_and_nest():
    # CamVid's 367 training images: 367/16 = 22.9 -> 23, /8 = 45.9 -> 46, /4 = 91.75 -> 92, /2 = 183.5 -> 184
    lists = [(CAMVID_LISTS / partition_name(f, 0)).read_text().split() for f in PROTOCOLS]
    assert [len(stems) for stems in lists] == [23, 46, 92, 184]
    assert all(len(set(stems)) == len(stems) for stems in lists)
    assert set(lists[0]) < set(lists[1]) < set(lists[2]) < set(lists[3])


def test_committed_camvid_lists_are_what_the_command_writes(shared_data, tmp_path, capsys):
    root = shared_data / "camvid"
    if not (root / "train.txt").is_file():
        pytest.skip(f"CamVid not found at {root}")
    main(["--data", "camvid", "--root", str(root), "--out", str(tmp_path)])
    assert "1-8_seed0.txt: 46 of 367 labeled" in capsys.readouterr().out
    for fraction in PROTOCOLS:
        name = partition_name(fraction, 0)
        assert (tmp_path / name).read_text() == (CAMVID_LISTS / name).read_text()


def cityscapes_tree(write, root, count=8):
    for i in range(count):
        city = ("aachen", "bochum")[i % 2]
        stem = f"{city}_{i:06d}_000019"
        write.image(root / "leftImg8bit" / "train" / city / f"{stem}_leftImg8bit.png", 4, 8, seed=i)
        write.mask(root / "gtFine" / "train" / city / f"{stem}_gtFine_labelIds.png", np.full((4, 8), 7))
    return root


def voc_tree(write, root, count=8):
    ids = [f"2008_{i:06d}" for i in range(count)]
    for i, stem in enumerate(ids):
        write.image(root / "JPEGImages" / f"{stem}.jpg", 6, 8, seed=i)
        write.mask(root / "SegmentationClass" / f"{stem}.png", np.zeros((6, 8)), palette=True)
    (root / "ImageSets" / "Segmentation").mkdir(parents=True)
    (root / "ImageSets" / "Segmentation" / "train.txt").write_text("".join(f"{s}\n" for s in ids))
    return root


@pytest.mark.parametrize("name, make", [("cityscapes", cityscapes_tree), ("voc", voc_tree)])
def test_the_same_mechanism_on_cityscapes_and_voc_layouts(name, make, write, tmp_path):
    root = make(write, tmp_path / name)
    dataset = build_dataset(name, root, "train")
    paths = write_partitions(dataset, tmp_path / "lists", ["1/4", "1/2"], seed=0)
    stems = {dataset.stem(i) for i in range(len(dataset))}
    for path, size in zip(paths, (2, 4)):
        listed = path.read_text().split()
        assert len(listed) == size and set(listed) <= stems
        labeled, unlabeled = select_partition(dataset, None, path, seed=0)
        assert {dataset.stem(i) for i in labeled} == set(listed) and len(unlabeled) == len(dataset) - size


def test_read_image_opens_no_label_file(write, tmp_path):
    root = cityscapes_tree(write, tmp_path / "cityscapes", count=2)
    dataset = build_dataset("cityscapes", root, "train")
    for mask in root.glob("gtFine/train/*/*.png"):
        mask.write_bytes(b"not a png")  # any read of a label now fails
    with pytest.raises(DistillError, match="readable label"):
        dataset[0]
    assert dataset.read_image(0).shape == (3, 4, 8)
