"""The one training loop: every method runs through it, through its losses.

It moves tensors, runs the frozen teacher only when a loss reads it, sums the weighted loss
terms, steps the optimizer through Accelerate (DDP, mixed precision, gradient accumulation),
evaluates, checkpoints and resumes. It knows no method by name.
"""

from __future__ import annotations

import json
import os
import signal
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from accelerate import Accelerator
from torch import Tensor, nn
from torch.utils.data import DataLoader, Dataset

from distill.engine.checkpoint import Checkpoints
from distill.engine.evaluate import evaluate
from distill.engine.nonfinite import NonFiniteLoss, first_bad_term
from distill.engine.progress import TrainProgress
from distill.losses import Loss
from distill.models import SegmentationModel
from distill.outputs import PairView, SegOutput
from distill.specs import TrainSpec


class Interrupted(Exception):
    """SIGINT arrived: the current step finished and a checkpoint was written."""

    def __init__(self, step: int, checkpoint: Path) -> None:
        super().__init__(f"interrupted after step {step}; checkpoint {checkpoint}; continue with --resume")
        self.step, self.checkpoint = step, checkpoint


class Distillation(nn.Module):
    """Student plus the losses that own parameters (adapters): one module for DDP to wrap."""

    def __init__(self, student: SegmentationModel, losses: list[tuple[str, Loss, float]]) -> None:
        super().__init__()
        self.student = student
        self.names = [name for name, _, _ in losses]
        self.weights = [weight for _, _, weight in losses]
        self.losses = nn.ModuleList([loss for _, loss, _ in losses])
        self.taps = sorted({tap for loss in self.losses for tap in loss.needs if tap != "logits"})

    def forward(self, images: Tensor, labels: Tensor, teacher: SegOutput | None) -> dict[str, Tensor]:
        pair = PairView(self.student(images, taps=self.taps), teacher, labels)
        return {name: loss(pair) for name, loss in zip(self.names, self.losses)}


