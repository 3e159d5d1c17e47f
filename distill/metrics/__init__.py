"""Segmentation metrics over a whole split (confusion-matrix mIoU, Boundary IoU, trimap IoU)."""

from distill.metrics.segmetrics import SegMetrics, iou_from_confusion

__all__ = ["SegMetrics", "iou_from_confusion"]
