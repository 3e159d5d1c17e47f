"""Training checkpoints through Accelerate, written so that a kill at any moment loses nothing.

`accelerator.save_state` writes a folder; we write it under a temporary name and rename it into
place, then drop older checkpoints. A folder without our `state.json` marker is incomplete and
is ignored on resume. Before writing, the free space is checked against 3x the model's state
(weights, up to two optimizer moments, slack); a write that fails anyway (a full disk) drops the
temporary folder and is one DistillError, with the previous checkpoint untouched.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

from accelerate import Accelerator

from distill.errors import DistillError
from distill.io import WRITE_ERRORS, atomic_write_text, check_free_space

MARKER = "state.json"
SIZE_FACTOR = 3  # checkpoint bytes per byte of model state: weights, optimizer moments, slack
# torch.save (optimizer, scheduler) reports a failed write as a RuntimeError from its zip writer
SAVE_ERRORS = (*WRITE_ERRORS, RuntimeError)


class Checkpoints:
    def __init__(self, folder: Path, keep: int = 2) -> None:
        self.folder, self.keep = folder, keep

    def complete(self) -> list[Path]:
        if not self.folder.is_dir():
            return []
        found = [p for p in self.folder.glob("step_*") if (p / MARKER).is_file() and not p.name.endswith(".tmp")]
        return sorted(found, key=lambda p: int(p.name.split("_")[1]))

    def latest(self) -> Path | None:
        found = self.complete()
        return found[-1] if found else None

    def save(self, accelerator: Accelerator, step: int, state: dict[str, Any], state_bytes: int = 0) -> Path:
        """Write checkpoint `step`; state_bytes (the model's weights and buffers) sizes the space check."""
        final = self.folder / f"step_{step:07d}"
        tmp = self.folder / f"step_{step:07d}.tmp"
        if accelerator.is_main_process:
            check_free_space(self.folder, SIZE_FACTOR * state_bytes)
            shutil.rmtree(tmp, ignore_errors=True)
        accelerator.wait_for_everyone()
        try:
            accelerator.save_state(str(tmp))
        except SAVE_ERRORS as exc:
            shutil.rmtree(tmp, ignore_errors=True)
            raise DistillError(final, None, "a complete checkpoint write (free disk space, permissions)",
                               got=f"<{type(exc).__name__}: {exc}>") from None
        # every process writes into tmp (its own RNG state file); the rename waits for the last one
        accelerator.wait_for_everyone()
        if accelerator.is_main_process:
            atomic_write_text(tmp / MARKER, json.dumps({**state, "step": step}))
            shutil.rmtree(final, ignore_errors=True)
            tmp.rename(final)
            for old in self.complete()[: -self.keep]:
                shutil.rmtree(old, ignore_errors=True)
        accelerator.wait_for_everyone()
        return final

    def load(self, accelerator: Accelerator, path: Path) -> dict[str, Any]:
        """Restore a checkpoint; a damaged one, or one of another model, is one DistillError."""
        try:
            state = json.loads((path / MARKER).read_text())
            accelerator.load_state(str(path))
        except Exception as exc:  # safetensors, torch.load and load_state_dict each raise their own types
            detail = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
            raise DistillError(path, None, "a complete checkpoint of this recipe", got=f"<{type(exc).__name__}: {detail[:200]}>",
                               hint="delete it to resume from an earlier one") from None
        return state
