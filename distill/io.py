"""Model files: safetensors weights plus the metadata needed to rebuild and describe the model.

A model file stands alone: `distill eval/compare/check/export` rebuild the architecture from
the card stored in its metadata and never unpickle anything. Every write goes to a temporary
file in the same folder and is renamed into place, so an interrupted write leaves the old file;
a write that fails (a full disk, a path under a regular file) is one DistillError naming the
file. Large writes first check the free space, so a full disk stops a run before the write.
"""

from __future__ import annotations

import hashlib
import json
import os
import platform
import re
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError, safe_open
from safetensors.torch import save_file
from torch import Tensor

from distill.errors import DistillError

FORMAT = "distill-model/1"
PICKLE_SUFFIXES = (".pth", ".pt", ".pkl", ".ckpt", ".bin")
WRITE_ERRORS = (OSError, SafetensorError)  # safetensors reports ENOSPC as its own error type
HEADER_ROOM = 1 << 20  # metadata (card, info) and slack beyond the tensor bytes of a model file


@contextmanager
def atomic_path(path: str | Path) -> Iterator[Path]:
    """Yield a temporary path next to `path`; rename it onto `path` only if the block succeeds."""
    path = Path(path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    except OSError as exc:
        existing = existing_ancestor(path.parent)
        reason = f"{existing} is not a folder" if not existing.is_dir() else exc.strerror or str(exc)
        raise DistillError(path, None, "a writable file", got=f"<{reason}>") from None
    os.close(fd)
    try:
        yield Path(tmp)
        with open(tmp, "rb") as handle:
            os.fsync(handle.fileno())
        # mkstemp makes the file 0600 (and a writer may replace it); give it the mode a plain
        # open() would, so a model file can be read by the rest of a team or a serving user.
        os.chmod(tmp, 0o666 & ~current_umask())
        os.replace(tmp, path)
    except WRITE_ERRORS as exc:
        raise DistillError(path, None, "a complete write (free disk space, permissions)", got=f"<{exc}>") from None
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


def current_umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def atomic_write_text(path: str | Path, text: str) -> None:
    with atomic_path(path) as tmp:
        tmp.write_text(text, encoding="utf-8")


def atomic_save_tensors(tensors: dict[str, Tensor], path: str | Path, metadata: dict[str, str]) -> None:
    check_free_space(Path(path).parent, sum(t.nbytes for t in tensors.values()) + HEADER_ROOM)
    with atomic_path(path) as tmp:
        save_file({k: v.detach().contiguous().cpu() for k, v in tensors.items()}, str(tmp), metadata=metadata)


def atomic_copy(source: str | Path, target: str | Path) -> None:
    """Copy a model file into place atomically, after checking that it fits."""
    check_free_space(Path(target).parent, Path(source).stat().st_size + HEADER_ROOM)
    with atomic_path(target) as tmp:
        shutil.copyfile(source, tmp)


def check_free_space(folder: str | Path, needed: int) -> None:
    """Refuse a write of about `needed` bytes that cannot fit, before it starts."""
    folder = Path(folder)
    free = shutil.disk_usage(existing_ancestor(folder)).free
    if free < needed:
        raise DistillError(folder, "free disk space", f"at least {format_bytes(needed)} free for the next file",
                           got=f"<{format_bytes(free)} free>")


def sha256_of(path: str | Path) -> str:
    """The file's sha256, read in 1 MB blocks."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def existing_ancestor(path: Path) -> Path:
    """path itself, or its nearest parent that exists (a folder, or the file that blocks the path)."""
    while not path.exists() and path != path.parent:
        path = path.parent
    return path


def format_bytes(count: int) -> str:
    for unit in ("B", "KiB", "MiB", "GiB"):
        if count < 1024 or unit == "GiB":
            return f"{count:.0f} {unit}" if unit == "B" else f"{count:.1f} {unit}"
        count /= 1024
    return f"{count} B"  # pragma: no cover


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
    if path.suffix in PICKLE_SUFFIXES:
        raise DistillError(path, None, "a .safetensors model file (a torch state dict loads only with "
                           "--allow-pickle --card CARD.yaml)", got=path.suffix)
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


def read_torch_state_dict(path: str | Path) -> dict[str, Tensor]:
    """A foreign torch state dict, unpickled with weights_only=True: tensors and plain containers only.

    The user asked for it (--allow-pickle); even then no class or function named in the file is
    imported or called. A {"state_dict": ...} or {"model": ...} wrapper is unwrapped.
    """
    path = Path(path)
    if not path.is_file():
        raise DistillError(path, None, "an existing torch state dict file", got="<missing>")
    try:
        obj = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # UnpicklingError for a refused global; RuntimeError, EOFError for damage
        refused = re.search(r"GLOBAL (\S+)", str(exc))
        detail = f"refused global {refused.group(1)}" if refused else str(exc).strip().split(". ")[0][:200]
        raise DistillError(path, None, "a torch state dict that loads with weights_only=True",
                           got=f"<{type(exc).__name__}: {detail}>") from None
    for key in ("state_dict", "model"):
        if isinstance(obj, dict) and isinstance(obj.get(key), dict):
            obj = obj[key]
    if not isinstance(obj, dict) or not obj or not all(isinstance(k, str) and isinstance(v, Tensor) for k, v in obj.items()):
        raise DistillError(path, None, "a mapping of parameter names to tensors", got=f"<{type(obj).__name__}>")
    return obj


def read_format_json(path: Path, fmt: str, needed: tuple[str, ...], what: str, written_by: str) -> dict[str, Any]:
    """A JSON record of ours (a check baseline, an ONNX sidecar): present, JSON, the `fmt` format and
    every `needed` field, or a one-line error naming the file and the field."""
    if not path.is_file():
        raise DistillError(path, None, what, got="<missing>")
    try:
        record = json.loads(path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError):
        raise DistillError(path, None, what, got="<not JSON>") from None
    if not isinstance(record, dict) or record.get("format") != fmt:
        got = record.get("format") if isinstance(record, dict) else type(record).__name__
        raise DistillError(path, "format", repr(fmt), got=got)
    for key in needed:
        if key not in record:
            raise DistillError(path, key, f"a field written by {written_by}", got="<missing>")
    return record
