"""The `train_teacher` stage: a teacher whose model file is missing is trained first.

It is trained from its card's `train:` block (data, schedule, losses, batch transforms) as a run
of its own in `<run folder>/teacher-<name>/`, which `--resume` continues, and its model file is
copied to the card's `checkpoint` path, where every later recipe finds it.
"""

from __future__ import annotations

from distill.errors import DistillError
from distill.io import atomic_copy
from distill.recipe import LoadedRecipe, recipe_from_card
from distill.stages.base import STAGES, RunContext, RunOptions, Stage
from distill.stages.setup import teacher_file


def teacher_recipe(loaded: LoadedRecipe, name: str) -> LoadedRecipe:
    """The teacher's training recipe: its card's train: block with the command line's teacher.* overrides."""
    return recipe_from_card(loaded.recipe.teachers[name], overrides=loaded.teacher_overrides.get(name, []))


@STAGES.register("train_teacher")
class TrainTeacher(Stage):
    name = "train_teacher"

    def describe(self, loaded: LoadedRecipe) -> str:
        name = self.spec.teacher
        target = teacher_file(loaded, name)
        if target.is_file():
            return f"train_teacher {name}: {target} exists, nothing to train"
        steps = teacher_recipe(loaded, name).recipe.train.iterations if loaded.teacher_cards[name].train else "?"
        return f"train_teacher {name}: {target} is missing, will be trained first ({steps} iterations, {loaded.recipe.teachers[name]})"

    def check(self, ctx: RunContext) -> None:
        name, loaded = self.spec.teacher, ctx.loaded  # a teacher of the recipe (checked at load)
        target = teacher_file(loaded, name)
        if not target.is_file() and loaded.teacher_cards[name].train is None:
            raise DistillError(loaded.recipe.teachers[name], "checkpoint", "an existing model file, or a train: block to make one",
                               got=str(target))

    def run(self, ctx: RunContext) -> None:
        from distill.stages.pipeline import run_recipe

        name, loaded = self.spec.teacher, ctx.loaded
        target = teacher_file(loaded, name)
        if target.is_file():
            return
        card_path = loaded.recipe.teachers[name]
        training = teacher_recipe(loaded, name)
        ctx.console.print(f"[bold]teacher {name}[/] {target} is missing: training it first from {card_path} "
                          f"({training.recipe.train.iterations} iterations)")
        ctx.prepare()
        options = RunOptions(resume=True, run_dir=ctx.run_dir / f"teacher-{name}")
        summary = run_recipe(teacher_recipe(loaded, name), options, ctx.console)
        from accelerate import PartialState

        if summary.is_main_process:
            atomic_copy(summary.run_dir / "student.safetensors", target)
        PartialState().wait_for_everyone()  # every process loads the teacher next
        ctx.console.print(f"[bold]teacher {name}[/] saved to {target}: val mIoU {summary.metrics['miou']:.2f}")
