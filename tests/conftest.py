"""Shared by every test folder: helpers.py (the tiny model cards and recipes, the environment of a
`distill` subprocess) is importable as `helpers`.

pytest's default (prepend) import mode puts this folder on sys.path by itself; it is added here so
`from helpers import ...` also works under --import-mode=importlib and append, and from modules that
are loaded by path (bad_inputs/cases.py).
"""

from __future__ import annotations

import sys
from pathlib import Path

TESTS = str(Path(__file__).resolve().parent)
if TESTS not in sys.path:
    sys.path.insert(0, TESTS)