@dataclass
class Trainer:
    accelerator: Accelerator
    model: Distillation
    teacher: SegmentationModel | None
    train_set: Dataset
    val_set: Dataset
    classes: list[str]
    spec: TrainSpec
    run_dir: Path
    loader: DataLoader
    optimizer: torch.optim.Optimizer
    scheduler: Any
    eval_size: tuple[int, int] | None = None
    eval_batch_size: int = 1
    history: list[dict[str, Any]] = field(default_factory=list)
    skipped: int = 0
    _stop_requested: bool = False

    def __post_init__(self) -> None:
        self.checkpoints = Checkpoints(self.run_dir / "checkpoints")
        self.log_path = self.run_dir / "log.jsonl"
        self._pid = os.getpid()
        self.core: Distillation = self.accelerator.unwrap_model(self.model)  # attributes live past DDP
        self.teacher_needed = any(loss.needs_teacher for loss in self.core.losses)
        self.teacher_taps = sorted({t for l in self.core.losses if l.needs_teacher for t in l.needs if t != "logits"})

    # -- batches -------------------------------------------------------------------------
    def micro_batches(self, start_step: int) -> Iterator[dict[str, Any]]:
        """An endless, resumable stream: epoch e uses shuffle and augmentation seeds from e."""
        per_epoch = len(self.loader)
        done = start_step * self.spec.grad_accum
        epoch, skip = divmod(done, per_epoch)
        while True:
            if hasattr(self.train_set, "set_epoch"):
                self.train_set.set_epoch(epoch)
            self.loader.set_epoch(epoch)
            loader = self.accelerator.skip_first_batches(self.loader, skip) if skip else self.loader
            yield from loader
            epoch, skip = epoch + 1, 0

    @torch.inference_mode()
    def _teacher_inference(self, images: Tensor) -> SegOutput:
        return self.teacher(images, taps=self.teacher_taps)

    def teacher_forward(self, images: Tensor) -> SegOutput | None:
        if self.teacher is None or not self.teacher_needed:
            return None
        with self.accelerator.autocast():
            out = self._teacher_inference(images)
        # inference-mode tensors cannot enter autograd graphs; a clone outside the mode can
        return SegOutput(out.logits.clone().float(), {k: v.clone().float() for k, v in out.features.items()})

    # -- one step ------------------------------------------------------------------------
    def step(self, batch: dict[str, Any], step: int) -> dict[str, float] | None:
        """One micro-batch; returns the logged terms when an optimizer step happened."""
        images = batch["image"].float().div_(255.0)
        labels = batch["label"]
        with self.accelerator.accumulate(self.model):
            teacher = self.teacher_forward(images)
            with self.accelerator.autocast():
                terms = self.model(images, labels, teacher)
            weighted = {n: w * terms[n] for n, w in zip(self.core.names, self.core.weights)}
            total = sum(weighted.values())
            bad = first_bad_term(terms)
            flag = torch.tensor(float(bad is not None), device=self.accelerator.device)
            if self.accelerator.reduce(flag, reduction="sum").item() > 0:
                self.optimizer.zero_grad(set_to_none=True)
                return self._non_finite(step, bad)
            self.accelerator.backward(total)
            if self.accelerator.sync_gradients and self.spec.grad_clip:
                self.accelerator.clip_grad_norm_(self.model.parameters(), self.spec.grad_clip)
            self.optimizer.step()
            self.optimizer.zero_grad(set_to_none=True)
            if not self.accelerator.sync_gradients:
                return None
            self.scheduler.step()
        logged = {name: float(value.detach()) for name, value in weighted.items()}
        logged["loss"] = float(total.detach())
        return logged

    def _non_finite(self, step: int, bad: tuple[str, float] | None) -> None:
        name, value = bad or ("unknown", float("nan"))
        self.skipped += 1
        if self.spec.nan_policy == "stop" or self.skipped > self.spec.max_skipped:
            latest = self.checkpoints.latest()
            raise NonFiniteLoss(step + 1, name, value, str(latest) if latest else None, run_dir=self.run_dir)
        self.accelerator.print(f"step {step + 1}: non-finite {name}; step skipped ({self.skipped} so far)")
        return None

    # -- the loop ------------------------------------------------------------------------
    def fit(self, resume: bool = False) -> dict[str, Any]:
        start = self._resume() if resume else 0
        self.model.train()
        if self.teacher is not None:
            self.teacher.eval()
        batches = self.micro_batches(start)
        previous = signal.signal(signal.SIGINT, self._request_stop)
        started = time.perf_counter()
        metrics: dict[str, Any] = {}
        try:
            with TrainProgress(self.spec.iterations, start, self.accelerator.is_main_process, every=self.spec.log_every) as progress:
                step = start
                while step < self.spec.iterations:
                    terms = self.step(next(batches), step)
                    if terms is None:
                        continue
                    step += 1
                    lr = self.scheduler.get_last_lr()[0]
                    progress.update(step, terms, lr)
                    if step % self.spec.log_every == 0 or step == self.spec.iterations:
                        self._log({"step": step, "lr": lr, **terms, "elapsed_s": round(time.perf_counter() - started, 2)})
                    metrics = self._maybe_evaluate_and_save(step, progress) or metrics
                    if self._stop_requested:
                        raise Interrupted(step, self._save(step))
                if not metrics:  # resumed from the final checkpoint (stopped before the run was written)
                    metrics = self._evaluate(step, progress)
        finally:
            signal.signal(signal.SIGINT, previous)
        return metrics

    def _maybe_evaluate_and_save(self, step: int, progress: TrainProgress) -> dict[str, Any] | None:
        last = step == self.spec.iterations
        evaluate_now = last or (self.spec.eval_every and step % self.spec.eval_every == 0)
        save_every = self.spec.checkpoint_every or self.spec.eval_every
        metrics = None
        if evaluate_now:
            metrics = self._evaluate(step, progress)
        if last or (save_every and step % save_every == 0):
            self._save(step)
        return metrics

    def _evaluate(self, step: int, progress: TrainProgress) -> dict[str, Any]:
        metrics = evaluate(self.core.student, self.val_set, self.classes,
                           self.accelerator, batch_size=self.eval_batch_size, eval_size=self.eval_size)
        self._log({"step": step, "eval": metrics})
        progress.note(f"step {step}: val mIoU {metrics['miou']:.2f}  boundary IoU {metrics['boundary_iou']:.2f}")
        return metrics

    def _save(self, step: int) -> Path:
        size = sum(t.numel() * t.element_size() for t in self.core.state_dict().values())
        return self.checkpoints.save(self.accelerator, step, {"skipped": self.skipped}, state_bytes=size)

    def _resume(self) -> int:
        latest = self.checkpoints.latest()
        if latest is None:
            return 0
        state = self.checkpoints.load(self.accelerator, latest)
        self.skipped = state.get("skipped", 0)
        self.accelerator.print(f"resuming from {latest} (step {state['step']})")
        return int(state["step"])

    def _request_stop(self, signum: int, frame: Any) -> None:
        if os.getpid() != self._pid:  # data-loader workers inherit the handler; only the trainer acts
            return
        if self._stop_requested:  # a second Ctrl-C stops at once
            raise KeyboardInterrupt
        self._stop_requested = True
        self.accelerator.print("stopping after this step (Ctrl-C again to abort without saving)")

    def _log(self, record: dict[str, Any]) -> None:
        self.history.append(record)
        if self.accelerator.is_main_process:
            with open(self.log_path, "a", encoding="utf-8") as handle:
                handle.write(json.dumps(record) + "\n")
