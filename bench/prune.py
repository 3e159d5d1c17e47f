"""What channel pruning buys: GFLOPs, params and measured batch-1 latency at several ratios.

Every pruned copy is timed in the same interleaved rounds as the unpruned model (one run of each
model per round, the order rotating), so the latency ratios are measured side by side in one run
and machine load drifts over all of them alike.

    python bench/prune.py runs/camvid_student_only/student.safetensors --ratios 0.25 0.5 0.75 --size 360 480
    python bench/prune.py --card students/lraspp_lite0.yaml --classes 11      # untrained weights, same shapes
"""

from __future__ import annotations

import argparse
import copy
import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from rich.console import Console
from rich.table import Table

from distill.cards import load_card
from distill.models import build_model, load_model_file
from distill.prune import prune_model
from distill.measure.flops import count_gflops, count_params
from distill.measure.latency import measure_latency, paired_ratio
from distill.specs import PruneSpec


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("model", nargs="?", type=Path, help="a distill model file")
    parser.add_argument("--card", type=Path, help="instead of a model file: a card, built with random weights")
    parser.add_argument("--classes", type=int, default=11, help="class count with --card")
    parser.add_argument("--ratios", type=float, nargs="+", default=[0.25, 0.5, 0.75])
    parser.add_argument("--importance", default="group_norm", choices=["magnitude", "group_norm"])
    parser.add_argument("--size", type=int, nargs=2, default=[360, 480], metavar=("H", "W"))
    parser.add_argument("--repeats", type=int, default=20)
    args = parser.parse_args()
    if (args.model is None) == (args.card is None):
        parser.error("give a model file or --card")
    if args.model is not None:
        base, _ = load_model_file(args.model)
        name = str(args.model)
    else:
        card = load_card(args.card).model_copy(update={"pretrained": "none"})
        base = build_model(card, args.classes, [f"c{i}" for i in range(args.classes)], load_pretrained=False)
        name = f"{args.card} (random weights)"
    base.eval()
    size = tuple(args.size)
    models = {"unpruned": base}
    for ratio in args.ratios:
        pruned = copy.deepcopy(base)
        prune_model(pruned, PruneSpec(ratio=ratio, importance=args.importance), size)
        models[f"pruned {ratio:g}"] = pruned.eval()
    times, setting = measure_latency(models, size, repeats=args.repeats)
    table = Table(title=f"{name}: channel pruning ({args.importance})", caption=setting.describe())
    for column in ("model", "params", "ratio", "GFLOPs", "ratio", "ms", "latency ratio", "speed-up"):
        table.add_column(column, justify="left" if column == "model" else "right", no_wrap=True)
    p0, g0 = count_params(base), count_gflops(base, size)
    for label, model in models.items():
        p, g = count_params(model), count_gflops(model, size)
        ratio = paired_ratio(times[label], times["unpruned"])
        table.add_row(label, f"{p / 1e6:.2f} M", f"{p / p0:.3f}", f"{g:.2f}", f"{g / g0:.3f}",
                      f"{times[label].median_ms:.1f}", f"{ratio:.3f}", f"{1 / ratio:.2f}x")
    Console().print(table)


if __name__ == "__main__":
    torch.set_grad_enabled(False)
    main()
