"""Confusion matrix and IoU by hand."""

from __future__ import annotations

import math

import torch

from distill.metrics.confusion import confusion_matrix, iou_from_confusion, mean_present


def test_confusion_matrix_by_hand():
    target = torch.tensor([0, 0, 1, 1, 2])
    pred = torch.tensor([0, 1, 1, 1, 2])
    # rows = truth, columns = prediction: one 0 read as 1
    assert confusion_matrix(pred, target, 3).tolist() == [[1, 1, 0], [0, 2, 0], [0, 0, 1]]


def test_iou_from_confusion_marks_absent_classes_nan():
    conf = torch.tensor([[1, 1, 0], [0, 2, 0], [0, 0, 0]])
    iou = iou_from_confusion(conf)
    # class 0: 1 / (1 + 0 + 1); class 1: 2 / (2 + 1 + 0); class 2: never seen -> NaN
    assert iou[:2].tolist() == [0.5, 2 / 3] and math.isnan(iou[2])
    assert mean_present(iou) == (0.5 + 2 / 3) / 2
    assert math.isnan(mean_present(torch.full((2,), float("nan"))))
