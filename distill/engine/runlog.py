"""The run's log.jsonl: one JSON record a line (losses and lr every log_every steps, and each
evaluation), appended as training goes and trimmed back to the checkpoint a run resumes from."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from distill.io import atomic_write_text


def append_record(path: Path, record: dict[str, Any]) -> None:
    with open(path, "a", encoding="utf-8") as handle:
        handle.write(json.dumps(record) + "\n")


def logged_step(line: str) -> float:
    """A log line's step; a line a kill cut short reads as after every step (it is dropped)."""
    try:
        return json.loads(line).get("step", 0)
    except json.JSONDecodeError:
        return float("inf")


def trim_log(path: Path, step: int) -> None:
    """Drop the log records after `step`: the steps a killed run logged past its last checkpoint
    are trained again on resume, and would otherwise appear twice in log.jsonl."""
    if not path.is_file():
        return
    lines = path.read_text(encoding="utf-8").splitlines()
    kept = [line for line in lines if logged_step(line) <= step]
    if len(kept) != len(lines):
        atomic_write_text(path, "".join(f"{line}\n" for line in kept))
