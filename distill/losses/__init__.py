"""Losses, one file per method; importing this package fills the registry."""

from distill.losses import ce, cwd, kd  # noqa: F401  (registration)
from distill.losses.base import LOSSES, Loss

__all__ = ["LOSSES", "Loss"]
