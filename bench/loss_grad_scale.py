"""How hard does each loss term pull on the student, relative to cross-entropy?

A weight copied from a paper is only meaningful under that paper's optimizer and reductions:
under SGD the step is proportional to the gradient, so a term whose gradient is 1000x that of
CE both drowns the labels and blows the step up. This script measures, on the same training
batches, the gradient norm over the student's parameters of every weighted term of each recipe,
and prints its ratio to the CE term's gradient norm, side by side in one run.

    python bench/loss_grad_scale.py recipes/camvid/kd.yaml recipes/camvid/cwd.yaml recipes/camvid/bpkd.yaml \
        --student runs/camvid_student_only/student.safetensors --batches 2

--student starts every recipe's student from the same trained weights (the gradients of a
freshly initialised head say little about the rest of training); without it the card's
ImageNet backbone and a random head are used. Overrides apply to every recipe.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from rich.console import Console  # noqa: E402
from rich.table import Table  # noqa: E402

from distill.engine.evaluate import collate  # noqa: E402
from distill.stages.setup import build_data, build_losses, load_teacher  # noqa: E402
from distill.models import build_model, load_model_file  # noqa: E402
from distill.models.build import load_weights  # noqa: E402
from distill.outputs import PairView  # noqa: E402
from distill.recipe import load_recipe  # noqa: E402


def grad_norm(loss: torch.Tensor, params: list[torch.nn.Parameter]) -> float:
    grads = torch.autograd.grad(loss, params, retain_graph=True, allow_unused=True)
    return float(torch.sqrt(sum((g.float() ** 2).sum() for g in grads if g is not None)))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("recipes", nargs="+", type=Path)
    parser.add_argument("--student", type=Path, help="a distill model file to start every student from")
    parser.add_argument("--batches", type=int, default=2)
    parser.add_argument("--override", action="append", default=[], help="dotted override applied to every recipe")
    args = parser.parse_args()
    console = Console()
    table = Table(title="gradient norm of each weighted term / gradient norm of CE (student parameters)")
    for column in ("recipe", "term", "weight", "loss (weighted)", "grad norm", "ratio to CE"):
        table.add_column(column, justify="left" if column in ("recipe", "term") else "right")
    for recipe_path in args.recipes:
        loaded = load_recipe(recipe_path, args.override)
        recipe = loaded.recipe
        data = build_data(recipe.data, str(loaded.path), recipe.train.seed)
        train_set, classes = data.train, data.classes
        teacher = load_teacher(loaded, "main", classes) if loaded.teacher_card is not None else None
        student = build_model(loaded.student_card, len(classes), classes, card_file=recipe.student,
                              load_pretrained=args.student is None)
        if args.student is not None:
            trained, _ = load_model_file(args.student)
            load_weights(student, trained.state_dict(), args.student)
        student.train()
        losses = build_losses(loaded, student, {"main": teacher} if teacher is not None else {})
        params = [p for p in student.parameters() if p.requires_grad]
        taps = sorted({tap for _, loss, _ in losses for tap in loss.needs if tap != "logits"})
        torch.manual_seed(recipe.train.seed)
        sums: dict[str, list[float]] = {name: [0.0, 0.0] for name, _, _ in losses}
        for b in range(args.batches):
            batch = collate([train_set[(b * recipe.data.batch_size + i) % len(train_set)] for i in range(recipe.data.batch_size)])
            out = student(batch["image"], taps=taps)
            with torch.no_grad():
                t_out = teacher(batch["image"], taps=taps) if teacher is not None else None
            pair = PairView.single(out, t_out, batch["label"])
            for name, loss, weight in losses:
                value = weight * loss(pair)
                sums[name][0] += float(value) / args.batches
                sums[name][1] += grad_norm(value, params) / args.batches
        ce_norm = sums.get("ce", [0.0, float("nan")])[1]
        for name, _, weight in losses:
            value, norm = sums[name]
            table.add_row(recipe.name, name, f"{weight:g}", f"{value:.4g}", f"{norm:.4g}", f"{norm / ce_norm:.3g}")
    console.print(table)


if __name__ == "__main__":
    main()
