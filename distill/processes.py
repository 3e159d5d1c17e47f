"""Which process of a multi-process run this is, read from the launcher's environment.

`accelerate launch` and torchrun set WORLD_SIZE and RANK before Python starts, so these answers
exist before an Accelerator does: the console is made quiet and the run folder is created by one
process from the first line on. Without a launcher both describe a single process.
"""
from __future__ import annotations

import os


def processes() -> int:
    """How many processes this run has (1 without a launcher)."""
    return int(os.environ.get("WORLD_SIZE", "1"))


def is_main_process() -> bool:
    """True on process 0, the one that prints and writes the run folder."""
    return int(os.environ.get("RANK", "0")) == 0
