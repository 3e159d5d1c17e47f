"""Structural pruning (torch-pruning) and the pickle-free record of a pruned architecture."""

from distill.prune.channels import PruneReport, PruneStep, prune_model
from distill.prune.shapes import apply_layer_shapes, changed_layers

__all__ = ["PruneReport", "PruneStep", "apply_layer_shapes", "changed_layers", "prune_model"]
