"""Stages: a recipe is a list of registered stages, run in order by `run_recipe`.

`train_teacher` trains a teacher whose model file is missing, from its card's `train:` block (its
own data, schedule, losses and batch transforms); `prune` prunes the student's channels;
`distill` trains the student with the recipe's losses and writes the run's model file; `quantize`
writes int8 ONNX files of it (PTQ, and QAT under the recipe's losses). A recipe without `stages:`
gets the usual plan: a `train_teacher` stage for each teacher a loss reads, `prune` when it has a
`prune:` block, then `distill`, then `quantize` when it has a `quantize:` block. Each stage checks what it can before the
run folder exists (`check`), writes its own files under the run folder, and on `--resume`
picks up where its files say it stopped.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

from pydantic import BaseModel
from rich.console import Console

from distill.processes import is_main_process
from distill.registry import Registry
from distill.specs import DistillStageSpec, PruneStageSpec, QuantizeStageSpec, TrainTeacherStageSpec

if TYPE_CHECKING:
    from distill.models import Segmenter
    from distill.recipe import LoadedRecipe
    from distill.stages.setup import TrainData


@dataclass
class RunOptions:
    resume: bool = False
    overwrite: bool = False
    run_dir: Path | None = None  # default: <recipe.output_dir>/<recipe.name>
    accept_changes: bool = False  # with resume: continue although the recipe changed (recorded in changes.jsonl)
    changes: dict[str, list[Any]] = field(default_factory=dict)  # what changed, found by check_resume


@dataclass
class RunSummary:
    run_dir: Path
    metrics: dict[str, Any]
    wall_time_s: float
    params: int
    processes: int = 1
    is_main_process: bool = True
    already_finished: bool = False


@dataclass
class RunContext:
    """What the stages of one run share: the recipe, the run folder, the data (built once), and
    what earlier stages handed on (a pruned student)."""

    loaded: LoadedRecipe
    run_dir: Path
    options: RunOptions
    console: Console
    data: TrainData
    student: Segmenter | None = None
    prune_report: dict[str, Any] | None = None
    summary: RunSummary | None = None
    _teachers: dict[str, Segmenter] = field(default_factory=dict)
    _prepared: bool = False

    def prepare(self) -> None:
        """Make the run folder and record the resolved recipe, once, right before a stage's first
        write: whatever the user's files can break (a corrupt checkpoint, a missing tap) fails
        before the folder exists."""
        if self._prepared:
            return
        from distill.io import atomic_write_text
        from distill.stages.rundir import RESOLVED, prepare_run_dir, record_changes

        if is_main_process():  # the main process makes it; the others wait for it (distill stage)
            prepare_run_dir(self.run_dir, self.options)
            atomic_write_text(self.run_dir / RESOLVED, self.loaded.to_yaml())
            if self.options.changes:
                record_changes(self.run_dir, self.options.changes)
        self._prepared = True

    def teachers(self) -> dict[str, Segmenter]:
        """The teachers some loss reads, loaded once (a teacher no loss reads is never loaded)."""
        from distill.stages.setup import load_teacher, teachers_read

        for name in sorted(teachers_read(self.loaded)):
            if name not in self._teachers:
                self._teachers[name] = load_teacher(self.loaded, name, self.data.classes)
        return self._teachers


class Stage:
    """A registered stage; its typed spec (distill.specs.StageSpec) is the recipe's `stages:` entry."""

    name: ClassVar[str] = ""

    def __init__(self, spec: BaseModel) -> None:
        self.spec = spec

    def describe(self, loaded: LoadedRecipe) -> str:
        return self.name

    def check(self, ctx: RunContext) -> None:
        """Pre-flight: everything that can fail without compute, before the run folder exists."""

    def run(self, ctx: RunContext) -> None:  # pragma: no cover - abstract
        raise NotImplementedError


STAGES: Registry[type[Stage]] = Registry("stage")


def plan_stages(loaded: LoadedRecipe) -> list[Stage]:
    from distill.stages.setup import teachers_read

    recipe = loaded.recipe
    if recipe.stages is not None:
        return [STAGES.get(spec.name)(spec) for spec in recipe.stages]
    plan: list[Stage] = [STAGES.get("train_teacher")(TrainTeacherStageSpec(name="train_teacher", teacher=name))
                         for name in sorted(teachers_read(loaded))]
    if recipe.prune is not None:
        plan.append(STAGES.get("prune")(PruneStageSpec(name="prune")))
    plan.append(STAGES.get("distill")(DistillStageSpec(name="distill")))
    if recipe.quantize is not None:
        plan.append(STAGES.get("quantize")(QuantizeStageSpec(name="quantize")))
    return plan
