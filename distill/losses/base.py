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
