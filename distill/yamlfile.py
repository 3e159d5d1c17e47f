"""Safe YAML loading that remembers line numbers, and pydantic errors turned into one line.

Recipes and cards are data: `yaml.safe_load` only (no tags that build objects). Line numbers
let an error say `recipes/kd.yaml:14: losses[1].weight: expected a number, got 'high'`. A key
given twice in one mapping is an error: YAML would silently keep the last one. So is a file that
is not UTF-8 text (binary, Latin-1, UTF-16), instead of a UnicodeDecodeError.
"""

from __future__ import annotations

import codecs
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ValidationError

from distill.errors import DistillError, did_you_mean

Loc = tuple[str | int, ...]


def read_yaml(path: Path) -> tuple[dict[str, Any], dict[Loc, int]]:
    """Load a YAML mapping and a map from each key path to its 1-based line."""
    if not path.is_file():
        raise DistillError(path, None, "an existing YAML file", got="<missing>")
    text = _read_text(path)
    try:
        data = yaml.safe_load(text)
        node = yaml.compose(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        line = mark.line + 1 if mark else None
        problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
        raise DistillError(path, None, "valid YAML", got=f"<{problem}>", line=line) from None
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise DistillError(path, None, "a mapping of fields at the top level", got=f"<{type(data).__name__}>")
    lines: dict[Loc, int] = {}
    if node is not None:
        _collect_lines(node, (), lines, path)
    return data, lines


_TEXT = "a UTF-8 text YAML file"
_BOMS = ((codecs.BOM_UTF32_LE, "UTF-32"), (codecs.BOM_UTF32_BE, "UTF-32"),
         (codecs.BOM_UTF16_LE, "UTF-16"), (codecs.BOM_UTF16_BE, "UTF-16"))


def _read_text(path: Path) -> str:
    """The file's text: bytes that are not UTF-8 text (binary, Latin-1, UTF-16) are one error.

    A UTF-8 byte-order mark (as some Windows editors write) is accepted and dropped.
    """
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise DistillError(path, None, "a readable YAML file", got=f"<{exc.strerror or type(exc).__name__}>") from None
    for bom, encoding in _BOMS:
        if raw.startswith(bom):
            raise DistillError(path, None, _TEXT, got=f"<{encoding} text>", hint="save it as UTF-8")
    if b"\x00" in raw:
        raise DistillError(path, None, _TEXT, got=f"<binary data: a NUL byte at offset {raw.index(0)}>")
    try:
        return raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = raw.count(b"\n", 0, exc.start) + 1
        got = f"<byte 0x{raw[exc.start]:02x}, which is not UTF-8>"
        raise DistillError(path, None, _TEXT, got=got, line=line, hint="save it as UTF-8") from None


def _collect_lines(node: yaml.Node, loc: Loc, out: dict[Loc, int], path: Path) -> None:
    out[loc] = node.start_mark.line + 1
    if isinstance(node, yaml.MappingNode):
        seen: dict[str, int] = {}
        for key, value in node.value:
            child = loc + (key.value,)
            line = key.start_mark.line + 1
            if isinstance(key, yaml.ScalarNode):
                if key.value in seen:
                    raise DistillError(path, format_loc(child), "each key once in a mapping", line=line,
                                       got=f"<{key.value!r} again; first on line {seen[key.value]}>")
                seen[key.value] = line
            _collect_lines(value, child, out, path)
            out[child] = line
    elif isinstance(node, yaml.SequenceNode):
        for i, item in enumerate(node.value):
            _collect_lines(item, loc + (i,), out, path)


def format_loc(loc: Loc) -> str:
    """('losses', 1, 'weight') -> 'losses[1].weight'."""
    text = ""
    for part in loc:
        if isinstance(part, int):
            text += f"[{part}]"
        else:
            text += f".{part}" if text else str(part)
    return text


_EXPECTED = {
    "float_parsing": "a number",
    "float_type": "a number",
    "finite_number": "a finite number",
    "int_parsing": "an integer",
    "int_type": "an integer",
    "int_from_float": "an integer",
    "bool_parsing": "true or false",
    "bool_type": "true or false",
    "string_type": "a string",
    "missing": "a value for this required field",
    "tuple_type": "a list",
    "list_type": "a list",
    "dict_type": "a mapping",
    "model_type": "a mapping",
    "model_attributes_type": "a mapping",
}


def _expected(err: dict[str, Any]) -> str:
    kind, ctx = err["type"], err.get("ctx") or {}
    if kind in _EXPECTED:
        return _EXPECTED[kind]
    if kind == "literal_error":
        return f"one of {ctx.get('expected')}"
    if kind in ("greater_than", "greater_than_equal", "less_than", "less_than_equal"):
        op = {"greater_than": ">", "greater_than_equal": ">=", "less_than": "<", "less_than_equal": "<="}[kind]
        bound = next(v for k, v in ctx.items() if k in ("gt", "ge", "lt", "le"))
        return f"a number {op} {bound}"
    if kind in ("too_short", "too_long"):
        return err["msg"].lower().replace("tuple should have", "exactly").replace("list should have", "exactly")
    return err["msg"][:1].lower() + err["msg"][1:]


def _fields_at(model: type[BaseModel], loc: Loc) -> list[str]:
    """Field names of the (nested) model that holds the last element of loc."""
    current: Any = model
    for part in loc[:-1]:
        if isinstance(current, type) and issubclass(current, BaseModel) and isinstance(part, str):
            field = current.model_fields.get(part)
            if field is None:
                return []
            current = _unwrap(field.annotation)
        elif isinstance(part, int):
            continue
    if isinstance(current, type) and issubclass(current, BaseModel):
        return list(current.model_fields)
    return []


def _unwrap(annotation: Any) -> Any:
    """list[X] / X | None -> X, so nested models can be found."""
    for arg in getattr(annotation, "__args__", ()) or ():
        if isinstance(arg, type) and issubclass(arg, BaseModel):
            return arg
    return annotation


def validation_error(
    exc: ValidationError,
    model: type[BaseModel],
    locate: Any,
    prefix: Loc = (),
) -> DistillError:
    """The first pydantic error as a DistillError; `locate(loc) -> (file, line)`."""
    err = _first_error(exc.errors())
    loc = prefix + tuple(err["loc"])
    hint = None
    got: object = None if err["type"] == "missing" else err.get("input")
    if err["type"] == "extra_forbidden":
        known = _fields_at(model, tuple(err["loc"]))
        field = str(loc[-1])
        hint = did_you_mean(field, known) or (f"known: {', '.join(known)}" if known else None)
        file, line = locate(loc)
        return DistillError(file, format_loc(loc), "a known field", got=f"<unknown field {field!r}>", line=line, hint=hint)
    if err["type"] == "union_tag_invalid":  # a typed list entry (stages:) by `name`, e.g. name: distil
        tags = [t.strip(" '") for t in str(err["ctx"]["expected_tags"]).split(",")]
        tag = str(err["ctx"]["tag"])
        file, line = locate(loc + ("name",))
        return DistillError(file, format_loc(loc + ("name",)), f"one of {', '.join(tags)}", got=tag, line=line,
                            hint=did_you_mean(tag, tags))
    file, line = locate(loc)
    return DistillError(file, format_loc(loc), _expected(err), got=got, line=line, hint=hint)


def _first_error(errors: list[Any]) -> Any:
    """The error to report: an unknown key before a missing field, since a misspelt key
    (`trian:` for `train:`) causes both and only the unknown key says what to fix."""
    if errors[0]["type"] == "missing":
        return next((err for err in errors if err["type"] == "extra_forbidden"), errors[0])
    return errors[0]


def load_model(model: type[BaseModel], data: dict[str, Any], path: Path, lines: dict[Loc, int]) -> Any:
    """Validate `data` against `model`, turning the first failure into a one-line DistillError."""
    try:
        return model.model_validate(data)
    except ValidationError as exc:

        def locate(loc: Loc) -> tuple[Path, int | None]:
            return path, lookup_line(lines, loc)

        raise validation_error(exc, model, locate) from None


def lookup_line(lines: dict[Loc, int], loc: Loc) -> int | None:
    """The line of loc, or of its longest prefix present in the file."""
    for end in range(len(loc), -1, -1):
        if loc[:end] in lines:
            return lines[loc[:end]]
    return None
