"""Data loading as a fraction of the training step: is the loader what a run waits for?

Runs the recipe's own pipeline (distill.stages.setup: its data set, transform, loader with its
`workers`, student and losses, the engine's Trainer.step) for a few steps and splits each step's
wall time into the wait for the loader's next batch and the step itself (forward, losses,
backward, optimizer). Both are measured in the same loop, so machine load affects them alike.
A third figure is the loader alone, iterated as fast as it goes (no training to overlap with):
with workers > 0 the loader prepares batches while the step runs, so the wait in the loop is
smaller than the loader's own time; with workers 0 the two are the same work.

    python bench/data.py [RECIPE] [--steps 20] [--workers N]
"""

from __future__ import annotations

import argparse
import statistics
import time
from pathlib import Path

import torch
from accelerate import Accelerator

from distill.engine.loop import Distillation, Trainer
from distill.engine.schedule import build_scheduler
from distill.recipe import load_recipe
from distill.stages.setup import build_data, build_losses, build_student, make_loader, make_optimizer

ROOT = Path(__file__).resolve().parents[1]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("recipe", nargs="?", default=str(ROOT / "recipes/camvid/v2/student_only.yaml"),
                        help="a recipe without teachers (default: the CamVid v2 student-only row)")
    parser.add_argument("--steps", type=int, default=20, help="timed steps (after 2 warm-up steps)")
    parser.add_argument("--workers", type=int, default=None, help="loader workers (default: the recipe's data.workers)")
    args = parser.parse_args()

    loaded = load_recipe(args.recipe)
    recipe = loaded.recipe
    if recipe.teachers:
        raise SystemExit(f"{args.recipe}: bench/data.py times a recipe without teachers (the step would include them)")
    if args.workers is not None:
        recipe.data.workers = args.workers
    data = build_data(recipe.data, str(loaded.path), recipe.train.seed)
    torch.manual_seed(0)
    student = build_student(loaded, data.classes)
    model = Distillation(student, build_losses(loaded, student, {}))
    optimizer = make_optimizer(model, recipe.train)
    trainer = Trainer(Accelerator(cpu=True), model, {}, None, optimizer, build_scheduler(optimizer, recipe.train), recipe.train)

    waits, steps = [], []
    batches = iter(make_loader(data.train, recipe.data, recipe.train.seed))
    for i in range(args.steps + 2):
        start = time.perf_counter()
        sample = next(batches)
        loaded_at = time.perf_counter()
        trainer.step(sample, i)
        if i >= 2:
            waits.append(loaded_at - start)
            steps.append(time.perf_counter() - loaded_at)

    alone = []
    batches = iter(make_loader(data.train, recipe.data, recipe.train.seed + 1))
    next(batches)  # worker start-up is not per batch
    for _ in range(args.steps):
        start = time.perf_counter()
        next(batches)
        alone.append(time.perf_counter() - start)

    wait, step, own = sum(waits), sum(steps), statistics.median(alone)
    d = recipe.data
    print(f"{recipe.name}: {d.name}, batch {d.batch_size}, crop {d.crop_size[0]}x{d.crop_size[1]}, workers {d.workers}, "
          f"{torch.get_num_threads()} threads; {args.steps} steps after 2 warm-up")
    print(f"  wait for the next batch   {wait / args.steps * 1000:8.1f} ms/step (median {statistics.median(waits) * 1000:.1f})")
    print(f"  train step                {step / args.steps * 1000:8.1f} ms/step (median {statistics.median(steps) * 1000:.1f})")
    print(f"  loader alone, no training {own * 1000:8.1f} ms/batch (median)")
    print(f"data-loading fraction of the step = wait / (wait + step) = {wait / (wait + step):.3f}")
    print(f"loader alone / train step = {own / statistics.median(steps):.3f}")


if __name__ == "__main__":
    main()
