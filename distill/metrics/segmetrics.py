"""Split-level segmentation metrics: mIoU, pixel accuracy, Boundary IoU and trimap IoU.

All accumulators are integer counts in one flat tensor, so summing it across processes gives
exactly the figures one process would get on the whole split.
"""

from __future__ import annotations

import torch
from torch import Tensor

from distill.metrics.boundary import boundary_dilation, inner_boundary, trimap_band
from distill.outputs import IGNORE_INDEX


def iou_from_confusion(conf: Tensor) -> Tensor:
    """Per-class IoU (float64, NaN where the class is absent from prediction and ground truth)."""
    tp = conf.diag().double()
    union = conf.sum(0).double() + conf.sum(1).double() - tp
    return torch.where(union > 0, tp / union.clamp(min=1), torch.full_like(tp, float("nan")))


def nan_mean(values: Tensor) -> float:
    valid = values[~values.isnan()]
    return float(valid.mean()) if valid.numel() else float("nan")


class SegMetrics:
    def __init__(self, num_classes: int, class_names: list[str] | None = None, ignore_index: int = IGNORE_INDEX,
                 boundary_dilation_ratio: float = 0.02, trimap_band: int = 3, device: str | torch.device = "cpu",
                 dilation: int | None = None) -> None:
        self.num_classes = num_classes
        self.class_names = list(class_names or [str(i) for i in range(num_classes)])
        self.ignore_index, self.ratio, self.band, self.dilation = ignore_index, boundary_dilation_ratio, trimap_band, dilation
        self.device = torch.device(device)
        self.reset()

    def reset(self) -> None:
        c = self.num_classes
        self.confusion = torch.zeros(c, c, dtype=torch.int64, device=self.device)
        self.trimap_confusion = torch.zeros(c, c, dtype=torch.int64, device=self.device)
        self.boundary_inter = torch.zeros(c, dtype=torch.int64, device=self.device)
        self.boundary_union = torch.zeros(c, dtype=torch.int64, device=self.device)

    def _confusion(self, pred: Tensor, target: Tensor) -> Tensor:
        c = self.num_classes
        return torch.bincount(target * c + pred, minlength=c * c).reshape(c, c)

    @torch.no_grad()
    def update(self, pred: Tensor, target: Tensor) -> None:
        """pred, target: int64 (N, H, W); target may hold ignore_index."""
        if pred.dtype != torch.int64 or target.dtype != torch.int64:
            raise TypeError(f"pred and target must be int64 class maps, got {pred.dtype} and {target.dtype}")
        if pred.shape != target.shape:
            raise ValueError(f"pred {tuple(pred.shape)} and target {tuple(target.shape)} differ in shape")
        pred, target = pred.to(self.device), target.to(self.device)
        if pred.numel() and (int(pred.min()) < 0 or int(pred.max()) >= self.num_classes):
            raise ValueError(f"predicted class outside 0..{self.num_classes - 1}")
        valid = target != self.ignore_index
        self.confusion += self._confusion(pred[valid], target[valid])
        band = trimap_band(target, self.band) & valid
        self.trimap_confusion += self._confusion(pred[band], target[band])
        self._update_boundary(pred, target, valid)

    def _update_boundary(self, pred: Tensor, target: Tensor, valid: Tensor) -> None:
        n, h, w = target.shape
        d = self.dilation or boundary_dilation(h, w, self.ratio)
        classes = torch.arange(self.num_classes, device=self.device).view(1, -1, 1, 1)
        pred = torch.where(valid, pred, torch.full_like(pred, -1))  # ignore counts as "not c" for both
        for i in range(n):  # one image at a time keeps the (K, H, W) masks small
            gt = target[i : i + 1, None] == classes
            pr = pred[i : i + 1, None] == classes
            gb = inner_boundary(gt, d) & valid[i]
            pb = inner_boundary(pr, d) & valid[i]
            self.boundary_inter += (gb & pb).sum((0, 2, 3))
            self.boundary_union += (gb | pb).sum((0, 2, 3))

    def state_tensor(self) -> Tensor:
        return torch.cat([self.confusion.flatten(), self.trimap_confusion.flatten(), self.boundary_inter, self.boundary_union])

    def load_state_tensor(self, state: Tensor) -> None:
        c = self.num_classes
        state = state.to(self.device, torch.int64)
        self.confusion = state[: c * c].reshape(c, c).clone()
        self.trimap_confusion = state[c * c : 2 * c * c].reshape(c, c).clone()
        self.boundary_inter = state[2 * c * c : 2 * c * c + c].clone()
        self.boundary_union = state[2 * c * c + c :].clone()

    def compute(self) -> dict:
        def pct(x: float) -> float | None:
            return None if x != x else round(100.0 * x, 4)

        iou = iou_from_confusion(self.confusion)
        union = self.boundary_union.double()
        biou = torch.where(union > 0, self.boundary_inter.double() / union.clamp(min=1), torch.full_like(union, float("nan")))
        total = int(self.confusion.sum())
        return {
            "miou": pct(nan_mean(iou)),
            "pixel_acc": pct(float(self.confusion.diag().sum()) / total if total else float("nan")),
            "boundary_iou": pct(nan_mean(biou)),
            "trimap_iou": pct(nan_mean(iou_from_confusion(self.trimap_confusion))),
            "per_class_iou": {n: pct(float(v)) for n, v in zip(self.class_names, iou)},
            "per_class_boundary_iou": {n: pct(float(v)) for n, v in zip(self.class_names, biou)},
            "num_pixels": total,
        }
