"""The contract between losses and the engine.

A loss is an nn.Module with `forward(pair) -> scalar`. It declares what it reads as
(model, view, tap) triples (`reads()`), so the engine runs exactly those forwards, each model at
most once per view, records only those taps, and skips a teacher no loss reads. Most losses read
one view and one teacher: they set `needs` (taps) and `needs_teacher`, and the recipe entry's
`view:` and `teacher:` (default `labeled` and `main`) say which; the default `reads()` turns that
into triples. A loss reading two teachers or two views overrides `reads()`.

Losses that own parameters (1x1 adapters) create them in `setup`, once tap channel counts are
known; the engine trains them with the student.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor, nn

from distill.batch import DEFAULT_VIEW
from distill.outputs import DEFAULT_TEACHER, STUDENT, PairView, Read, TapInfo
from distill.registry import Registry
from distill.specs import LossSpec


class Loss(nn.Module):
    needs: tuple[str, ...] = ("logits",)
    needs_teacher: bool = True
    default_weight: float = 1.0  # methods.md default; a recipe entry's weight: overrides it
    view: str = DEFAULT_VIEW  # set from the recipe entry by the engine
    teacher_name: str = DEFAULT_TEACHER

    def reads(self) -> list[Read]:
        models = [STUDENT] + ([self.teacher_name] if self.needs_teacher else [])
        return [Read(model, self.view, tap) for model in models for tap in self.needs]

    def teachers_read(self) -> set[str]:
        return {r.model for r in self.reads() if r.model != STUDENT}

    def setup(self, student_taps: dict[str, TapInfo], teacher_taps: dict[str, TapInfo] | None) -> None:
        """Create parameters that depend on tap shapes; the default loss has none.

        `teacher_taps` are those of the loss's own teacher (`teacher_name`)."""

    def forward(self, pair: PairView) -> Tensor:  # pragma: no cover - abstract
        raise NotImplementedError


LOSSES: Registry[type[Loss]] = Registry("loss")


def make_loss(spec: LossSpec, params: dict[str, Any]) -> Loss:
    """A recipe entry's loss, reading the entry's view and teacher."""
    loss = LOSSES.get(spec.name)(**params)
    loss.view, loss.teacher_name = spec.view, spec.teacher
    return loss


def world_size() -> int:
    """Processes training together (1 outside torch.distributed): a loss that sums over the batch
    multiplies its slice's sum by this, so DDP's gradient average gives the global batch's sum."""
    return torch.distributed.get_world_size() if torch.distributed.is_available() and torch.distributed.is_initialized() else 1


def pixel_mean(total: Tensor, count: Tensor) -> Tensor:
    """total / count for a mean over the valid (not ignored) pixels of the global batch.

    Under DDP each process holds a slice and its own count; the slices' counts differ when their
    crops pad differently, so a per-process mean would weigh the pixels of a padded slice more.
    The count is summed over processes (no gradient flows through it) and each process divides
    by count / processes, which DDP's gradient average turns into the global mean: one process and
    two give the same loss and gradient (tests/engine/test_processes.py)."""
    count = count.detach().float()
    processes = world_size()
    if processes > 1:
        count = count.clone()
        torch.distributed.all_reduce(count)
        count = count / processes
    return total / count.clamp(min=1.0 / processes)
