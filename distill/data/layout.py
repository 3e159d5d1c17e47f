"""Finding a data set's files on disk: default roots, list files, stem pairing.

Every failure here says where it looked, because "no such file" three folders deep does not tell
a user whether the root, the split or one file is wrong. List files come from the internet, so
their entries are confined to the root: a `../` entry is refused, not followed.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import NoReturn

from distill.errors import DistillError

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png")
# `distill run` has no --data-root: a recipe's root is a key (in the file, or the override data.root=PATH);
# train, eval, compare and check take --data-root.
ROOT_HINT = ("set data.root in the recipe or as an override, e.g. distill run RECIPE data.root=PATH, "
             "or pass --data-root PATH to distill train/eval/compare/check, or use the DISTILL_DATA folder")


def default_root(folder: str) -> Path:
    """Where a data set lives when the recipe names no root: $DISTILL_DATA/<folder> (default data/)."""
    return Path(os.environ.get("DISTILL_DATA", "data")) / folder


def locate_root(
    root: Path | None,
    folder: str,
    subfolders: Sequence[str],
    is_layout: Callable[[Path], bool],
    layout: str,
    download: str,
) -> Path:
    """The first of root, root/<sub>... that holds the layout; else one error saying where we looked.

    Accepting a few known nestings (VOCdevkit/VOC2012, ADEChallengeData2016) spares users from
    guessing which level of an unpacked archive the loader wants.
    """
    base = Path(root) if root is not None else default_root(folder)
    candidates = [base / sub if sub else base for sub in ("", *subfolders)]
    for candidate in candidates:
        if candidate.is_dir() and is_layout(candidate):
            return candidate
    looked = ", ".join(str(c) for c in candidates)
    raise DistillError(base, "data.root", f"{layout} (looked in {looked})", hint=f"{download}; {ROOT_HINT}")


def raise_missing_split(root: Path, split: str, wanted: str, have: Iterable[str] = ()) -> NoReturn:
    """A data set without the requested split: name the root, the split and what would serve."""
    have = sorted(have)
    hint = f"this copy has: {', '.join(have)}" if have else None
    raise DistillError(root, "split", wanted, got=split, hint=hint)


def read_list_lines(path: Path) -> list[tuple[int, list[str]]]:
    """(line number, whitespace-split fields) for every non-blank, non-comment line."""
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise DistillError(path, None, "a readable UTF-8 list file", got=f"<{type(exc).__name__}>") from None
    rows = []
    for number, line in enumerate(text.splitlines(), start=1):
        fields = line.split()
        if fields and not fields[0].startswith("#"):
            rows.append((number, fields))
    return rows


def resolve_inside(root: Path, entry: str, list_file: Path, line: int) -> Path:
    """root/entry, refusing anything that leaves root.

    The check is lexical (normpath, no symlink following): a root that symlinks its image folder
    to another disk is a normal setup, while a `../` or absolute path in a downloaded list is not.
    """
    path = Path(os.path.normpath(os.path.join(os.path.abspath(root), entry)))
    if not is_inside(root, path):
        raise DistillError(list_file, None, f"a path inside {root}", got=entry, line=line)
    return path


def is_inside(root: Path, path: Path) -> bool:
    """Lexically inside root (after normalising `..`), without following symlinks."""
    base = os.path.normpath(os.path.abspath(root))
    return os.path.commonpath([base, os.path.normpath(os.path.abspath(path))]) == base


def find_images(folder: Path, suffixes: Sequence[str] = IMAGE_SUFFIXES) -> list[Path]:
    """Image files directly in folder, sorted; an empty or missing folder is an error naming it."""
    if not folder.is_dir():
        raise DistillError(folder, None, "a folder of images", got="<missing>")
    images = sorted(p for p in folder.iterdir() if p.suffix.lower() in suffixes and p.is_file())
    if not images:
        raise DistillError(folder, None, f"image files ({', '.join('*' + s for s in suffixes)})", got="<none found>")
    return images


def pair_by_stem(images: Sequence[Path], mask_dir: Path, mask_suffix: str = ".png") -> list[tuple[Path, Path]]:
    """(image, mask_dir/<stem><mask_suffix>) for every image; a missing mask is an error naming both."""
    pairs = []
    for image in images:
        mask = mask_dir / f"{image.stem}{mask_suffix}"
        if not mask.is_file():
            raise DistillError(mask, None, f"a label file for {image}", got="<missing>")
        pairs.append((image, mask))
    return pairs


def check_unique_stems(stems: Sequence[str], where: Path) -> None:
    """Split lists are written as stems, so two samples with one stem would be ambiguous."""
    seen: set[str] = set()
    for stem in stems:
        if stem in seen:
            raise DistillError(where, None, "unique file stems", got=stem)
        seen.add(stem)
