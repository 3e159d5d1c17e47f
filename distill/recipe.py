"""Recipes: what to train, from what, with which losses, on what budget.

`load_recipe` does every check that needs no compute: schema, `base:` inheritance, command-line
overrides, loss parameters against each loss's signature, card files, data set names, and the
class counts of teacher and student. A typo fails here, before a teacher is trained.
"""

from __future__ import annotations

import hashlib
import inspect
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml
from pydantic import Field, ValidationError, create_model

from distill.cards import ModelCard, load_card
from distill.errors import DistillError
from distill.specs import DataSpec, LossSpec, PruneSpec, Strict, TrainSpec
from distill.yamlfile import Loc, format_loc, lookup_line, read_yaml, validation_error

OVERRIDE_SOURCE = "command line"


class Recipe(Strict):
    name: str
    description: str = ""
    data: DataSpec = Field(default_factory=DataSpec)
    teacher: str | None = None  # path of a teacher card
    student: str  # path of a student card
    student_init: str | None = None  # a distill model file (.safetensors) the student starts from
    prune: PruneSpec | None = None  # channel pruning of the student before training
    losses: list[LossSpec] = Field(min_length=1)
    train: TrainSpec
    output_dir: str = "runs"

    def fingerprint(self) -> str:
        """A short hash of everything that determines the result."""
        text = json.dumps(self.model_dump(mode="json"), sort_keys=True)
        return hashlib.sha256(text.encode()).hexdigest()[:16]


@dataclass
class LoadedRecipe:
    recipe: Recipe
    path: Path
    student_card: ModelCard
    teacher_card: ModelCard | None
    loss_params: list[dict[str, Any]] = field(default_factory=list)  # validated, defaults filled
    overrides: list[str] = field(default_factory=list)

    def to_yaml(self) -> str:
        return yaml.safe_dump(self.recipe.model_dump(mode="json"), sort_keys=False)


@dataclass
class _Sources:
    """Where each key of the merged recipe came from, for error messages."""

    files: list[tuple[Path, dict[Loc, int]]] = field(default_factory=list)  # most derived first
    overridden: dict[Loc, str] = field(default_factory=dict)

    def locate(self, loc: Loc) -> tuple[str, int | None]:
        for end in range(len(loc), 0, -1):
            if loc[:end] in self.overridden:
                return f"{OVERRIDE_SOURCE} '{self.overridden[loc[:end]]}'", None
        for path, lines in self.files:
            if loc in lines:
                return str(path), lines[loc]
        path, lines = self.files[0]
        return str(path), lookup_line(lines, loc)


def load_recipe(path: str | Path, overrides: list[str] | None = None) -> LoadedRecipe:
    path = Path(path)
    if not path.is_file():
        raise DistillError(path, None, "an existing recipe file", got="<missing>")
    sources = _Sources()
    data = _read_with_bases(path, sources, chain=[])
    return _finish(data, path, sources, overrides)


def recipe_from_card(
    card_path: str | Path,
    data_name: str | None = None,
    data_root: str | None = None,
    overrides: list[str] | None = None,
) -> LoadedRecipe:
    """A cross-entropy-only recipe from a card's `train:` block (`distill train`, missing teachers)."""
    card_path = Path(card_path)
    if data_name is not None:
        from distill.data import DATASETS

        DATASETS.get(data_name, file=OVERRIDE_SOURCE, field="--data")
    card = load_card(card_path)
    # A card without a train: block can still be trained when the command line gives the
    # schedule (train.iterations=...); validation names whatever is still missing.
    data = card.train.data.model_dump(mode="json", exclude_unset=True) if card.train else {}
    if data_name is not None and data_name != data.get("name", "synthetic"):
        data = {"name": data_name}  # another data set: the card's options and sizes do not apply
    if data_root is not None:
        data["root"] = data_root
    name = card.name if data_name is None else f"{card.name}-{data_name}"
    raw = {"name": name, "data": data, "student": str(card_path), "losses": [{"name": "ce"}],
           "train": card.train.train.model_dump(mode="json", exclude_unset=True) if card.train else {}}
    _, card_lines = read_yaml(card_path)
    lines = {(k[1],) + k[2:]: v for k, v in card_lines.items() if k[:1] == ("train",) and len(k) > 1}
    sources = _Sources(files=[(card_path, lines)])
    return _finish(raw, card_path, sources, overrides)


