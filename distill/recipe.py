"""Recipes: what to train, from what, with which losses, on what budget.

`load_recipe` does every check that needs no compute: schema, `base:` inheritance, command-line
overrides, loss parameters against each loss's signature, card files, data set names, and the
class counts of teacher and student. A typo fails here, before a teacher is trained.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml
from pydantic import Field, ValidationError, model_validator

from distill import recipe_checks as checks
from distill.batch import BATCH_TRANSFORMS, DEFAULT_VIEW, BatchTransform
from distill.cards import ModelCard, load_card
from distill.errors import DistillError
from distill.losses import LOSSES, Loss, make_loss
from distill.outputs import DEFAULT_TEACHER
from distill.recipe_checks import check_params
from distill.specs import (DataSpec, LossSpec, PruneSpec, QuantizeSpec, StageSpec, Strict, TeacherCacheSpec, TrainSpec,
                           TransformSpec)
from distill.yamlfile import Loc, format_loc, lookup_line, read_yaml, validation_error

OVERRIDE_SOURCE = "command line"


class Recipe(Strict):
    name: str
    description: str = ""
    data: DataSpec = Field(default_factory=DataSpec)
    teachers: dict[str, str] = Field(default_factory=dict)  # name -> teacher card path; `teacher:` is {main: ...}
    student: str  # path of a student card
    student_init: str | None = None  # a distill model file (.safetensors) the student starts from
    prune: PruneSpec | None = None  # channel pruning of the student before training
    batch_transforms: list[TransformSpec] = Field(default_factory=list)  # registered; they add views
    losses: list[LossSpec] = Field(min_length=1)
    train: TrainSpec
    quantize: QuantizeSpec | None = None  # int8 after training: PTQ, and QAT with quantize.qat.iterations
    stages: list[StageSpec] | None = None  # None: train missing teachers, prune (with prune:), distill, quantize (with quantize:)
    teacher_cache: TeacherCacheSpec | None = None  # serve teachers from a disk cache (distill.engine.cache); None: off
    output_dir: str = "runs"

    @model_validator(mode="before")
    @classmethod
    def _teacher_shorthand(cls, data: Any) -> Any:
        """`teacher: card.yaml` is `teachers: {main: card.yaml}`."""
        if isinstance(data, dict) and "teacher" in data:
            data = dict(data)
            teacher = data.pop("teacher")
            if teacher is not None:
                teachers = dict(data.get("teachers") or {})
                if DEFAULT_TEACHER in teachers:
                    raise ValueError("give the main teacher once: teacher: or teachers.main")
                data["teachers"] = {DEFAULT_TEACHER: teacher, **teachers}
        return data

    @property
    def quantize_only(self) -> bool:
        """`stages: [{name: quantize}]`: the recipe quantizes student_init and trains nothing of its own."""
        return self.stages is not None and [stage.name for stage in self.stages] == ["quantize"]

    @property
    def teacher(self) -> str | None:
        return self.teachers.get(DEFAULT_TEACHER)

    def fingerprint(self) -> str:
        """A short hash of everything that determines the result."""
        text = json.dumps(self.model_dump(mode="json"), sort_keys=True)
        return hashlib.sha256(text.encode()).hexdigest()[:16]


@dataclass
class LoadedRecipe:
    recipe: Recipe
    path: Path
    student_card: ModelCard
    teacher_cards: dict[str, ModelCard] = field(default_factory=dict)
    loss_params: list[dict[str, Any]] = field(default_factory=list)  # validated, defaults filled
    overrides: list[str] = field(default_factory=list)
    teacher_overrides: dict[str, list[str]] = field(default_factory=dict)  # teacher name -> its training overrides
    transform_params: list[dict[str, Any]] = field(default_factory=list)

    @property
    def teacher_card(self) -> ModelCard | None:
        return self.teacher_cards.get(DEFAULT_TEACHER)

    def losses(self) -> list[Loss]:
        """The recipe's losses, built (cheap: adapters are made later, in setup)."""
        return [make_loss(spec, params) for spec, params in zip(self.recipe.losses, self.loss_params)]

    def transforms(self) -> list[BatchTransform]:
        return [BATCH_TRANSFORMS.get(spec.name)(**params) for spec, params in zip(self.recipe.batch_transforms, self.transform_params)]

    def views(self) -> set[str]:
        made = (name for transform in self.transforms() for name in transform.produces)
        return {DEFAULT_VIEW, *self.recipe.data.unlabeled_views, *made}

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
    own, for_teachers = split_teacher_overrides(overrides or [])
    loaded = _finish(data, path, sources, own)
    for name, texts in for_teachers.items():
        if name not in loaded.recipe.teachers:
            raise DistillError(OVERRIDE_SOURCE, texts[0].partition("=")[0], f"a teacher of the recipe ({', '.join(loaded.recipe.teachers) or 'none'})",
                               got=name)
        recipe_from_card(loaded.recipe.teachers[name], overrides=texts)  # checked now, not after the run starts
    loaded.teacher_overrides = for_teachers
    return loaded


