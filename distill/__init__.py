"""distill: distil, prune and measure semantic-segmentation students."""

__version__ = "0.1.0"
