"""The contract between losses and the engine.

A loss is an nn.Module with `forward(pair) -> scalar`. It declares which taps it reads
(`needs`) and whether it reads the teacher (`needs_teacher`), so the engine records only those
tensors and skips the teacher forward entirely when no loss reads it. Losses that own
parameters (1x1 adapters) create them in `setup`, once tap channel counts are known; the
engine trains them with the student.
"""

from __future__ import annotations

from torch import Tensor, nn

from distill.outputs import PairView, TapInfo
from distill.registry import Registry


class Loss(nn.Module):
    needs: tuple[str, ...] = ("logits",)
    needs_teacher: bool = True

    def setup(self, student_taps: dict[str, TapInfo], teacher_taps: dict[str, TapInfo] | None) -> None:
        """Create parameters that depend on tap shapes; the default loss has none."""

    def forward(self, pair: PairView) -> Tensor:  # pragma: no cover - abstract
        raise NotImplementedError


LOSSES: Registry[type[Loss]] = Registry("loss")
