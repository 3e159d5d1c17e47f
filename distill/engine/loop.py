"""The one training loop: every method and every stage (teacher training, prune fine-tuning,
distillation) runs through it, through its losses and the recipe's batch transforms.

It moves tensors, builds the batch's views, runs each frozen teacher once per view that a loss
reads, runs the student once per view it is read on, sums the weighted loss terms, steps the
optimizer through Accelerate (DDP, mixed precision, gradient accumulation), evaluates,
checkpoints and resumes. It knows no method by name.
"""

from __future__ import annotations

import os
import signal
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from accelerate import Accelerator
from torch import Tensor, nn
from torch.utils.data import DataLoader

from distill.batch import Batch, BatchTransform
from distill.engine.cache import TeacherCache
from distill.engine.checkpoint import Checkpoints
from distill.engine.nonfinite import NonFiniteLoss, first_bad_term
from distill.engine.precision import teacher_autocast
from distill.engine.progress import TrainProgress
from distill.engine.runlog import append_record, trim_log
from distill.losses import Loss
from distill.models import Segmenter
from distill.outputs import STUDENT, PairView, SegOutput
from distill.specs import TrainSpec

PROCESS_SEED_STRIDE = 1_000_003  # process i's batch-transform generator starts from seed + i * this
Forwards = dict[tuple[str, str], tuple[str, ...]]  # (model, view) -> the taps to record (logits always)


class Interrupted(Exception):
    """SIGINT arrived: the current step finished and a checkpoint was written."""

    def __init__(self, step: int, checkpoint: Path | None) -> None:
        where = f"checkpoint {checkpoint}; continue with --resume" if checkpoint else "nothing saved"
        super().__init__(f"interrupted after step {step}; {where}")
        self.step, self.checkpoint = step, checkpoint


def forwards_of(losses: list[Loss]) -> Forwards:
    """Every (model, view) some loss reads, with the union of the taps read there."""
    taps: dict[tuple[str, str], set[str]] = {}
    for loss in losses:
        for read in loss.reads():
            taps.setdefault((read.model, read.view), set()).add(read.tap)
    return {key: tuple(sorted(t for t in names if t != "logits")) for key, names in taps.items()}


class GeneratorState:
    """The batch transforms' random generator, saved and restored with each checkpoint, so a
    resumed run draws the same masks and noise as an uninterrupted one."""

    def __init__(self, generator: torch.Generator) -> None:
        self.generator = generator

    def state_dict(self) -> dict[str, Tensor]:
        return {"state": self.generator.get_state()}

    def load_state_dict(self, state: dict[str, Tensor]) -> None:
        self.generator.set_state(state["state"])


class Distillation(nn.Module):
    """Student plus the losses that own parameters (adapters): one module for DDP to wrap."""

    def __init__(self, student: Segmenter, losses: list[tuple[str, Loss, float]]) -> None:
        super().__init__()
        self.student = student
        self.names = [name for name, _, _ in losses]
        self.weights = [weight for _, _, weight in losses]
        self.losses = nn.ModuleList([loss for _, loss, _ in losses])
        self.forwards = forwards_of(list(self.losses))

    def teacher_forwards(self) -> Forwards:
        return {key: taps for key, taps in self.forwards.items() if key[0] != STUDENT}

    def forward(self, batch: Batch, teacher_outputs: dict[tuple[str, str], SegOutput]) -> dict[str, Tensor]:
        outputs = dict(teacher_outputs)
        for (model, view), taps in self.forwards.items():
            if model == STUDENT:
                outputs[(model, view)] = self.student(self.student.prepare_input(batch.view(view)), taps=taps)
        return {name: loss(PairView(outputs, batch, loss.view, loss.teacher_name)) for name, loss in zip(self.names, self.losses)}


