"""From a loaded recipe to a finished run folder: a short loop over the recipe's stages.

runs/<name>/ receives recipe.resolved.yaml (when the first stage writes), then each stage's files (teacher-<name>/ for a
teacher trained first, pruned_student.safetensors, checkpoints/, log.jsonl) and finally
student.safetensors and metrics.json. Everything the user's files can break is checked before
the run folder is made.
"""

from __future__ import annotations

from pathlib import Path

from rich.console import Console

from distill.recipe import LoadedRecipe
from distill.stages.base import RunContext, RunOptions, RunSummary, plan_stages
from distill.processes import is_main_process
from distill.stages.rundir import check_resume, check_run_dir
from distill.stages.setup import build_data


def run_recipe(loaded: LoadedRecipe, options: RunOptions, console: Console | None = None) -> RunSummary:
    # every process of a --processes N run gets here; process 0 speaks for them
    console = console or Console(stderr=True, quiet=not is_main_process())
    recipe = loaded.recipe
    run_dir = options.run_dir or Path(recipe.output_dir) / recipe.name
    finished = check_resume(run_dir, loaded, options)
    if finished is not None:
        console.print(f"{run_dir} is already finished with this recipe: nothing to train "
                      f"(val mIoU {finished.metrics.get('miou', float('nan')):.2f}; --overwrite trains it again)")
        return finished
    check_run_dir(run_dir, options)
    # Building data draws on no global random state, and happens once for every stage.
    ctx = RunContext(loaded, run_dir, options, console, build_data(recipe.data, str(loaded.path), recipe.train.seed))
    stages = plan_stages(loaded)
    for stage in stages:
        stage.check(ctx)
    for stage in stages:  # each makes the run folder (ctx.prepare) right before its first write
        stage.run(ctx)
    assert ctx.summary is not None  # the last stage distils (checked at load)
    return ctx.summary
