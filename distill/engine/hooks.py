"""Named extension points of the one training loop (detectron2's HookBase shape).

Methods that need a different loop shape override a hook instead of copying the loop: MGD feeds
labeled plus unlabeled batches through `batches`, LAD trains its teacher in `before_fit`, DToP
collects token statistics in `after_step`.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

from distill.registry import Registry

if TYPE_CHECKING:
    from distill.engine.loop import Trainer


class Hook:
    def before_fit(self, trainer: Trainer) -> None:
        """Runs once, after models and data are built and before the first step."""

    def batches(self, trainer: Trainer, batches: Iterator[dict[str, Any]]) -> Iterator[dict[str, Any]]:
        """Transform the stream of training batches (default: unchanged)."""
        return batches

    def after_step(self, trainer: Trainer, step: int, terms: dict[str, float]) -> None:
        """Runs after every optimizer step with the logged loss terms."""


HOOKS: Registry[type[Hook]] = Registry("hook")
