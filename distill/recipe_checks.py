"""The checks `load_recipe` runs on a validated recipe, before anything is built or trained.

Each names the file (and line) and the field: loss, transform and stage parameters against their
signatures, data set names and options, card paths, class counts of teachers and student, that
every loss's teacher and view exist, that the student of a distillation reads only images (and is
no teacher-only card), that an ensemble or onnx teacher is read for its logits only, and that a
teacher-output cache can serve every read of the teachers it caches.
"""

from __future__ import annotations

import inspect
import json
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel, ValidationError, create_model

from distill.cards import BaseCard
from distill.errors import DistillError
from distill.yamlfile import Loc, format_loc, validation_error

if TYPE_CHECKING:
    from distill.recipe import Recipe, _Sources


def param_model(cls: type) -> type[BaseModel]:
    """A pydantic model of a component's keyword parameters, built from its __init__ signature."""
    fields: dict[str, Any] = {}
    for name, param in inspect.signature(cls.__init__).parameters.items():
        if name == "self" or param.kind in (param.VAR_KEYWORD, param.VAR_POSITIONAL):
            continue
        annotation = param.annotation if param.annotation is not inspect.Parameter.empty else Any
        default = param.default if param.default is not inspect.Parameter.empty else ...
        fields[name] = (annotation, default)
    return create_model(f"{cls.__name__}Params", __config__={"extra": "forbid", "allow_inf_nan": False}, **fields)


def where(sources: _Sources, loc: Loc) -> str:
    file, line = sources.locate(loc)
    return f"{file}:{line}" if line else file


def check_params(registry: Any, spec: Any, loc: Loc, sources: _Sources, model: type[BaseModel] | None = None) -> dict[str, Any]:
    """A named component's own keys, validated (defaults filled) against its parameter model."""
    cls = registry.get(spec.name, file=where(sources, loc + ("name",)), field=format_loc(loc + ("name",)))
    model = model or param_model(cls)
    try:
        return model.model_validate(spec.params()).model_dump()
    except ValidationError as exc:
        raise validation_error(exc, model, sources.locate, prefix=loc) from None


def check_data(recipe: Recipe, sources: _Sources) -> None:
    from distill.data import DATASETS
    from distill.data.build import check_options
    from distill.data.subsets import parse_fraction

    builder = DATASETS.get(recipe.data.name, file=where(sources, ("data", "name")), field="data.name")
    check_options(builder, dict(recipe.data.options), file=where(sources, ("data", "options")))
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
    check_partition(recipe, sources)


def check_partition(recipe: Recipe, sources: _Sources) -> None:
    """A saved labeled list exists (resolved like a card path), is not given with a fraction, and
    unlabeled views have a partition to draw from, under names of their own."""
    data = recipe.data
    if data.labeled_list is not None:
        if data.labeled_fraction is not None:
            file, line = sources.locate(("data", "labeled_list"))
            raise DistillError(file, "data.labeled_list", "either labeled_list or labeled_fraction, not both",
                               got=data.labeled_list, line=line)
        data.labeled_list = resolve_file(data.labeled_list, sources.files[0][0], sources, ("data", "labeled_list"),
                                         "an existing partition list (one labeled file stem per line)")
    views = data.unlabeled_views
    if views and data.labeled_list is None and data.labeled_fraction is None:
        file, line = sources.locate(("data", "unlabeled_views"))
        raise DistillError(file, "data.unlabeled_views", "a partition to draw them from (data.labeled_list or "
                           "data.labeled_fraction)", got=views, line=line)
    for name in views:
        if name == "labeled" or views.count(name) > 1:
            file, line = sources.locate(("data", "unlabeled_views"))
            raise DistillError(file, "data.unlabeled_views", "distinct view names other than labeled", got=views, line=line)


def check_transform_sources(recipe: Recipe, transforms: list[Any], sources: _Sources) -> None:
    """Each batch transform's source views (`consumes`) exist by the time it runs."""
    views = {"labeled", *recipe.data.unlabeled_views}
    for i, transform in enumerate(transforms):
        for name in getattr(transform, "consumes", ()):
            if name not in views:
                file, line = sources.locate(("batch_transforms", i))
                raise DistillError(file, f"batch_transforms[{i}]", f"source views made before it ({', '.join(sorted(views))})",
                                   got=name, line=line, hint="data.unlabeled_views: makes the unlabeled ones")
        views.update(transform.produces)


def resolve_card_path(value: str, recipe_path: Path, sources: _Sources, loc: Loc) -> str:
    """Card paths: as given (relative to the working directory), else relative to the recipe's folders."""
    return resolve_file(value, recipe_path, sources, loc, "an existing model card")


