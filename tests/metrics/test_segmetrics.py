"""Metrics by hand on tiny label maps."""

from __future__ import annotations

import pytest
import torch

from distill.metrics import SegMetrics
from distill.metrics.boundary import inner_boundary, trimap_band

L = torch.long


def test_confusion_miou_by_hand():
    target = torch.tensor([[[0, 0, 1], [1, 2, 255]]])
    pred = torch.tensor([[[0, 1, 1], [1, 2, 0]]])
    m = SegMetrics(4, ["a", "b", "c", "d"], dilation=1)
    m.update(pred, target)
    r = m.compute()
    # class 0: TP 1, FN 1 -> 1/2; class 1: TP 2, FP 1 -> 2/3; class 2: 1/1; class 3 absent -> None
    assert r["per_class_iou"] == {"a": 50.0, "b": pytest.approx(66.6667, abs=1e-4), "c": 100.0, "d": None}
    assert r["miou"] == pytest.approx(100 * (0.5 + 2 / 3 + 1) / 3, abs=1e-4)
    assert r["pixel_acc"] == 80.0  # 4 of the 5 labeled pixels
    assert r["num_pixels"] == 5


def test_miou_is_over_the_split_not_a_mean_of_images():
    m = SegMetrics(2, dilation=1)
    # image 1: all class 0, predicted right (per-image mIoU 100; class 1 absent)
    m.update(torch.zeros(1, 2, 2, dtype=L), torch.zeros(1, 2, 2, dtype=L))
    # image 2: all class 1, predicted as 0 (per-image mIoU 0)
    m.update(torch.zeros(1, 2, 2, dtype=L), torch.ones(1, 2, 2, dtype=L))
    # split: class 0 TP 4, FP 4 -> 0.5; class 1 TP 0, FN 4 -> 0 -> mIoU 25 (mean of images: 50)
    assert m.compute()["miou"] == 25.0


def square_image() -> torch.Tensor:
    target = torch.zeros(1, 7, 7, dtype=L)
    target[0, 2:5, 2:5] = 1
    return target


def test_inner_boundary_counts_by_hand():
    target = square_image()
    masks = torch.stack([target == 0, target == 1], dim=1)
    band = inner_boundary(masks, 1)
    # the 3x3 square erodes to its centre pixel: 8 boundary pixels
    assert int(band[0, 1].sum()) == 8
    # background: its outer ring (24, the image border erodes) plus the ring around the square (16)
    assert int(band[0, 0].sum()) == 24 + 16


def test_boundary_iou_perfect_and_shifted():
    target = square_image()
    m = SegMetrics(2, dilation=1)
    m.update(target.clone(), target)
    assert m.compute()["boundary_iou"] == 100.0
    shifted = torch.zeros_like(target)
    shifted[0, 2:5, 3:6] = 1  # the square moved one pixel right
    m = SegMetrics(2, dilation=1)
    m.update(shifted, target)
    r = m.compute()
    # class 1: both boundaries are 8-pixel rings (3x3 squares); they share 4 pixels -> 4/12
    assert r["per_class_boundary_iou"]["1"] == pytest.approx(100 * 4 / 12, abs=1e-4)
    assert r["boundary_iou"] < r["miou"]


def test_boundary_errors_hurt_boundary_iou_more_than_miou():
    target = torch.zeros(1, 64, 64, dtype=L)
    target[0, 8:56, 8:56] = 1
    pred = target.clone()
    pred[0, 8:56, 55] = 0  # one column of the big square lost
    m = SegMetrics(2)
    m.update(pred, target)
    r = m.compute()
    assert 100 - r["boundary_iou"] > 3 * (100 - r["miou"])


def test_trimap_band_by_hand():
    target = torch.zeros(1, 1, 6, dtype=L)
    target[0, 0, 3:] = 1
    # edge pixels: columns 2 and 3; band 1 widens to columns 1..4
    assert trimap_band(target, 1)[0, 0].tolist() == [False, True, True, True, True, False]
    pred = torch.zeros_like(target)  # class 1 missed entirely
    m = SegMetrics(2, trimap_band=1, dilation=1)
    m.update(pred, target)
    r = m.compute()
    # in the band: class 0 TP 2, FP 2 -> 0.5; class 1 FN 2 -> 0; trimap mIoU 25
    assert r["trimap_iou"] == 25.0


def test_ignore_pixels_are_never_counted():
    target = torch.full((1, 4, 4), 255, dtype=L)
    target[0, :2] = 0
    pred = torch.ones(1, 4, 4, dtype=L)
    pred[0, :2] = 0
    m = SegMetrics(2, dilation=1)
    m.update(pred, target)
    r = m.compute()
    assert r["miou"] == 100.0 and r["per_class_iou"]["1"] is None and r["boundary_iou"] == 100.0


def test_summed_state_tensors_equal_one_pass():
    torch.manual_seed(0)
    target = torch.randint(0, 3, (4, 16, 16))
    target[:, :2] = 255
    pred = torch.randint(0, 3, (4, 16, 16))
    whole, a, b = SegMetrics(3), SegMetrics(3), SegMetrics(3)
    whole.update(pred, target)
    a.update(pred[:2], target[:2])
    b.update(pred[2:], target[2:])
    merged = SegMetrics(3)
    merged.load_state_tensor(a.state_tensor() + b.state_tensor())
    assert merged.compute() == whole.compute()


def test_bad_inputs_raise():
    m = SegMetrics(2)
    with pytest.raises(ValueError, match="outside 0..1"):
        m.update(torch.full((1, 2, 2), 2, dtype=L), torch.zeros(1, 2, 2, dtype=L))
    with pytest.raises(TypeError):
        m.update(torch.zeros(1, 2, 2), torch.zeros(1, 2, 2, dtype=L))
