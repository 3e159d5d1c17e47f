"""The data set registry and the one function the engine calls to build a split.

A builder is `builder(root, split, **options) -> SegDataset`; its keyword parameters are the
data set's options. Options are checked against that signature (names and types) before
anything touches the disk, so `num_image: 8` fails at load with a did-you-mean, not as a
silently ignored key.
"""

from __future__ import annotations

import inspect
import typing
from collections.abc import Callable
from pathlib import Path
from typing import Any

from pydantic import ValidationError, create_model

from distill.data.base import SegDataset
from distill.errors import DistillError, did_you_mean
from distill.registry import Registry
from distill.yamlfile import validation_error

SPLITS = ("train", "val", "test")
FIXED_PARAMETERS = ("root", "split")

Builder = Callable[..., SegDataset]
DATASETS: Registry[Builder] = Registry("data set")


def build_dataset(
    name: str,
    root: str | Path | None,
    split: str,
    options: dict[str, Any] | None = None,
    *,
    file: str | None = None,
) -> SegDataset:
    """Build split `split` of data set `name`; `file` is the recipe named in errors."""
    builder = DATASETS.get(name, file=file, field="data.name")
    if split not in SPLITS:
        raise DistillError(file, "split", f"one of {', '.join(SPLITS)}", got=split)
    params = check_options(builder, dict(options or {}), file=file)
    try:
        return builder(Path(root) if root is not None else None, split, **params)
    except DistillError as exc:
        if exc.file is not None or file is None:
            raise
        # A builder's complaint about a recipe field (data.root, data.options.*) belongs to the recipe.
        raise DistillError(file, exc.field, exc.expected, exc.got, line=exc.line, hint=exc.hint) from None


def check_options(builder: Builder, options: dict[str, Any], *, file: str | None = None) -> dict[str, Any]:
    """The options validated (and coerced, e.g. a YAML list to a tuple) against the builder."""
    model = make_options_model(builder)
    known = list(model.model_fields)
    for key in options:
        if key not in known:
            expected = f"one of {', '.join(known)}" if known else "no options (this data set takes none)"
            hint = did_you_mean(key, known)
            raise DistillError(file, f"data.options.{key}", expected, got=f"<unknown option {key!r}>", hint=hint)
    try:
        validated = model.model_validate(options)
    except ValidationError as exc:
        raise validation_error(exc, model, lambda loc: (file, None), prefix=("data", "options")) from None
    return {key: getattr(validated, key) for key in options}


def make_options_model(builder: Builder) -> type:
    """A pydantic model of the builder's keyword parameters (everything after root and split)."""
    hints = typing.get_type_hints(builder, include_extras=True)  # keep PositiveInt's bound
    fields: dict[str, Any] = {}
    for pname, param in inspect.signature(builder).parameters.items():
        if pname in FIXED_PARAMETERS or param.kind in (param.VAR_KEYWORD, param.VAR_POSITIONAL):
            continue
        default = param.default if param.default is not inspect.Parameter.empty else ...
        fields[pname] = (hints.get(pname, Any), default)
    return create_model(f"{builder.__name__}_options", __config__={"extra": "forbid"}, **fields)