def split_teacher_overrides(overrides: list[str]) -> tuple[list[str], dict[str, list[str]]]:
    """`teacher.train.iterations=50` (or `teachers.wide.train.iterations=50`) goes to that teacher's
    training recipe (its card's train: block) as `train.iterations=50`; the rest is the recipe's."""
    own: list[str] = []
    teachers: dict[str, list[str]] = {}
    for text in overrides:
        key = text.partition("=")[0]
        if key.startswith("teacher.") and key.count(".") >= 2:
            teachers.setdefault(DEFAULT_TEACHER, []).append(text.removeprefix("teacher."))
        elif key.startswith("teachers.") and key.count(".") >= 3:
            name, _, rest = text.removeprefix("teachers.").partition(".")
            teachers.setdefault(name, []).append(rest)
        else:
            own.append(text)
    return own, teachers


def recipe_from_card(
    card_path: str | Path,
    data_name: str | None = None,
    data_root: str | None = None,
    overrides: list[str] | None = None,
) -> LoadedRecipe:
    """A recipe from a card's `train:` block, with its losses (cross-entropy unless it names others):
    `distill train`, and the `train_teacher` stage of a missing teacher."""
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
    raw = {"name": name, "data": data, "student": str(card_path),
           "losses": [spec.model_dump(mode="json", exclude_unset=True) for spec in card.train.losses] if card.train else [{"name": "ce"}],
           "batch_transforms": [t.model_dump(mode="json") for t in card.train.batch_transforms] if card.train else [],
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
    loaded = LoadedRecipe(recipe, path, _student_card(recipe, path, sources), overrides=list(overrides or []))
    loaded.loss_params = [check_params(LOSSES, spec, ("losses", i), sources) for i, spec in enumerate(recipe.losses)]
    loaded.transform_params = [check_params(BATCH_TRANSFORMS, spec, ("batch_transforms", i), sources)
                               for i, spec in enumerate(recipe.batch_transforms)]
    checks.check_data(recipe, sources)
    for name, card_path in list(recipe.teachers.items()):
        recipe.teachers[name] = checks.resolve_card_path(card_path, path, sources, ("teachers", name))
        loaded.teacher_cards[name] = load_card(recipe.teachers[name], file=sources.locate(("teachers", name))[0],
                                               field=f"teachers.{name}")
        checks.check_class_counts(name, loaded.teacher_cards[name], loaded.student_card, recipe)
    if recipe.student_init is not None:  # after the teachers: one of them may be trained into it first
        made_first = checks.cards_trained_first(recipe, loaded.teacher_cards)
        recipe.student_init = checks.check_student_init(recipe.student_init, loaded.student_card, sources, made_first)
    checks.check_student_input(recipe, loaded.student_card)
    checks.check_transform_sources(recipe, loaded.transforms(), sources)
    checks.check_reads(recipe, loaded.losses(), loaded.views(), sources)
    checks.check_stages(recipe, sources)
    checks.check_logit_teachers(recipe, loaded.teacher_cards, loaded.losses(), sources)
    checks.check_teacher_cache(recipe, loaded.teacher_cards, loaded.losses(), loaded.transforms(), sources)
    return loaded


def _student_card(recipe: Recipe, path: Path, sources: "_Sources") -> ModelCard:
    recipe.student = checks.resolve_card_path(recipe.student, path, sources, ("student",))
    return load_card(recipe.student, file=sources.locate(("student",))[0], field="student")


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
