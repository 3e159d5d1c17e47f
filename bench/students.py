"""Student cards side by side: params, GFLOPs and batch-1 latency at one size, one run.

The CamVid v2 protocol asks for a default student of at most 30 ms batch-1 at 360x480 on 2
threads in torch eager. Latency is measured on each model's deployable form (BatchNorm folded,
channels-last: distill.models.inference); `--as-trained` also times each card as it trains (NCHW,
separate BatchNorm) in the same rounds, to show what that form gains. Each card is built with random weights (latency does not depend on their
values) and all are timed in the same interleaved rounds (distill.measure.latency), so the ratios
to the first card are measured side by side even on a loaded machine; absolute milliseconds are
only as good as the machine was idle.

    python bench/students.py students/lightplus_lite0.yaml students/lraspp_lite0.yaml --threads 2 --as-trained
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import torch
from torch import nn

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from rich.console import Console
from rich.table import Table

from distill.cards import load_card
from distill.measure.flops import count_gflops, count_params
from distill.measure.latency import measure_latency, paired_ratio
from distill.models import build_model


class AsTrained(nn.Module):
    """The model as training leaves it: no card, so measure_latency times it without folding."""

    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        self.model = model

    def predict(self, images: torch.Tensor) -> torch.Tensor:
        return self.model.predict(images)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("cards", nargs="+", type=Path, help="model cards (YAML); the first is the reference")
    parser.add_argument("--classes", type=int, default=11)
    parser.add_argument("--size", type=int, nargs=2, default=[360, 480], metavar=("H", "W"))
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=20)
    parser.add_argument("--as-trained", action="store_true", help="also time each card as trained (NCHW, BatchNorm separate)")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    size = tuple(args.size)
    models = {str(p): build_model(load_card(p), args.classes, card_file=p, load_pretrained=False).eval() for p in args.cards}
    if args.as_trained:
        models.update({f"{name} (as trained)": AsTrained(model) for name, model in list(models.items())})
    latency, setting = measure_latency(models, size, repeats=args.repeats)
    reference = str(args.cards[0])
    table = Table(title=f"students at {size[0]}x{size[1]}: {setting.describe()}")
    for column in ("card", "params (M)", "GFLOPs", "median ms", "p90 ms", f"time / {Path(reference).stem}"):
        table.add_column(column, justify="left" if column == "card" else "right")
    for name, model in models.items():
        model = getattr(model, "model", model)
        table.add_row(name, f"{count_params(model) / 1e6:.2f}", f"{count_gflops(model, size):.2f}",
                      f"{latency[name].median_ms:.1f}", f"{latency[name].p90_ms:.1f}",
                      f"{paired_ratio(latency[name], latency[reference]):.2f}")
    Console(width=160).print(table)


if __name__ == "__main__":
    main()
