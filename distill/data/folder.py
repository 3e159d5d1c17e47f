"""`folder`: any data set in a plain layout, for users bringing their own images and masks.

Two layouts, tried in this order:
    nested: images/<split>/*.{jpg,png}  masks/<split>/<stem>.png
    flat:   images/*.{jpg,png}  masks/<stem>.png  <split>.txt (one stem per line)
plus classes.txt with one class name per line (line i names class i). Mask pixels are class
indices; 255 is ignored. Class names are required, not guessed from the masks: a missing
class that happens to be absent from every mask would otherwise shift every later id.
"""

from __future__ import annotations

from pathlib import Path

from distill.data.base import FilePairDataset, make_identity_table
from distill.data.build import DATASETS, SPLITS
from distill.data.layout import (
    IMAGE_SUFFIXES,
    check_unique_stems,
    find_images,
    pair_by_stem,
    raise_missing_split,
    read_list_lines,
    resolve_inside,
)
from distill.errors import DistillError
from distill.outputs import IGNORE_INDEX

LAYOUT = "images/<split>/ and masks/<split>/, or images/, masks/ and <split>.txt, plus classes.txt"


@DATASETS.register("folder")
def build_folder(root: Path | None, split: str) -> FilePairDataset:
    """Split `split` of a user data set; the root must be given (there is no default location)."""
    if root is None:
        raise DistillError(None, "data.root", f"a folder holding {LAYOUT}", hint="the folder data set has no default root")
    if not root.is_dir():
        raise DistillError(root, "data.root", f"an existing folder holding {LAYOUT}", got="<missing>")
    classes = read_classes(root / "classes.txt")
    if (root / "images" / split).is_dir():
        pairs = pair_by_stem(find_images(root / "images" / split), root / "masks" / split)
        where = root / "images" / split
    elif (root / f"{split}.txt").is_file():
        pairs = read_flat_list(root, root / f"{split}.txt")
        where = root / f"{split}.txt"
    else:
        have = [s for s in SPLITS if (root / "images" / s).is_dir() or (root / f"{s}.txt").is_file()]
        raise_missing_split(root, split, f"images/{split}/ or {split}.txt", have)
    table = make_identity_table(len(classes))
    spec = f"0..{len(classes) - 1} (classes.txt lists {len(classes)}) or {IGNORE_INDEX}"
    dataset = FilePairDataset("folder", split, classes, pairs, table, spec)
    check_unique_stems(dataset.stems, where)
    return dataset


def read_classes(path: Path) -> list[str]:
    """Class names, one per line; blank lines are skipped, duplicates are an error."""
    if not path.is_file():
        raise DistillError(path, None, "class names, one per line (line i names class i)", got="<missing>")
    names = [line.strip() for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
    if not names or len(names) >= IGNORE_INDEX:
        raise DistillError(path, None, f"1 to {IGNORE_INDEX - 1} class names", got=f"<{len(names)} names>")
    seen: set[str] = set()
    for name in names:
        if name in seen:
            raise DistillError(path, None, "distinct class names", got=name)
        seen.add(name)
    return names


def read_flat_list(root: Path, list_file: Path) -> list[tuple[Path, Path]]:
    """Pairs for the stems in list_file, found in the flat images/ and masks/ folders."""
    pairs = []
    for line, fields in read_list_lines(list_file):
        stem = fields[0]
        candidates = [resolve_inside(root / "images", stem + s, list_file, line) for s in IMAGE_SUFFIXES]
        image = next((c for c in candidates if c.is_file()), None)
        if image is None:
            raise DistillError(list_file, None, f"an image images/{stem}.jpg or .png", got=stem, line=line)
        mask = resolve_inside(root / "masks", f"{stem}.png", list_file, line)
        if not mask.is_file():
            raise DistillError(mask, None, f"a mask for {image}", got="<missing>")
        pairs.append((image, mask))
    if not pairs:
        raise DistillError(list_file, None, "at least one file stem", got="<empty list>")
    return pairs
