"""`ade20k`: ADE20K SceneParsing (ADEChallengeData2016), 150 classes; train 20,210, val 2,000.

Layout: images/{training,validation}/*.jpg and annotations/{training,validation}/*.png with the
same stems; splits come from the folder names (the release has no list files). Label value 0
("other objects") is not scored by the benchmark, so it becomes IGNORE_INDEX and 1..150 become
0..149: the usual "reduce_zero_label" convention. Class names are the first name of each row of
objectInfo150 (CSAILVision/sceneparsing), in the order mmsegmentation also uses.
"""

from __future__ import annotations

from pathlib import Path

from distill.data.base import FilePairDataset, make_label_table
from distill.data.build import DATASETS
from distill.data.layout import check_unique_stems, find_images, locate_root, pair_by_stem, raise_missing_split
from distill.outputs import IGNORE_INDEX

CLASSES = [
    "wall", "building", "sky", "floor", "tree", "ceiling", "road", "bed", "windowpane", "grass",
    "cabinet", "sidewalk", "person", "earth", "door", "table", "mountain", "plant", "curtain", "chair",
    "car", "water", "painting", "sofa", "shelf", "house", "sea", "mirror", "rug", "field",
    "armchair", "seat", "fence", "desk", "rock", "wardrobe", "lamp", "bathtub", "railing", "cushion",
    "base", "box", "column", "signboard", "chest of drawers", "counter", "sand", "sink", "skyscraper", "fireplace",
    "refrigerator", "grandstand", "path", "stairs", "runway", "case", "pool table", "pillow", "screen door", "stairway",
    "river", "bridge", "bookcase", "blind", "coffee table", "toilet", "flower", "book", "hill", "bench",
    "countertop", "stove", "palm", "kitchen island", "computer", "swivel chair", "boat", "bar", "arcade machine", "hovel",
    "bus", "towel", "light", "truck", "tower", "chandelier", "awning", "streetlight", "booth", "television receiver",
    "airplane", "dirt track", "apparel", "pole", "land", "bannister", "escalator", "ottoman", "bottle", "buffet",
    "poster", "stage", "van", "ship", "fountain", "conveyer belt", "canopy", "washer", "plaything", "swimming pool",
    "stool", "barrel", "basket", "waterfall", "tent", "bag", "minibike", "cradle", "oven", "ball",
    "food", "step", "tank", "trade name", "microwave", "pot", "animal", "bicycle", "lake", "dishwasher",
    "screen", "blanket", "sculpture", "hood", "sconce", "vase", "traffic light", "tray", "ashcan", "fan",
    "pier", "crt screen", "plate", "monitor", "bulletin board", "shower", "radiator", "glass", "clock", "flag",
]  # fmt: skip
FOLDERS = {"train": "training", "val": "validation"}
LAYOUT = "the ADEChallengeData2016 layout (images/training/, annotations/training/, .../validation/)"
DOWNLOAD = "download ADEChallengeData2016.zip from sceneparsing.csail.mit.edu and unpack it"


def is_ade20k(folder: Path) -> bool:
    return (folder / "images").is_dir() and (folder / "annotations").is_dir()


@DATASETS.register("ade20k")
def build_ade20k(root: Path | None, split: str) -> FilePairDataset:
    """ADE20K split train or val; root defaults to $DISTILL_DATA/ade20k (ADEChallengeData2016/ inside also works)."""
    root = locate_root(root, "ade20k", ["ADEChallengeData2016"], is_ade20k, LAYOUT, DOWNLOAD)
    folder = FOLDERS.get(split)
    if folder is None or not (root / "images" / folder).is_dir():
        have = [s for s, f in FOLDERS.items() if (root / "images" / f).is_dir()]
        wanted = f"images/{folder}/" if folder else "a labelled split (ADE20K publishes none for test)"
        raise_missing_split(root, split, wanted, have)
    images = find_images(root / "images" / folder, (".jpg", ".jpeg"))
    pairs = pair_by_stem(images, root / "annotations" / folder)
    table = make_label_table({0: IGNORE_INDEX, **{v: v - 1 for v in range(1, len(CLASSES) + 1)}})
    dataset = FilePairDataset("ade20k", split, CLASSES, pairs, table, f"0..{len(CLASSES)} (0 = unlabeled)")
    check_unique_stems(dataset.stems, root / "images" / folder)
    return dataset
