"""Saved partitions for semi-supervised recipes: which training images are labeled, as files.

MGD's protocols label 1/16, 1/8, 1/4 or 1/2 of the training split and use the rest without labels
[C: MGD-SSSS DATA/city/config_new/subset_train lists]. Our partition is the labeled subset of
`make_labeled_split` (a keyed hash of (seed, index): deterministic per seed, nested across
fractions, at least one image) written as a list of stems, one per line; its unlabeled set is the
rest of the split, disjoint by construction. The CamVid lists are committed
(recipes/camvid/partitions/); for Cityscapes, VOC or any other data set `distill partition` writes
them the same way, or a recipe's `labeled_fraction` draws the same subset on the fly. Either way
the run folder records both lists it used (labeled.txt, unlabeled.txt), so a later change of the
data set's order or contents cannot silently change the experiment.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from distill.data.subsets import make_labeled_split, parse_fraction, read_split_list, write_split_list
from distill.data.transforms import stem_of
from distill.errors import DistillError

PROTOCOLS = ("1/16", "1/8", "1/4", "1/2")  # MGD's partition protocols [C]


def partition_name(fraction: str | float, seed: int) -> str:
    """The list file of a partition: '1/8', seed 0 -> '1-8_seed0.txt'."""
    parse_fraction(fraction)  # a bad fraction fails here, before any file is written
    return f"{str(fraction).strip().replace('/', '-')}_seed{seed}.txt"


def write_partitions(dataset, folder: str | Path, fractions: Sequence[str | float] = PROTOCOLS, seed: int = 0) -> list[Path]:
    """Write the labeled list of each fraction of `dataset` (the training split) into `folder`."""
    written = []
    for fraction in fractions:
        labeled, _ = make_labeled_split(len(dataset), fraction, seed)
        path = Path(folder) / partition_name(fraction, seed)
        write_split_list(path, dataset, labeled)
        written.append(path)
    return written


def select_partition(train, fraction: str | float | None, labeled_list: str | Path | None,
                     seed: int) -> tuple[list[int], list[int]] | None:
    """(labeled, unlabeled) sorted indices of `train` from a saved list or a fraction; None: all labeled."""
    if labeled_list is not None:
        labeled = read_split_list(labeled_list, train)
    elif fraction is not None:
        labeled, _ = make_labeled_split(len(train), parse_fraction(fraction), seed)
    else:
        return None
    chosen = set(labeled)
    return labeled, [i for i in range(len(train)) if i not in chosen]


def stems_at(dataset, indices: Sequence[int]) -> list[str]:
    return [stem_of(dataset, i) for i in indices]


def main(argv: Sequence[str] | None = None) -> None:
    """`python -m distill.data.partitions --data camvid --root ../shared/data/camvid --out recipes/camvid/partitions`

    Writes the labeled list of each protocol (1/16, 1/8, 1/4, 1/2 unless --fraction is given) of the
    data set's training split. A module entry point, not a `distill` subcommand: cli.py is at its
    300-line budget [I].
    """
    import argparse
    import sys

    from distill.data.build import build_dataset

    parser = argparse.ArgumentParser(prog="python -m distill.data.partitions", description=main.__doc__.splitlines()[2].strip())
    parser.add_argument("--data", required=True, help="data set name (camvid, cityscapes, voc, ...)")
    parser.add_argument("--root", default=None, help="data set folder (default: its usual location)")
    parser.add_argument("--out", required=True, help="folder for the list files")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--fraction", action="append", help="a labeled fraction such as 1/8 (repeatable)")
    args = parser.parse_args(argv)
    try:
        train = build_dataset(args.data, args.root, "train", file="command line")
        written = write_partitions(train, args.out, args.fraction or PROTOCOLS, args.seed)
    except DistillError as exc:  # one line and exit code 2, as `distill` prints its errors
        print(f"distill: {exc}", file=sys.stderr)
        raise SystemExit(2) from None
    for path in written:
        print(f"{path}: {len(path.read_text(encoding='utf-8').split())} of {len(train)} labeled")


if __name__ == "__main__":
    main()
