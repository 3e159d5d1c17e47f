"""What to do when a loss goes NaN or infinite."""

from __future__ import annotations

import torch

from distill.errors import DistillError


class NonFiniteLoss(DistillError):
    def __init__(self, step: int, term: str, value: float, checkpoint: str | None) -> None:
        last = f"last good checkpoint: {checkpoint}" if checkpoint else "no checkpoint was written yet"
        super().__init__(None, f"step {step}: losses.{term}", "a finite loss", got=f"<{value}>", hint=last)


def first_bad_term(terms: dict[str, torch.Tensor]) -> tuple[str, float] | None:
    for name, value in terms.items():
        if not torch.isfinite(value).all():
            return name, float(value)
    return None