def _finish(data: dict[str, Any], path: Path, sources: "_Sources", overrides: list[str] | None) -> LoadedRecipe:
    for text in overrides or []:
        loc = apply_override(data, text)
        sources.overridden[loc] = text
    try:
        recipe = Recipe.model_validate(data)
    except ValidationError as exc:
        raise validation_error(exc, Recipe, sources.locate) from None
    params = [check_loss_params(spec, ("losses", i), sources) for i, spec in enumerate(recipe.losses)]
    _check_data(recipe, sources)
    recipe.student = _resolve(recipe.student, path, sources, ("student",))
    student_card = load_card(recipe.student, file=sources.locate(("student",))[0], field="student")
    if recipe.student_init is not None:
        recipe.student_init = _check_student_init(recipe.student_init, student_card, sources)
    teacher_card = None
    if recipe.teacher is not None:
        recipe.teacher = _resolve(recipe.teacher, path, sources, ("teacher",))
        teacher_card = load_card(recipe.teacher, file=sources.locate(("teacher",))[0], field="teacher")
        _check_class_counts(teacher_card, student_card, recipe)
    _check_losses_have_teacher(recipe, teacher_card is not None, sources)
    return LoadedRecipe(recipe, path, student_card, teacher_card, params, list(overrides or []))


def _read_with_bases(path: Path, sources: _Sources, chain: list[Path]) -> dict[str, Any]:
    resolved = path.resolve()
    if resolved in chain:
        cycle = " -> ".join(p.name for p in chain + [resolved])
        raise DistillError(path, "base", "a recipe that does not extend itself", got=f"<cycle {cycle}>")
    data, lines = read_yaml(path)
    sources.files.append((path, lines))
    base = data.pop("base", None)
    if base is None:
        return data
    if not isinstance(base, str):
        raise DistillError(path, "base", "a path to another recipe", got=base, line=lines.get(("base",)))
    base_path = (path.parent / base) if not Path(base).is_absolute() else Path(base)
    if not base_path.is_file():
        raise DistillError(path, "base", "an existing recipe file", got=base, line=lines.get(("base",)))
    merged = _read_with_bases(base_path, sources, chain + [resolved])
    return _deep_merge(merged, data)


def _deep_merge(base: dict[str, Any], top: dict[str, Any]) -> dict[str, Any]:
    """Mappings merge key by key; lists and scalars in `top` replace those in `base`."""
    out = dict(base)
    for key, value in top.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = _deep_merge(out[key], value)
        else:
            out[key] = value
    return out


def apply_override(data: dict[str, Any], text: str) -> Loc:
    """Apply `a.b.0.c=value` (value parsed as YAML) in place; return the key path."""
    key, sep, raw = text.partition("=")
    if not sep or not key or any(not part for part in key.split(".")):
        raise DistillError(OVERRIDE_SOURCE, text, "an override like train.iterations=100")
    try:
        value = yaml.safe_load(raw) if raw != "" else ""
    except yaml.YAMLError:
        raise DistillError(OVERRIDE_SOURCE, key, "a YAML value after '='", got=raw) from None
    loc: Loc = tuple(int(p) if p.isdigit() else p for p in key.split("."))
    node: Any = data
    for i, part in enumerate(loc[:-1]):
        nxt = loc[i + 1]
        if isinstance(part, int):
            if not isinstance(node, list) or part >= len(node):
                raise DistillError(OVERRIDE_SOURCE, key, f"an existing list index at {format_loc(loc[: i + 1])}")
            node = node[part]
        else:
            if not isinstance(node, dict):
                raise DistillError(OVERRIDE_SOURCE, key, f"a mapping at {format_loc(loc[:i])}")
            node = node.setdefault(part, [] if isinstance(nxt, int) else {})
    last = loc[-1]
    if isinstance(last, int):
        if not isinstance(node, list) or last >= len(node):
            raise DistillError(OVERRIDE_SOURCE, key, "an existing list index")
        node[last] = value
    elif isinstance(node, dict):
        node[last] = value
    else:
        raise DistillError(OVERRIDE_SOURCE, key, f"a mapping at {format_loc(loc[:-1])}")
    return loc


