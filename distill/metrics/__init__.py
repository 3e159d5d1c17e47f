"""Segmentation metrics over a whole split (confusion-matrix mIoU, Boundary IoU, trimap IoU)."""

from distill.metrics.confusion import confusion_matrix, iou_from_confusion
from distill.metrics.segmetrics import SegMetrics

__all__ = ["SegMetrics", "confusion_matrix", "iou_from_confusion"]
