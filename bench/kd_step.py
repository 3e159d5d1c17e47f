"""Overhead of the engine's KD step: t(KD step) / (t(student-only step) + t(teacher forward)).

All three are measured side by side in one run, interleaved round by round so that machine
load affects them alike; the median of each is used. The KD step is the engine's real
`Trainer.step` with the recipe's teacher and losses, the student-only step the same call with
cross-entropy alone, and the teacher forward the engine's own `teacher_outputs`. Defaults: the CamVid v2
student and teacher, channels-last as training runs them (--nchw for the NCHW layout).
Target: ratio <= 1.05.

    python bench/kd_step.py [--size 240 320] [--batch 8] [--rounds 12]
"""

from __future__ import annotations

import argparse
import statistics
import time
from pathlib import Path

import torch
from accelerate import Accelerator

from distill.batch import Batch
from distill.cards import load_card
from distill.engine.loop import Distillation, Trainer
from distill.engine.schedule import build_optimizer, build_scheduler
from distill.losses import LOSSES
from distill.models import build_model
from distill.specs import TrainSpec
from distill.stages.setup import apply_memory_format

ROOT = Path(__file__).resolve().parents[1]


def make_trainer(accelerator, student, teachers: dict, loss_names: list[str], channels_last: bool) -> Trainer:
    """The engine's Trainer as the distill stage builds it (no loader, run folder or evaluator)."""
    losses = [(name, LOSSES.get(name)(), 1.0) for name in loss_names]
    model = Distillation(student, losses)
    spec = TrainSpec(iterations=10_000, lr=1e-4, optimizer="adamw", channels_last=channels_last)
    apply_memory_format(spec, model, *teachers.values())
    optimizer = build_optimizer([(list(model.parameters()), 1.0)], spec)
    return Trainer(accelerator, model, teachers, None, optimizer, build_scheduler(optimizer, spec), spec)


def timed(fn) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--teacher", default=str(ROOT / "teachers/camvid_deeplabv3plus_lite2_v2s2.yaml"))
    parser.add_argument("--student", default=str(ROOT / "students/lightplus_lite0.yaml"))
    parser.add_argument("--nchw", action="store_true", help="train.channels_last off")
    parser.add_argument("--size", type=int, nargs=2, default=(240, 320))
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--classes", type=int, default=11)
    parser.add_argument("--rounds", type=int, default=12)
    args = parser.parse_args()

    torch.manual_seed(0)
    accelerator = Accelerator()
    nc = args.classes
    teacher = build_model(load_card(args.teacher).model_copy(update={"pretrained": "none"}), nc).eval()
    teacher.requires_grad_(False)
    make_student = lambda: build_model(load_card(args.student).model_copy(update={"pretrained": "none"}), nc)  # noqa: E731
    plain = make_trainer(accelerator, make_student(), {}, ["ce"], not args.nchw)
    kd = make_trainer(accelerator, make_student(), {"main": teacher}, ["ce", "kd"], not args.nchw)
    batch = {"image": torch.randint(0, 256, (args.batch, 3, *args.size), dtype=torch.uint8),
             "label": torch.randint(0, nc, (args.batch, *args.size))}

    def step(trainer: Trainer) -> None:
        trainer.step({k: v.clone() for k, v in batch.items()}, 0)

    times: dict[str, list[float]] = {"student-only step": [], "teacher forward": [], "KD step": []}
    for r in range(args.rounds + 2):  # two warm-up rounds
        sample = {"student-only step": timed(lambda: step(plain)),
                  "teacher forward": timed(lambda: kd.teacher_outputs(Batch.from_loader(batch))),
                  "KD step": timed(lambda: step(kd))}
        if r >= 2:
            for key, value in sample.items():
                times[key].append(value)
    med = {k: statistics.median(v) for k, v in times.items()}
    print(f"input {args.batch}x3x{args.size[0]}x{args.size[1]}, {torch.get_num_threads()} threads, "
          f"{accelerator.device}, {args.rounds} rounds (median)")
    for key, value in med.items():
        print(f"  {key:18s} {value * 1000:8.1f} ms")
    ratio = med["KD step"] / (med["student-only step"] + med["teacher forward"])
    print(f"ratio KD / (student-only + teacher forward) = {ratio:.3f}  (target <= 1.05)")


if __name__ == "__main__":
    main()
