"""Training checkpoints through Accelerate, written so that a kill at any moment loses nothing.

`accelerator.save_state` writes a folder; we write it under a temporary name and rename it into
place, then drop older checkpoints. A folder without our `state.json` marker is incomplete and
is ignored on resume.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

from accelerate import Accelerator

from distill.io import atomic_write_text

MARKER = "state.json"


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

    def save(self, accelerator: Accelerator, step: int, state: dict[str, Any]) -> Path:
        final = self.folder / f"step_{step:07d}"
        tmp = self.folder / f"step_{step:07d}.tmp"
        if accelerator.is_main_process:
            shutil.rmtree(tmp, ignore_errors=True)
        accelerator.wait_for_everyone()
        accelerator.save_state(str(tmp))
        if accelerator.is_main_process:
            atomic_write_text(tmp / MARKER, json.dumps({**state, "step": step}))
            shutil.rmtree(final, ignore_errors=True)
            tmp.rename(final)
            for old in self.complete()[: -self.keep]:
                shutil.rmtree(old, ignore_errors=True)
        accelerator.wait_for_everyone()
        return final

    def load(self, accelerator: Accelerator, path: Path) -> dict[str, Any]:
        accelerator.load_state(str(path))
        return json.loads((path / MARKER).read_text())