def resolve_file(value: str, recipe_path: Path, sources: _Sources, loc: Loc, expected: str) -> str:
    candidate = Path(value)
    if candidate.is_file():
        return str(candidate)
    if not candidate.is_absolute():
        for folder in [recipe_path.parent, *recipe_path.resolve().parents]:
            if (folder / value).is_file():
                return str(folder / value)
    file, line = sources.locate(loc)
    raise DistillError(file, format_loc(loc), expected, got=value, line=line)


def check_student_init(value: str, card: BaseCard, sources: _Sources, made_first: dict[Path, BaseCard] | None = None) -> str:
    """An existing distill model file of the student card's architecture (metadata only is read),
    or the checkpoint of a card that a train_teacher stage of this recipe trains first
    (`made_first`: DToP's stage-1 base model, then pruned in the same run): checked against that card."""
    from safetensors import safe_open

    file, line = sources.locate(("student_init",))
    path = Path(value)
    maker = (made_first or {}).get(path.resolve())
    if not path.is_file() and maker is not None:
        saved = maker.model_dump(mode="json")
    elif not path.is_file():
        raise DistillError(file, "student_init", "an existing distill model file (.safetensors)", got=value, line=line)
    else:
        try:
            with safe_open(str(path), framework="pt") as handle:
                meta = handle.metadata() or {}
            saved = json.loads(meta["card"])
        except Exception:  # corrupt file, foreign safetensors, or a pickle
            raise DistillError(file, "student_init", "a model file written by distill", got=value, line=line) from None
    for key in ("family", *card.architecture_keys):
        if saved.get(key, "cnn" if key == "family" else None) != getattr(card, key):
            raise DistillError(file, "student_init", f"a model with the student card's {key} {getattr(card, key)!r}",
                               got=f"<{value}: {saved.get(key)!r}>", line=line)
    return str(path)


def cards_trained_first(recipe: Recipe, cards: dict[str, BaseCard]) -> dict[Path, BaseCard]:
    """{checkpoint: card} of the teachers an explicit train_teacher stage trains from a train: block."""
    named = {stage.teacher for stage in recipe.stages or () if stage.name == "train_teacher"}
    return {Path(cards[n].checkpoint).resolve(): cards[n] for n in named
            if n in cards and cards[n].checkpoint and cards[n].train is not None}


def check_class_counts(name: str, teacher: BaseCard, student: BaseCard, recipe: Recipe) -> None:
    path = recipe.teachers[name]
    who = "the teacher" if name == "main" else f"the teacher {name}"
    if teacher.num_classes and student.num_classes and teacher.num_classes != student.num_classes:
        raise DistillError(recipe.student, "num_classes", f"{teacher.num_classes} classes like {who} ({path})",
                           got=student.num_classes)
    if teacher.classes and student.classes and teacher.classes != student.classes:
        raise DistillError(recipe.student, "classes", f"{who}'s class names {teacher.classes}", got=student.classes)


def check_student_input(recipe: Recipe, student: BaseCard) -> None:
    """The student of a distillation never sees labels: only a teacher (or a model trained
    alone, as a teacher is) may read a label channel."""
    from distill.models.cards import LogitTeacherCard
    from distill.models.inputs import INPUTS

    if isinstance(student, LogitTeacherCard):
        raise DistillError(recipe.student, "family", "a family that trains (an ensemble or onnx card is a frozen teacher)",
                           got=student.family)
    if recipe.teachers and INPUTS.get(student.input.name).reads_label:
        raise DistillError(recipe.student, "input.name", "image for a student (labels are a teacher's privileged input)",
                           got=student.input.name)


def check_reads(recipe: Recipe, losses: list[Any], views: set[str], sources: _Sources) -> None:
    """Every teacher a loss reads is named in `teachers:`, and every view it reads is made."""
    for i, loss in enumerate(losses):
        for read in loss.reads():
            if read.model != "student" and not recipe.teachers:
                file, line = sources.locate(("losses", i, "name"))
                raise DistillError(file, f"losses[{i}].name", "a recipe with a teacher card for this loss",
                                   got=recipe.losses[i].name, line=line)
            if read.model != "student" and read.model not in recipe.teachers:
                known = ", ".join(recipe.teachers) or "none"
                file, line = sources.locate(("losses", i, "teacher" if read.model == loss.teacher_name else "name"))
                raise DistillError(file, f"losses[{i}]", f"a teacher named in teachers: (named: {known})",
                                   got=read.model, line=line)
            if read.view not in views:
                file, line = sources.locate(("losses", i, "view"))
                raise DistillError(file, f"losses[{i}].view", f"a view of the batch ({', '.join(sorted(views))})",
                                   got=read.view, line=line, hint="batch_transforms: make further views")


