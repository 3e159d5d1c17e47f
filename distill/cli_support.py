"""The parts of the CLI that are not commands: --version, the report formats, and how docstrings
become --help text."""

from __future__ import annotations

import inspect
from enum import Enum

import typer


def reflow(text: str) -> str:
    """A docstring as --help should show it: each paragraph on one line, for rich to wrap to the
    terminal; list items ("- ", "* ") and indented lines keep their own line. Typer keeps a
    docstring's source line breaks, so 100-column source lines read at 80 columns folded twice."""
    paragraphs = []
    for paragraph in inspect.cleandoc(text).split("\n\n"):
        lines: list[str] = []
        for line in paragraph.splitlines():
            if lines and not line.startswith((" ", "- ", "* ")):
                lines[-1] = f"{lines[-1]} {line.strip()}"
            else:
                lines.append(line)
        paragraphs.append("\n".join(lines))
    return "\n\n".join(paragraphs)


def reflow_help(app: typer.Typer) -> None:
    """Every registered command's help (its `help=` or its docstring), reflowed in place."""
    for info in app.registered_commands:
        info.help = reflow(info.help or inspect.getdoc(info.callback) or "")


def show_version(value: bool) -> None:
    """--version: print it and stop before any command runs."""
    if value:
        from distill import __version__

        print(f"distill {__version__}")
        raise typer.Exit()


class Format(str, Enum):
    """What `distill compare --format` writes."""

    table = "table"
    md = "md"
    json = "json"
    html = "html"
