"""What each distillation loss costs per training step, side by side: forward + backward.

A loss that costs as much as a model forward slows every row that uses it (BPKD's edge masks
once took 1.2 s of a 5 s CamVid step on one thread). Each loss runs on the tensors of one
CamVid v2 step (batch 8, 240x320 crops, 11 classes; student and teacher logits and the 128-channel
`head` feature at stride 4, as lightplus_lite0 and the Lite2 DeepLabV3+ give them), with random
values; all are timed in interleaved rounds so that machine load affects them alike, and each is
printed as its median time and its ratio to cross-entropy's.

    python bench/loss_cost.py [--threads 1] [--rounds 10] [--losses ce kd cwd bpkd.edge ...]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from distill.batch import DEFAULT_VIEW, Batch, View
from distill.losses import LOSSES
from distill.outputs import DEFAULT_TEACHER, STUDENT, PairView, SegOutput

V2_LOSSES = ["ce", "kd", "cwd", "bpkd.edge", "bpkd.body", "skd", "ifvd"]


def step_tensors(batch: int, size: tuple[int, int], classes: int, channels: int, stride: int, seed: int = 0):
    gen = torch.Generator().manual_seed(seed)
    h, w = size[0] // stride, size[1] // stride
    student = SegOutput(torch.randn(batch, classes, h, w, generator=gen).requires_grad_(),
                        {"head": torch.randn(batch, channels, h, w, generator=gen).requires_grad_()})
    teacher = SegOutput(torch.randn(batch, classes, h, w, generator=gen),
                        {"head": torch.randn(batch, channels, h, w, generator=gen)})
    # labels in blobs (8x8 cells of one class), not per-pixel noise: edges as sparse as a real scene's
    cells = torch.randint(0, classes, (batch, size[0] // 8 + 1, size[1] // 8 + 1), generator=gen)
    labels = cells.repeat_interleave(8, 1).repeat_interleave(8, 2)[:, : size[0], : size[1]].contiguous()
    view = View(torch.rand(batch, 3, *size, generator=gen), labels)
    return PairView({(STUDENT, DEFAULT_VIEW): student, (DEFAULT_TEACHER, DEFAULT_VIEW): teacher}, Batch({DEFAULT_VIEW: view}))


def run_once(loss: torch.nn.Module, pair: PairView) -> float:
    for out in (pair.student.logits, *pair.student.features.values()):
        out.grad = None
    start = time.perf_counter()
    loss(pair).backward()
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--losses", nargs="+", default=V2_LOSSES, help="registered loss names; the first is the reference")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--rounds", type=int, default=10)
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--size", type=int, nargs=2, default=[240, 320], metavar=("H", "W"))
    parser.add_argument("--classes", type=int, default=11)
    parser.add_argument("--channels", type=int, default=128, help="channels of the `head` feature")
    parser.add_argument("--stride", type=int, default=4, help="output stride of logits and `head`")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    pair = step_tensors(args.batch, tuple(args.size), args.classes, args.channels, args.stride)
    losses = {name: LOSSES.get(name)() for name in args.losses}
    times: dict[str, list[float]] = {name: [] for name in losses}
    for r in range(args.rounds + 1):  # round 0 warms up
        for name, loss in losses.items():
            seconds = run_once(loss, pair)
            if r:
                times[name].append(seconds)
    med = {name: statistics.median(v) for name, v in times.items()}
    ref = args.losses[0]
    print(f"forward + backward, batch {args.batch} at {args.size[0]}x{args.size[1]}, logits and head at stride "
          f"{args.stride}, {args.threads} thread(s), median of {args.rounds} interleaved rounds")
    for name, seconds in med.items():
        print(f"  {name:12s} {seconds * 1000:9.1f} ms  {seconds / med[ref]:7.2f}x {ref}")


if __name__ == "__main__":
    main()