def loss_param_model(loss_cls: type) -> type:
    """A pydantic model of a loss's keyword parameters, built from its __init__ signature."""
    fields: dict[str, Any] = {}
    for name, param in inspect.signature(loss_cls.__init__).parameters.items():
        if name == "self" or param.kind in (param.VAR_KEYWORD, param.VAR_POSITIONAL):
            continue
        annotation = param.annotation if param.annotation is not inspect.Parameter.empty else Any
        default = param.default if param.default is not inspect.Parameter.empty else ...
        fields[name] = (annotation, default)
    return create_model(f"{loss_cls.__name__}Params", __config__={"extra": "forbid", "allow_inf_nan": False}, **fields)


def check_loss_params(spec: LossSpec, loc: Loc, sources: _Sources) -> dict[str, Any]:
    from distill.losses import LOSSES

    file, line = sources.locate(loc + ("name",))
    cls = LOSSES.get(spec.name, file=f"{file}:{line}" if line else file, field=format_loc(loc + ("name",)))
    model = loss_param_model(cls)
    try:
        return model.model_validate(spec.params()).model_dump()
    except ValidationError as exc:
        raise validation_error(exc, model, sources.locate, prefix=loc) from None


def _check_data(recipe: Recipe, sources: _Sources) -> None:
    from distill.data import DATASETS
    from distill.data.build import check_options
    from distill.data.subsets import parse_fraction

    file, line = sources.locate(("data", "name"))
    builder = DATASETS.get(recipe.data.name, file=f"{file}:{line}" if line else file, field="data.name")
    file, line = sources.locate(("data", "options"))
    check_options(builder, dict(recipe.data.options), file=f"{file}:{line}" if line else file)
    low, high = recipe.data.scale_range
    if low > high:
        file, line = sources.locate(("data", "scale_range"))
        raise DistillError(file, "data.scale_range", "[low, high] with low <= high", got=[low, high], line=line)
    if recipe.data.labeled_fraction is not None:
        try:
            parse_fraction(recipe.data.labeled_fraction)
        except DistillError as exc:
            file, line = sources.locate(("data", "labeled_fraction"))
            raise DistillError(file, exc.field, exc.expected, exc.got, line=line) from None


def _resolve(value: str, recipe_path: Path, sources: _Sources, loc: Loc) -> str:
    """Card paths: as given (relative to the working directory), else relative to the recipe's folders."""
    candidate = Path(value)
    if candidate.is_file():
        return str(candidate)
    if not candidate.is_absolute():
        for folder in [recipe_path.parent, *recipe_path.resolve().parents]:
            if (folder / value).is_file():
                return str(folder / value)
    file, line = sources.locate(loc)
    raise DistillError(file, format_loc(loc), "an existing model card", got=value, line=line)


def _check_student_init(value: str, card: ModelCard, sources: _Sources) -> str:
    """An existing distill model file of the student card's architecture (metadata only is read)."""
    from safetensors import safe_open

    file, line = sources.locate(("student_init",))
    path = Path(value)
    if not path.is_file():
        raise DistillError(file, "student_init", "an existing distill model file (.safetensors)", got=value, line=line)
    try:
        with safe_open(str(path), framework="pt") as handle:
            meta = handle.metadata() or {}
        saved = json.loads(meta["card"])
    except Exception:  # corrupt file, foreign safetensors, or a pickle
        raise DistillError(file, "student_init", "a model file written by distill", got=value, line=line) from None
    for key in ("arch", "backbone", "head_channels", "aux_head"):
        if saved.get(key) != getattr(card, key):
            raise DistillError(file, "student_init", f"a model with the student card's {key} {getattr(card, key)!r}",
                               got=f"<{value}: {saved.get(key)!r}>", line=line)
    return str(path)


def _check_class_counts(teacher: ModelCard, student: ModelCard, recipe: Recipe) -> None:
    if teacher.num_classes and student.num_classes and teacher.num_classes != student.num_classes:
        raise DistillError(
            recipe.student,
            "num_classes",
            f"{teacher.num_classes} classes like the teacher ({recipe.teacher})",
            got=student.num_classes,
        )
    if teacher.classes and student.classes and teacher.classes != student.classes:
        raise DistillError(recipe.student, "classes", f"the teacher's class names {teacher.classes}", got=student.classes)


def _check_losses_have_teacher(recipe: Recipe, has_teacher: bool, sources: _Sources) -> None:
    from distill.losses import LOSSES

    for i, spec in enumerate(recipe.losses):
        if LOSSES.get(spec.name).needs_teacher and not has_teacher:
            file, line = sources.locate(("losses", i, "name"))
            raise DistillError(file, f"losses[{i}].name", "a recipe with a teacher card for this loss", got=spec.name, line=line)
