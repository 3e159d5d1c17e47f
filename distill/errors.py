"""One error type for everything a user can get wrong.

Every user-facing failure names the file, the field (or path) and what was expected, so the CLI
can print it as a single line and exit with code 2. Code raises these early, at load time,
before any compute is spent.
"""

from __future__ import annotations

import difflib
import importlib
import re
from collections.abc import Iterable
from pathlib import Path


class DistillError(Exception):
    """A user-facing error: `file:line: field: expected X, got Y`."""

    def __init__(
        self,
        file: str | Path | None,
        field: str | None,
        expected: str,
        got: object = None,
        *,
        line: int | None = None,
        hint: str | None = None,
    ) -> None:
        self.file = str(file) if file is not None else None
        self.field = field
        self.expected = expected
        self.got = got
        self.line = line
        self.hint = hint
        super().__init__(self.render())

    def render(self) -> str:
        where = self.file or ""
        if where and self.line is not None:
            where = f"{where}:{self.line}"
        parts = [p for p in (where, self.field) if p]
        text = ": ".join(parts)
        message = f"expected {self.expected}" if self.expected else ""
        if self.got is not None:
            got = self.got if isinstance(self.got, str) and self.got.startswith("<") else repr(self.got)
            message += f", got {got}"
        if self.hint:
            message += f" ({self.hint})"
        return f"{text}: {message}" if text else message


def from_worker(exc: BaseException) -> str | None:
    """The one line of a DistillError raised inside a DataLoader worker, else None.

    torch re-raises a worker's exception as `type(exc)(text)`; a DistillError cannot be built from
    one string, so torch raises a RuntimeError holding the worker's whole traceback instead. Its
    last line is `distill.<module>.<Class>: <our line>`.
    """
    lines = str(exc).rstrip().splitlines()
    if not isinstance(exc, RuntimeError) or not lines or not re.match(r"Caught \w+ in DataLoader worker", lines[0]):
        return None
    match = re.match(r"(distill(?:\.\w+)*)\.(\w+): (.*)$", lines[-1])
    if match is None:
        return None
    try:
        cls = getattr(importlib.import_module(match.group(1)), match.group(2))
    except (ImportError, AttributeError):
        return None
    return match.group(3) if isinstance(cls, type) and issubclass(cls, DistillError) else None


def did_you_mean(word: str, choices: Iterable[str]) -> str | None:
    """A 'did you mean' hint for a misspelt name, or None when nothing is close."""
    close = difflib.get_close_matches(str(word), list(choices), n=1, cutoff=0.6)
    return f"did you mean {close[0]!r}?" if close else None
