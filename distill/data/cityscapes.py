"""`cityscapes`: Cityscapes fine annotations, labelIds mapped to the 19 evaluated trainIds.

Layout (the official zips unpacked into one root):
    leftImg8bit/{split}/{city}/{city}_{seq}_{frame}_leftImg8bit.png
    gtFine/{split}/{city}/{city}_{seq}_{frame}_gtFine_labelIds.png
The mapping is the table in cityscapesScripts' labels.py: 19 classes, everything else
(unlabeled, ego vehicle, parking, guard rail, caravan, ...) is ignored. labelIds files are read
rather than the derived *_labelTrainIds.png, which users must generate with a script first.
The test split's labels are all void on the public server copy; it loads but scores nothing.
"""

from __future__ import annotations

from pathlib import Path

from distill.data.base import FilePairDataset, make_label_table
from distill.data.build import DATASETS, SPLITS
from distill.data.layout import check_unique_stems, locate_root, raise_missing_split
from distill.errors import DistillError
from distill.outputs import IGNORE_INDEX

CLASSES = [
    "road", "sidewalk", "building", "wall", "fence", "pole", "traffic light", "traffic sign", "vegetation",
    "terrain", "sky", "person", "rider", "car", "truck", "bus", "train", "motorcycle", "bicycle",
]  # fmt: skip
LABEL_TO_TRAIN = {
    7: 0, 8: 1, 11: 2, 12: 3, 13: 4, 17: 5, 19: 6, 20: 7, 21: 8, 22: 9,
    23: 10, 24: 11, 25: 12, 26: 13, 27: 14, 28: 15, 31: 16, 32: 17, 33: 18,
}  # fmt: skip
NUM_LABEL_IDS = 34  # labelIds 0..33 exist; license plate (-1) never appears in the PNGs
IMAGE_SUFFIX, LABEL_SUFFIX = "_leftImg8bit.png", "_gtFine_labelIds.png"
LAYOUT = "the Cityscapes layout (leftImg8bit/<split>/<city>/ and gtFine/<split>/<city>/)"
DOWNLOAD = "download leftImg8bit_trainvaltest.zip and gtFine_trainvaltest.zip from cityscapes-dataset.com (free registration)"


def is_cityscapes(folder: Path) -> bool:
    return (folder / "leftImg8bit").is_dir() and (folder / "gtFine").is_dir()


@DATASETS.register("cityscapes")
def build_cityscapes(root: Path | None, split: str) -> FilePairDataset:
    """Cityscapes split `split` (train 2975, val 500); root defaults to $DISTILL_DATA/cityscapes."""
    root = locate_root(root, "cityscapes", [], is_cityscapes, LAYOUT, DOWNLOAD)
    image_dir = root / "leftImg8bit" / split
    if not image_dir.is_dir():
        have = [s for s in SPLITS if (root / "leftImg8bit" / s).is_dir()]
        raise_missing_split(root, split, f"a leftImg8bit/{split}/ folder", have)
    images = sorted(image_dir.glob(f"*/*{IMAGE_SUFFIX}"))
    if not images:
        raise DistillError(image_dir, None, f"city folders holding *{IMAGE_SUFFIX} files", got="<none found>")
    pairs, stems = [], []
    for image in images:
        stem = image.name[: -len(IMAGE_SUFFIX)]
        label = root / "gtFine" / split / image.parent.name / f"{stem}{LABEL_SUFFIX}"
        if not label.is_file():
            raise DistillError(label, None, f"a gtFine labelIds file for {image}", got="<missing>")
        pairs.append((image, label))
        stems.append(stem)
    check_unique_stems(stems, image_dir)
    mapping = {label_id: LABEL_TO_TRAIN.get(label_id, IGNORE_INDEX) for label_id in range(NUM_LABEL_IDS)}
    table = make_label_table(mapping)
    return FilePairDataset("cityscapes", split, CLASSES, pairs, table, "(labelIds) 0..33", stems=stems)
