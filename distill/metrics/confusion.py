"""Confusion matrices and the IoU figures read off them."""

from __future__ import annotations

import torch
from torch import Tensor


def confusion_matrix(pred: Tensor, target: Tensor, num_classes: int) -> Tensor:
    """(C, C) int64 counts, rows = ground truth, columns = prediction.

    pred, target: int64 of any shape, already restricted to labeled pixels and to 0..C-1.
    """
    flat = target.reshape(-1) * num_classes + pred.reshape(-1)
    return torch.bincount(flat, minlength=num_classes**2).reshape(num_classes, num_classes)


def iou_from_confusion(conf: Tensor) -> Tensor:
    """Per-class TP / (TP + FP + FN) as float64; NaN for a class absent from both prediction and truth."""
    tp = conf.diag().double()
    union = conf.sum(0).double() + conf.sum(1).double() - tp
    return ratio_or_nan(tp, union)


def ratio_or_nan(num: Tensor, den: Tensor) -> Tensor:
    """num / den as float64, NaN where den == 0 (so the class drops out of the mean)."""
    num, den = num.double(), den.double()
    return torch.where(den > 0, num / den.clamp(min=1), torch.full_like(den, float("nan")))


def mean_present(values: Tensor) -> float:
    """Mean over the non-NaN entries; NaN when there are none."""
    present = values[~values.isnan()]
    return float(present.mean()) if present.numel() else float("nan")
