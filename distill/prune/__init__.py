"""Structural pruning (torch-pruning) of a student's channels."""

from distill.prune.channels import PruneReport, PruneStep, prune_model

__all__ = ["PruneReport", "PruneStep", "prune_model"]
