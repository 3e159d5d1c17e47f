"""Split-level segmentation metrics: mIoU, pixel accuracy, Boundary IoU and trimap IoU.

All accumulators are int64 counts in one flat tensor, so summing it across processes gives
exactly the figures one process would get on the whole split.
"""

from __future__ import annotations

import torch
from torch import Tensor

from distill.metrics.boundary import boundary_dilation, label_boundary, trimap_band
from distill.metrics.confusion import confusion_matrix, iou_from_confusion, mean_present, ratio_or_nan
from distill.outputs import IGNORE_INDEX


class SegMetrics:
    """Accumulates one split's counts; `compute()` turns them into percentages.

    - mIoU and pixel accuracy come from one (C, C) confusion matrix over every labeled pixel of
      the split; a class with TP + FP + FN == 0 is left out of the mean and reported as None.
    - Boundary IoU (Cheng et al., CVPR 2021), per class c and image: G = target == c,
      P = pred == c (pred is set to "not c" wherever target is ignore), boundary(M) = M minus
      its erosion by d = max(1, round(ratio * diagonal)); I_c += |Gb & Pb|, U_c += |Gb | Pb|
      over labeled pixels. The score is the mean of I_c / U_c over classes with U_c > 0.
      Inferred: counts are summed over the split before dividing, like the confusion matrix,
      rather than averaging per-image scores. Every class's boundary comes from one integer map
      (`label_boundary`), which equals the one-hot erosion exactly and costs C times less.
    - Trimap IoU (Kohli et al. 2009): mIoU of a second confusion matrix restricted to labeled
      pixels within `trimap_band` pixels (square distance) of a ground-truth label edge.

    dilation: a fixed d for every image, overriding the ratio (for tests and tiny images).
    """

    def __init__(
        self,
        num_classes: int,
        class_names: list[str] | None = None,
        ignore_index: int = IGNORE_INDEX,
        boundary_dilation_ratio: float = 0.02,
        trimap_band: int = 3,
        device: str | torch.device = "cpu",
        dilation: int | None = None,
    ) -> None:
        names = list(class_names) if class_names is not None else [str(i) for i in range(num_classes)]
        if num_classes < 1 or len(names) != num_classes:
            raise ValueError(f"need num_classes >= 1 and one name per class, got {num_classes} and {len(names)} names")
        if boundary_dilation_ratio <= 0 or trimap_band < 0 or (dilation is not None and dilation < 1):
            raise ValueError("need boundary_dilation_ratio > 0, trimap_band >= 0 and dilation >= 1")
        self.num_classes, self.class_names, self.ignore_index = num_classes, names, ignore_index
        self.ratio, self.band, self.dilation = boundary_dilation_ratio, trimap_band, dilation
        self.device = torch.device(device)
        self.reset()

    def reset(self) -> None:
        c = self.num_classes
        self.confusion = torch.zeros(c, c, dtype=torch.int64, device=self.device)
        self.trimap_confusion = torch.zeros(c, c, dtype=torch.int64, device=self.device)
        self.boundary_inter = torch.zeros(c, dtype=torch.int64, device=self.device)
        self.boundary_union = torch.zeros(c, dtype=torch.int64, device=self.device)

    @torch.no_grad()
    def update(self, pred: Tensor, target: Tensor) -> None:
        """pred, target: int64 (N, H, W) on any device; target may hold ignore_index."""
        pred, target = self._checked(pred, target)
        valid = target != self.ignore_index
        c = self.num_classes
        self.confusion += confusion_matrix(pred[valid], target[valid], c)
        band = trimap_band(target, self.band) & valid
        self.trimap_confusion += confusion_matrix(pred[band], target[band], c)
        d = self.dilation or boundary_dilation(target.shape[1], target.shape[2], self.ratio)
        pred = torch.where(valid, pred, -1)  # ignore counts as "not c" for the prediction too
        g_edge = label_boundary(target, d) & valid  # pixel of class target[p] on boundary(G_target[p])
        p_edge = label_boundary(pred, d) & valid
        inter = torch.bincount(target[g_edge & p_edge & (pred == target)], minlength=c)
        self.boundary_inter += inter
        sizes = torch.bincount(target[g_edge], minlength=c) + torch.bincount(pred[p_edge], minlength=c)
        self.boundary_union += sizes - inter

    def _checked(self, pred: Tensor, target: Tensor) -> tuple[Tensor, Tensor]:
        if pred.dtype != torch.int64 or target.dtype != torch.int64:
            raise TypeError(f"pred and target must be int64 class maps, got {pred.dtype} and {target.dtype}")
        if pred.ndim != 3 or pred.shape != target.shape:
            shapes = f"{tuple(pred.shape)} and {tuple(target.shape)}"
            raise ValueError(f"pred and target must both be (N, H, W), got {shapes}")
        pred, target = pred.to(self.device), target.to(self.device)
        if pred.numel() == 0:
            return pred, target
        top = self.num_classes - 1
        if int(pred.min()) < 0 or int(pred.max()) > top:
            raise ValueError(f"predicted class outside 0..{top}: {int(pred.min())}..{int(pred.max())}")
        labeled = target[target != self.ignore_index]
        if labeled.numel() and (int(labeled.min()) < 0 or int(labeled.max()) > top):
            raise ValueError(f"target class outside 0..{top} (and not ignore {self.ignore_index})")
        return pred, target

    def state_tensor(self) -> Tensor:
        """Every accumulator in one flat int64 tensor, for a cross-process sum."""
        parts = (self.confusion, self.trimap_confusion, self.boundary_inter, self.boundary_union)
        return torch.cat([p.flatten() for p in parts])

    def load_state_tensor(self, state: Tensor) -> None:
        """Replace the accumulators with `state` (e.g. the sum of every process's state_tensor())."""
        c = self.num_classes
        if state.ndim != 1 or state.numel() != 2 * c * c + 2 * c:
            raise ValueError(f"state must be flat with {2 * c * c + 2 * c} counts, got shape {tuple(state.shape)}")
        state = state.to(self.device)
        state = (state.round() if state.is_floating_point() else state).to(torch.int64)
        conf, trimap, inter, union = state.split([c * c, c * c, c, c])
        self.confusion, self.trimap_confusion = conf.reshape(c, c).clone(), trimap.reshape(c, c).clone()
        self.boundary_inter, self.boundary_union = inter.clone(), union.clone()

    def compute(self) -> dict:
        """Percentages (0-100, 4 decimals); None where nothing was there to score."""
        iou = iou_from_confusion(self.confusion)
        biou = ratio_or_nan(self.boundary_inter, self.boundary_union)
        total = int(self.confusion.sum())
        acc = self.confusion.diag().sum() / total if total else float("nan")
        return {
            "miou": percent(mean_present(iou)),
            "pixel_acc": percent(float(acc)),
            "boundary_iou": percent(mean_present(biou)),
            "trimap_iou": percent(mean_present(iou_from_confusion(self.trimap_confusion))),
            "per_class_iou": dict(zip(self.class_names, map(percent, iou.tolist()))),
            "per_class_boundary_iou": dict(zip(self.class_names, map(percent, biou.tolist()))),
            "num_pixels": total,
        }


def percent(x: float) -> float | None:
    return None if x != x else round(100.0 * x, 4)