def check_stages(recipe: Recipe, sources: _Sources) -> None:
    """An explicit `stages:` list ends with its one distill stage, or with a quantize stage after it
    (or alone, quantizing student_init); prune and quantize have their blocks; each train_teacher
    stage names a teacher of the recipe."""
    if recipe.stages is None:
        return
    names = [stage.name for stage in recipe.stages]
    file, line = sources.locate(("stages",))
    body = names[:-1] if names and names[-1] == "quantize" else names
    quantize_alone = recipe.quantize_only and recipe.student_init is not None
    if not quantize_alone and (not body or body[-1] != "distill" or body.count("distill") != 1 or "quantize" in body):
        raise DistillError(file, "stages", "a list that ends with its one distill stage, optionally followed by quantize "
                           "(or quantize alone, with student_init)", got=names, line=line)
    if "prune" in names and recipe.prune is None:
        raise DistillError(file, "stages", "a prune: block for the prune stage", got=names, line=line)
    if "quantize" in names and recipe.quantize is None:
        raise DistillError(file, "stages", "a quantize: block for the quantize stage", got=names, line=line)
    for i, stage in enumerate(recipe.stages):
        if stage.name == "train_teacher" and stage.teacher not in recipe.teachers:
            file, line = sources.locate(("stages", i, "teacher"))
            raise DistillError(file, f"stages[{i}].teacher", f"a teacher named in teachers: ({', '.join(recipe.teachers) or 'none'})",
                               got=stage.teacher, line=line)


def servable_views(transforms: list[Any]) -> set[str]:
    """Views a teacher-output cache can serve: the loader's `labeled` and mirror images of one."""
    from distill.batch import HorizontalFlip

    views = {"labeled"}
    for transform in transforms:
        if isinstance(transform, HorizontalFlip) and transform.source in views:
            views.add(transform.name)
    return views


def check_teacher_cache(recipe: Recipe, cards: dict[str, BaseCard], losses: list[Any], transforms: list[Any],
                        sources: _Sources) -> None:
    """Each cached teacher exists, reads images only and is read by some loss, only on views the
    cache can serve; jittered images need photometric: approximate; top-k keeps fewer than C classes."""
    from distill.models.inputs import INPUTS

    spec = recipe.teacher_cache
    if spec is None:
        return
    read = {r.model for loss in losses for r in loss.reads()}
    for i, name in enumerate(spec.teachers):
        file, line = sources.locate(("teacher_cache", "teachers", i))
        if name not in recipe.teachers or name not in read:
            known = ", ".join(sorted(read & set(recipe.teachers))) or "none"
            raise DistillError(file, f"teacher_cache.teachers[{i}]", f"a teacher some loss reads ({known})", got=name, line=line)
        if INPUTS.get(cards[name].input.name).reads_label:
            raise DistillError(file, f"teacher_cache.teachers[{i}]", "a teacher that reads images only (the cache holds "
                               "outputs on un-augmented images, without labels)", got=f"<{name}: input {cards[name].input.name}>",
                               line=line)
        classes = cards[name].num_classes
        if spec.topk is not None and classes is not None and spec.topk >= classes:
            file, line = sources.locate(("teacher_cache", "topk"))
            raise DistillError(file, "teacher_cache.topk", f"fewer than the {classes} classes (null keeps all)", got=spec.topk, line=line)
    check_cached_views(recipe, losses, servable_views(transforms), sources)


def check_cached_views(recipe: Recipe, losses: list[Any], views: set[str], sources: _Sources) -> None:
    spec = recipe.teacher_cache
    for i, loss in enumerate(losses):
        for r in loss.reads():
            if r.model in spec.teachers and r.view not in views:
                file, line = sources.locate(("losses", i, "view"))
                raise DistillError(file, f"losses[{i}]", f"a view the teacher cache can serve for teacher {r.model} "
                                   f"({', '.join(sorted(views))}; an hflip of labeled)", got=r.view, line=line,
                                   hint="or leave this teacher out of teacher_cache.teachers")
    if recipe.data.photometric and spec.photometric == "refuse":
        file, line = sources.locate(("teacher_cache", "photometric"))
        raise DistillError(file, "teacher_cache.photometric", "approximate with data.photometric true (the cache holds "
                           "outputs on un-jittered images), or data.photometric: false", got="refuse", line=line)


def check_logit_teachers(recipe: Recipe, cards: dict[str, BaseCard], losses: list[Any], sources: _Sources) -> None:
    """A teacher-only card (ensemble, onnx) has logits and nothing else: a loss reading one of its
    feature taps fails here, not at the first step."""
    from distill.models.cards import LogitTeacherCard

    for i, loss in enumerate(losses):
        for read in loss.reads():
            card = cards.get(read.model)
            if isinstance(card, LogitTeacherCard) and read.tap != "logits":
                file, line = sources.locate(("losses", i, "name"))
                raise DistillError(file, f"losses[{i}]", f"a loss reading only logits of teacher {read.model} ({card.family} "
                                   f"card {recipe.teachers[read.model]}: feature losses need a card teacher)",
                                   got=f"<tap {read.tap}>", line=line)
