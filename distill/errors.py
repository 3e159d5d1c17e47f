"""One error type for everything a user can get wrong.

Every user-facing failure names the file, the field (or path) and what was expected, so the CLI
can print it as a single line and exit with code 2. Code raises these early, at load time,
before any compute is spent.
"""

from __future__ import annotations

import difflib
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


def did_you_mean(word: str, choices: Iterable[str]) -> str | None:
    """A 'did you mean' hint for a misspelt name, or None when nothing is close."""
    close = difflib.get_close_matches(str(word), list(choices), n=1, cutoff=0.6)
    return f"did you mean {close[0]!r}?" if close else None
