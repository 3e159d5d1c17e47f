"""Losses, one file per method; importing this package fills the registry."""

from distill.losses import bpkd, ce, cwd, ifvd, kd, lad, mgd, skd  # noqa: F401  (registration)
from distill.losses.base import LOSSES, Loss, make_loss

__all__ = ["LOSSES", "Loss", "make_loss"]