@dataclass
class Trainer:
    """`run_dir` None: no checkpoints and no log (prune fine-tuning between steps); `evaluator`
    None: no evaluation."""

    accelerator: Accelerator
    model: Distillation
    teachers: dict[str, Segmenter]
    loader: DataLoader
    optimizer: torch.optim.Optimizer
    scheduler: Any
    spec: TrainSpec
    run_dir: Path | None = None
    evaluator: Callable[[nn.Module], dict[str, Any]] | None = None
    transforms: list[BatchTransform] = field(default_factory=list)
    history: list[dict[str, Any]] = field(default_factory=list)
    skipped: int = 0
    # training seconds before this process (from the checkpoint resumed); elapsed_s adds this one's
    previous_s: float = 0.0
    caches: dict[str, TeacherCache] = field(default_factory=dict)  # teacher name -> outputs served from disk
    _stop_requested: bool = False

    def __post_init__(self) -> None:
        self.checkpoints = Checkpoints(self.run_dir / "checkpoints", keep=self.spec.keep_checkpoints) if self.run_dir else None
        self._pid = os.getpid()
        self._started = time.perf_counter()
        self.core: Distillation = self.accelerator.unwrap_model(self.model)  # attributes live past DDP
        # Each process draws its own masks and noise for its slice of the global batch (with one
        # seed they would repeat across processes); process 0 keeps the recipe's seed, so a
        # one-process run draws what it always drew.
        seed = self.spec.seed + PROCESS_SEED_STRIDE * self.accelerator.process_index
        self.generator = torch.Generator(device=self.accelerator.device).manual_seed(seed)
        if self.checkpoints is not None and self.transforms:
            self.accelerator.register_for_checkpointing(GeneratorState(self.generator))

    # -- batches -------------------------------------------------------------------------
    def micro_batches(self, start_step: int) -> Iterator[dict[str, Any]]:
        """An endless, resumable stream: epoch e uses shuffle and augmentation seeds from e."""
        per_epoch = len(self.loader)
        done = start_step * self.spec.grad_accum
        epoch, skip = divmod(done, per_epoch)
        dataset = self.loader.dataset
        while True:
            if hasattr(dataset, "set_epoch"):
                dataset.set_epoch(epoch)
            self.loader.set_epoch(epoch)
            loader = self.accelerator.skip_first_batches(self.loader, skip) if skip else self.loader
            yield from loader
            epoch, skip = epoch + 1, 0

    def make_batch(self, sample: dict[str, Any]) -> Batch:
        batch = Batch.from_loader(sample, self.accelerator.device)
        for transform in self.transforms:
            batch = transform(batch, self.generator)
        return batch

    @torch.inference_mode()
    def _teacher_inference(self, teacher: Segmenter, batch: Batch, view: str, taps: tuple[str, ...]) -> SegOutput:
        return teacher(teacher.prepare_input(batch.view(view)), taps=taps)

    def teacher_outputs(self, batch: Batch) -> dict[tuple[str, str], SegOutput]:
        """Each teacher once per view a loss reads it on; a teacher no loss reads never runs, and a
        cached one (distill.engine.cache) is read from disk instead."""
        outputs = {}
        for (name, view), taps in self.core.teacher_forwards().items():
            if name in self.caches:  # a cached teacher never runs: its stored maps, warped as the view was
                outputs[(name, view)] = self.caches[name].outputs(batch, view, taps)
                continue
            with teacher_autocast(self.spec, self.accelerator):
                out = self._teacher_inference(self.teachers[name], batch, view, taps)
            # inference-mode tensors cannot enter autograd graphs; a clone outside the mode can
            outputs[(name, view)] = SegOutput(out.logits.clone().float(), {k: v.clone().float() for k, v in out.features.items()})
        return outputs

    # -- one step ------------------------------------------------------------------------
    def step(self, sample: dict[str, Any], step: int) -> dict[str, float] | None:
        """One micro-batch; returns the logged terms when an optimizer step happened."""
        batch = self.make_batch(sample)
        with self.accelerator.accumulate(self.model):
            teachers = self.teacher_outputs(batch)
            with self.accelerator.autocast():
                terms = self.model(batch, teachers)
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
        return self._mean_over_processes({**weighted, "loss": total})

    def _mean_over_processes(self, terms: dict[str, Tensor]) -> dict[str, float]:
        """The logged terms are the global batch's: each process's mean over its slice, averaged
        (the slices are equal, so this is the mean one process would log for the whole batch)."""
        values = torch.stack([value.detach().float() for value in terms.values()])
        if self.accelerator.num_processes > 1:
            values = self.accelerator.reduce(values, reduction="mean")
        return dict(zip(terms, values.tolist()))

    def _non_finite(self, step: int, bad: tuple[str, float] | None) -> None:
        name, value = bad or ("unknown", float("nan"))
        self.skipped += 1
        if self.spec.nan_policy == "stop" or self.skipped > self.spec.max_skipped:
            latest = self.checkpoints.latest() if self.checkpoints else None
            raise NonFiniteLoss(step + 1, name, value, str(latest) if latest else None, run_dir=self.run_dir)
        self.accelerator.print(f"step {step + 1}: non-finite {name}; step skipped ({self.skipped} so far)")
        return None

    # -- the loop ------------------------------------------------------------------------
    @property
    def elapsed_s(self) -> float:
        """Seconds this run has trained, across resumes: a run's wall time is its own, not the
        last session's share of it."""
        return self.previous_s + time.perf_counter() - self._started

    def fit(self, resume: bool = False) -> dict[str, Any]:
        self._started = time.perf_counter()
        start = self._resume() if resume else 0
        self.model.train()
        for teacher in self.teachers.values():
            teacher.eval()
        batches = self.micro_batches(start)
        previous = signal.signal(signal.SIGINT, self._request_stop)
        try:
            with TrainProgress(self.spec.iterations, start, self.accelerator.is_main_process, every=self.spec.log_every) as progress:
                return self._run(start, batches, progress)
        finally:
            signal.signal(signal.SIGINT, previous)

    def _run(self, start: int, batches: Iterator[dict[str, Any]], progress: TrainProgress) -> dict[str, Any]:
        metrics, step = {}, start
        while step < self.spec.iterations:
            terms = self.step(next(batches), step)
            if terms is None:
                continue
            step += 1
            lr = self.scheduler.get_last_lr()[0]
            progress.update(step, terms, lr)
            if step % self.spec.log_every == 0 or step == self.spec.iterations:
                self._log({"step": step, "lr": lr, **terms, "elapsed_s": round(self.elapsed_s, 2)})
            metrics = self._maybe_evaluate_and_save(step, progress) or metrics
            if self._stop_requested:
                raise Interrupted(step, self._save(step))
        if not metrics and self.evaluator is not None:  # resumed from the final checkpoint
            metrics = self._evaluate(step, progress)
        return metrics

    def _maybe_evaluate_and_save(self, step: int, progress: TrainProgress) -> dict[str, Any] | None:
        last = step == self.spec.iterations
        evaluate_now = self.evaluator is not None and (last or (self.spec.eval_every and step % self.spec.eval_every == 0))
        save_every = self.spec.checkpoint_every or self.spec.eval_every
        metrics = self._evaluate(step, progress) if evaluate_now else None
        if last or (save_every and step % save_every == 0):
            self._save(step)
        return metrics

    def _evaluate(self, step: int, progress: TrainProgress) -> dict[str, Any]:
        assert self.evaluator is not None
        metrics = self.evaluator(self.core.student)
        self._log({"step": step, "eval": metrics})
        progress.note(f"step {step}: val mIoU {metrics['miou']:.2f}  boundary IoU {metrics['boundary_iou']:.2f}")
        return metrics

    def _save(self, step: int) -> Path | None:
        if self.checkpoints is None:
            return None
        size = sum(t.numel() * t.element_size() for t in self.core.state_dict().values())
        return self.checkpoints.save(self.accelerator, step, {"skipped": self.skipped, "train_s": round(self.elapsed_s, 1)},
                                     state_bytes=size)

    def _resume(self) -> int:
        latest = self.checkpoints.latest() if self.checkpoints else None
        if latest is None:
            return 0
        state = self.checkpoints.load(self.accelerator, latest)
        self.skipped = state.get("skipped", 0)
        self.previous_s = float(state.get("train_s", 0.0))  # absent in checkpoints written before it was kept
        if self.run_dir is not None and self.accelerator.is_main_process:
            trim_log(self.run_dir / "log.jsonl", int(state["step"]))
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
        if self.spec.log_with and self.run_dir is not None:  # the recipe's trackers (tensorboard, ...)
            scalars = {k: v for k, v in record.items() if isinstance(v, (int, float)) and k != "step"}
            scalars.update({f"eval/{k}": v for k, v in record.get("eval", {}).items() if isinstance(v, (int, float))})
            self.accelerator.log(scalars, step=record["step"])
        if self.run_dir is not None and self.accelerator.is_main_process:
            append_record(self.run_dir / "log.jsonl", record)
