"""Labeled subsets for semi-supervised recipes (MGD's 1/8, 1/4 ... protocols) and their lists.

The subset is a pure function of (num_items, fraction, seed): items are ranked by a keyed hash
of (seed, index) and the first k are labeled. Unlike a shuffled permutation this does not depend
on numpy's or torch's generator versions, and subsets nest: the 1/8 subset lies inside the 1/4
subset of the same seed, so results across fractions compare like with like. Runs also write
the chosen stems to a list file, so the exact subset survives even a change of data set order.
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Sequence
from fractions import Fraction
from pathlib import Path

from distill.data.base import SegDataset
from distill.data.layout import read_list_lines
from distill.data.transforms import find_base, stem_of
from distill.errors import DistillError, did_you_mean
from distill.io import atomic_write_text

FIELD = "data.labeled_fraction"
EXPECTED = "a fraction in (0, 1], like 1/8 or 0.125"


def parse_fraction(value: float | str) -> float:
    """'1/8' -> 0.125; numbers and numeric strings in (0, 1] pass through."""
    try:
        number = float(Fraction(value.strip())) if isinstance(value, str) else float(value)
    except (ValueError, ZeroDivisionError, TypeError):
        raise DistillError(None, FIELD, EXPECTED, got=value) from None
    if isinstance(value, bool) or not 0.0 < number <= 1.0 or math.isnan(number):
        raise DistillError(None, FIELD, EXPECTED, got=value)
    return number


def make_labeled_split(num_items: int, fraction: float | str, seed: int) -> tuple[list[int], list[int]]:
    """(labeled, unlabeled) sorted indices; labeled has round(num_items * fraction) items, at least 1.

    Rounding is half up (45.875 -> 46 for 1/8 of CamVid's 367), so 1/8 of 8 images is 1 image.
    """
    fraction = parse_fraction(fraction)
    if num_items <= 0:
        raise DistillError(None, FIELD, "a data set with at least one training image to label", got=f"<{num_items} images>")
    count = min(num_items, max(1, math.floor(num_items * fraction + 0.5)))
    ranked = sorted(range(num_items), key=lambda i: rank_key(seed, i))
    labeled = sorted(ranked[:count])
    chosen = set(labeled)
    return labeled, [i for i in range(num_items) if i not in chosen]


def rank_key(seed: int, index: int) -> bytes:
    return hashlib.blake2b(f"{seed}:{index}".encode(), digest_size=8).digest()


def write_split_list(path: str | Path, dataset, indices: Sequence[int]) -> None:
    """One stem per line, written atomically (temporary file, then rename)."""
    atomic_write_text(path, "".join(f"{stem_of(dataset, i)}\n" for i in indices))


def read_split_list(path: str | Path, dataset) -> list[int]:
    """Sorted indices of the stems listed in path; an unknown stem fails with its line number."""
    path = Path(path)
    if not path.is_file():
        raise DistillError(path, None, "an existing split list (one file stem per line)", got="<missing>")
    positions = {stem_of(dataset, i): i for i in range(len(dataset))}
    base = find_base(dataset)
    indices = set()
    for line, fields in read_list_lines(path):
        stem = fields[0]
        if stem not in positions:
            where = f"a file stem of {base.name}/{getattr(base, 'split', '?')}"
            raise DistillError(path, None, where, got=stem, line=line, hint=did_you_mean(stem, positions))
        indices.add(positions[stem])
    if not indices:
        raise DistillError(path, FIELD, "at least one labeled stem in the split list", got="<empty list>")
    return sorted(indices)


class SubsetDataset(SegDataset):
    """The samples at `indices`, keeping classes, name and stems (torch's Subset drops them)."""

    def __init__(self, dataset, indices: Sequence[int]) -> None:
        self.dataset, self.indices = dataset, list(indices)
        base = find_base(dataset)
        self.classes, self.name, self.split = list(base.classes), base.name, getattr(base, "split", "train")

    def __len__(self) -> int:
        return len(self.indices)

    def stem(self, index: int) -> str:
        return stem_of(self.dataset, self.indices[index])

    def __getitem__(self, index: int) -> dict:
        return self.dataset[self.indices[index]]
