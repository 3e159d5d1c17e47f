"""Data sets, joint transforms and labeled subsets.

Every data set yields `{"image": uint8 (3, H, W), "label": int64 (H, W), "name": str}` at native
resolution, labels in 0..C-1 or IGNORE_INDEX. Importing this package registers every data set.
"""

from distill.data import ade20k, camvid, cityscapes, folder, synthetic, voc  # noqa: F401  (registration)
from distill.data.base import SegDataset
from distill.data.build import DATASETS, SPLITS, build_dataset
from distill.data.subsets import (
    SubsetDataset,
    make_labeled_split,
    parse_fraction,
    read_split_list,
    write_split_list,
)
from distill.data.transforms import TransformedDataset, build_train_transform

__all__ = [
    "DATASETS",
    "SPLITS",
    "SegDataset",
    "SubsetDataset",
    "TransformedDataset",
    "build_dataset",
    "build_train_transform",
    "make_labeled_split",
    "parse_fraction",
    "read_split_list",
    "write_split_list",
]
