"""`voc`: PASCAL VOC 2012 segmentation (21 classes; train 1464, val 1449).

Layout (VOCdevkit/VOC2012 of VOCtrainval_11-May-2012.tar):
    JPEGImages/<id>.jpg  SegmentationClass/<id>.png  ImageSets/Segmentation/{train,val}.txt
Labels are palette PNGs whose indices are the classes (0 background, 1..20 objects, 255 the
object borders that VOC leaves unscored); they are read as indices, never as colours.

`sbd_list` names a list file under the root with extra training pairs, as the SBD-augmented
"train_aug" protocol (10,582 images) does. Each line is either an id (read from JPEGImages/ and
SegmentationClassAug/) or "image_path label_path" relative to the root (DeepLab's
train_aug.txt style, leading "/" allowed). It extends the train split only, ids already in
train.txt keep VOC's own mask, and an id from val.txt is an error: SBD overlaps VOC val, and
training on it would inflate val mIoU.
"""

from __future__ import annotations

from pathlib import Path

from distill.data.base import FilePairDataset, make_identity_table
from distill.data.build import DATASETS, SPLITS
from distill.data.layout import is_inside, locate_root, raise_missing_split, read_list_lines, resolve_inside
from distill.errors import DistillError

CLASSES = [
    "background", "aeroplane", "bicycle", "bird", "boat", "bottle", "bus", "car", "cat", "chair", "cow",
    "diningtable", "dog", "horse", "motorbike", "person", "pottedplant", "sheep", "sofa", "train", "tvmonitor",
]  # fmt: skip
LAYOUT = "the VOC2012 layout (JPEGImages/, SegmentationClass/, ImageSets/Segmentation/)"
DOWNLOAD = "download VOCtrainval_11-May-2012.tar from host.robots.ox.ac.uk/pascal/VOC/voc2012/ and unpack it"
LISTS = Path("ImageSets/Segmentation")


def is_voc(folder: Path) -> bool:
    return (folder / "JPEGImages").is_dir() and (folder / "SegmentationClass").is_dir()


@DATASETS.register("voc")
def build_voc(root: Path | None, split: str, sbd_list: str | None = None) -> FilePairDataset:
    """VOC2012 split `split`; root defaults to $DISTILL_DATA/voc (VOC2012/ or VOCdevkit/VOC2012/ inside also work)."""
    root = locate_root(root, "voc", ["VOC2012", "VOCdevkit/VOC2012"], is_voc, LAYOUT, DOWNLOAD)
    list_file = root / LISTS / f"{split}.txt"
    if not list_file.is_file():
        have = [s for s in SPLITS if (root / LISTS / f"{s}.txt").is_file()]
        raise_missing_split(root, split, f"a list file {LISTS / f'{split}.txt'}", have)
    pairs: dict[str, tuple[Path, Path]] = {}
    for line, fields in read_list_lines(list_file):
        image = resolve_inside(root, f"JPEGImages/{fields[0]}.jpg", list_file, line)
        pairs[fields[0]] = (image, root / "SegmentationClass" / f"{image.stem}.png")
    if split == "train" and sbd_list is not None:
        add_sbd_pairs(root, sbd_list, pairs)
    for stem, (image, mask) in pairs.items():
        for path in (image, mask):
            if not path.is_file():  # fail at load, not in the middle of an epoch
                raise DistillError(path, None, f"an existing file for id {stem}", got="<missing>")
    if not pairs:
        raise DistillError(list_file, None, "at least one image id", got="<empty list>")
    table = make_identity_table(len(CLASSES))
    return FilePairDataset("voc", split, CLASSES, list(pairs.values()), table, "0..20 or 255", stems=list(pairs))


def add_sbd_pairs(root: Path, sbd_list: str, pairs: dict[str, tuple[Path, Path]]) -> None:
    """Add the pairs of the extra list to `pairs` in place, refusing ids of the val split."""
    list_file = root / sbd_list
    if not is_inside(root, list_file) or not list_file.is_file():
        raise DistillError(list_file, "data.options.sbd_list", "an existing list file under the root", got=sbd_list)
    val_file = root / LISTS / "val.txt"
    val_ids = {f[0] for _, f in read_list_lines(val_file)} if val_file.is_file() else set()
    for line, fields in read_list_lines(list_file):
        if len(fields) == 1:
            entries = (f"JPEGImages/{fields[0]}.jpg", f"SegmentationClassAug/{fields[0]}.png")
        elif len(fields) == 2:
            entries = (fields[0].lstrip("/"), fields[1].lstrip("/"))
        else:
            raise DistillError(list_file, None, '"<id>" or "<image path> <label path>" per line', got=" ".join(fields), line=line)
        image, mask = (resolve_inside(root, e, list_file, line) for e in entries)
        if image.stem in val_ids:
            raise DistillError(list_file, None, "training ids only (this id is in the val split)", got=image.stem, line=line)
        pairs.setdefault(image.stem, (image, mask))
