"""What to do when a loss goes NaN or infinite."""

from __future__ import annotations

from pathlib import Path

import torch

from distill.errors import DistillError


class NonFiniteLoss(DistillError):
    """`runs/x: step 12: losses.kd: expected a finite loss, got <nan> (last good checkpoint: ...)`."""

    def __init__(self, step: int, term: str, value: float, checkpoint: str | None, run_dir: str | Path | None = None) -> None:
        last = f"last good checkpoint: {checkpoint}" if checkpoint else "no checkpoint was written yet"
        super().__init__(run_dir, f"step {step}: losses.{term}", "a finite loss", got=f"<{value}>", hint=last)
        self.step, self.term, self.checkpoint = step, term, checkpoint


def first_bad_term(terms: dict[str, torch.Tensor]) -> tuple[str, float] | None:
    for name, value in terms.items():
        if not torch.isfinite(value).all():
            return name, float(value.detach())
    return None
