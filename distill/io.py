"""Model files: safetensors weights plus the metadata needed to rebuild and describe the model.

A model file stands alone: `distill eval/compare/check/export` rebuild the architecture from
the card stored in its metadata and never unpickle anything. Every write goes to a temporary
file in the same folder and is renamed into place, so an interrupted write leaves the old file.
"""

from __future__ import annotations

import json
import os
import platform
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from safetensors import safe_open
from safetensors.torch import save_file
from torch import Tensor

from distill.errors import DistillError

FORMAT = "distill-model/1"


@contextmanager
def atomic_path(path: str | Path) -> Iterator[Path]:
    """Yield a temporary path next to `path`; rename it onto `path` only if the block succeeds."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    try:
        yield Path(tmp)
        with open(tmp, "rb") as handle:
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


def atomic_write_text(path: str | Path, text: str) -> None:
    with atomic_path(path) as tmp:
        tmp.write_text(text, encoding="utf-8")


def atomic_save_tensors(tensors: dict[str, Tensor], path: str | Path, metadata: dict[str, str]) -> None:
    with atomic_path(path) as tmp:
        save_file({k: v.detach().contiguous().cpu() for k, v in tensors.items()}, str(tmp), metadata=metadata)


def library_versions() -> dict[str, str]:
    import timm

    from distill import __version__

    return {"distill": __version__, "torch": torch.__version__, "timm": timm.__version__, "python": platform.python_version()}


@dataclass
class ModelFile:
    """What a model file says about itself."""

    path: Path
    card: dict[str, Any]
    info: dict[str, Any]  # classes, recipe hash, metrics, seed, versions, ...

    @property
    def classes(self) -> list[str]:
        return list(self.card.get("classes") or [])


def save_model_file(path: str | Path, state: dict[str, Tensor], card: dict[str, Any], info: dict[str, Any]) -> None:
    meta = {"format": FORMAT, "card": json.dumps(card), "info": json.dumps({**info, "versions": library_versions()})}
    atomic_save_tensors(state, path, meta)


def read_model_file(path: str | Path) -> tuple[ModelFile, dict[str, Tensor]]:
    """Read metadata and tensors; a missing, truncated or foreign file gives a one-line error."""
    path = Path(path)
    if not path.is_file():
        raise DistillError(path, None, "an existing model file (.safetensors)", got="<missing>")
    if path.suffix in (".pth", ".pt", ".pkl", ".ckpt", ".bin"):
        raise DistillError(path, None, "a .safetensors model file (pickle files are not loaded)", got=path.suffix)
    try:
        with safe_open(str(path), framework="pt") as handle:
            meta = handle.metadata() or {}
            tensors = {k: handle.get_tensor(k) for k in handle.keys()}
    except Exception as exc:  # safetensors raises SafetensorError / OSError on corrupt input
        raise DistillError(path, None, "a valid safetensors file", got=f"<corrupt: {exc}>") from None
    if meta.get("format") != FORMAT:
        raise DistillError(path, "metadata.format", f"{FORMAT!r} (a file written by distill)", got=meta.get("format"))
    try:
        card, info = json.loads(meta["card"]), json.loads(meta["info"])
    except (KeyError, json.JSONDecodeError):
        raise DistillError(path, "metadata", "card and info as JSON", got="<unreadable>") from None
    return ModelFile(path, card, info), tensors
