"""SegMetrics by hand on tiny label maps."""

from __future__ import annotations

import json

import pytest
import torch

from distill.metrics import SegMetrics
from distill.metrics.boundary import inner_boundary

L = torch.long


def test_confusion_miou_by_hand():
    target = torch.tensor([[[0, 0, 1], [1, 2, 255]]])
    pred = torch.tensor([[[0, 1, 1], [1, 2, 0]]])
    m = SegMetrics(4, ["a", "b", "c", "d"], dilation=1)
    m.update(pred, target)
    r = m.compute()
    # the ignore pixel (predicted 0) is dropped: 5 labeled pixels
    # class 0: TP 1, FN 1 -> 1/2; class 1: TP 2, FP 1 -> 2/3; class 2: 1/1; class 3 absent -> None
    assert r["per_class_iou"] == {"a": 50.0, "b": pytest.approx(66.6667, abs=1e-4), "c": 100.0, "d": None}
    assert r["miou"] == pytest.approx(100 * (0.5 + 2 / 3 + 1) / 3, abs=1e-4)
    assert r["pixel_acc"] == 80.0  # 4 of the 5 labeled pixels
    assert r["num_pixels"] == 5
    # on a 2-row image every pixel lies within d = 1 of the border, so each mask is all boundary
    # and Boundary IoU equals IoU class by class
    assert r["per_class_boundary_iou"] == r["per_class_iou"] and r["boundary_iou"] == r["miou"]


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
    target[0, 2:5, 2:5] = 1  # 3x3 square of class 1 in a 7x7 image
    return target


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
    # class 1: both boundaries are 8-pixel rings; the squares overlap on columns 3..4 (6 pixels),
    # less each ring's centre, (3,3) and (3,4) -> 4 shared; union 8 + 8 - 4 = 12
    # class 0: truth's background (40) erodes to nothing (every pixel is within 1 of the border or
    # the square), so all 40 are boundary; the prediction's background keeps (1..5, 1) -> 35.
    # Both are background on 49 - 12 = 37 pixels, less those 5 -> 32 shared; union 40 + 35 - 32 = 43
    assert r["per_class_boundary_iou"] == {"0": pytest.approx(100 * 32 / 43, abs=1e-4),
                                           "1": pytest.approx(100 * 4 / 12, abs=1e-4)}
    assert r["boundary_iou"] == pytest.approx(100 * (32 / 43 + 4 / 12) / 2, abs=1e-4)
    # plain IoU: class 1 TP 6, FP 3, FN 3 -> 6/12; class 0 TP 37, FP 3, FN 3 -> 37/43
    assert r["miou"] == pytest.approx(100 * (37 / 43 + 6 / 12) / 2, abs=1e-4)


def test_boundary_iou_matches_per_class_masks():
    # the definition spelled out with one-hot masks and the official erosion, summed over images
    torch.manual_seed(1)
    target = torch.randint(0, 4, (2, 5, 6)).repeat_interleave(4, 1).repeat_interleave(4, 2)
    target[0, :, :3] = 255
    pred = torch.randint(0, 4, (2, 5, 6)).repeat_interleave(4, 1).repeat_interleave(4, 2)
    m = SegMetrics(4, dilation=2)
    m.update(pred, target)
    valid = target != 255
    pred_seen = torch.where(valid, pred, -1)
    for c in range(4):
        g = inner_boundary(target == c, 2) & valid
        p = inner_boundary(pred_seen == c, 2) & valid
        inter, union = int((g & p).sum()), int((g | p).sum())
        assert (int(m.boundary_inter[c]), int(m.boundary_union[c])) == (inter, union)
        assert m.compute()["per_class_boundary_iou"][str(c)] == round(100 * inter / union, 4)


def test_boundary_errors_hurt_boundary_iou_more_than_miou():
    target = torch.zeros(1, 64, 64, dtype=L)
    target[0, 8:56, 8:56] = 1
    pred = target.clone()
    pred[0, 8:56, 55] = 0  # one column of the big square lost; d = round(0.02 * 90.5) = 2
    m = SegMetrics(2)
    m.update(pred, target)
    r = m.compute()
    # mIoU loses ~2.4 points (48 of 2304 pixels); the boundary bands lose a whole side
    assert 100 - r["miou"] < 3
    assert 100 - r["boundary_iou"] > 3 * (100 - r["miou"])


def test_trimap_iou_by_hand():
    target = torch.tensor([[[0, 0, 0, 1, 1, 255]]])
    pred = torch.zeros_like(target)  # class 1 missed entirely
    m = SegMetrics(2, trimap_band=1, dilation=1)
    m.update(pred, target)
    r = m.compute()
    # label edges (ignore counts as a label): columns 2, 3 (0|1) and 4, 5 (1|255); band 1 -> 1..5;
    # column 5 is ignore -> counted: columns 1..4.
    # class 0: TP 2 (1, 2), FP 2 (3, 4) -> 0.5; class 1: FN 2 -> 0; trimap mIoU 25
    assert r["trimap_iou"] == 25.0
    # whole image: class 0 TP 3, FP 2 -> 0.6; class 1 -> 0; mIoU 30
    assert r["miou"] == 30.0


def test_ignore_pixels_are_never_counted():
    target = torch.full((1, 4, 4), 255, dtype=L)
    target[0, :2] = 0
    pred = torch.ones(1, 4, 4, dtype=L)
    pred[0, :2] = 0
    m = SegMetrics(2, dilation=1)
    m.update(pred, target)
    r = m.compute()
    # class 1 is predicted only on ignore pixels, which count as "not 1" for the prediction too
    assert r["miou"] == 100.0 and r["boundary_iou"] == 100.0 and r["trimap_iou"] == 100.0
    assert r["per_class_iou"]["1"] is None and r["per_class_boundary_iou"]["1"] is None
    assert r["num_pixels"] == 8


def test_summed_state_tensors_equal_one_pass():
    torch.manual_seed(0)
    sizes = [(3, 16, 16), (2, 16, 16), (2, 20, 24)]  # two processes; images of two sizes
    batches = []
    for shape in sizes:
        target = torch.randint(0, 3, shape)
        target[:, :2] = 255
        batches.append((torch.randint(0, 3, shape), target))
    whole, a, b, merged = (SegMetrics(3, boundary_dilation_ratio=0.1) for _ in range(4))  # d = 2 or 3
    for pred, target in batches:
        whole.update(pred, target)
    a.update(*batches[0])
    b.update(*batches[1])
    b.update(*batches[2])
    state = a.state_tensor() + b.state_tensor()
    assert state.ndim == 1 and state.dtype == torch.int64
    merged.load_state_tensor(state)
    assert merged.compute() == whole.compute()
    merged.load_state_tensor(state.double())  # a float64 reduction gives the same counts
    assert merged.compute() == whole.compute()
    merged.reset()
    assert merged.compute()["num_pixels"] == 0


def test_compute_is_json_with_none_for_nothing_seen():
    r = SegMetrics(2, ["road", "sky"]).compute()
    assert json.loads(json.dumps(r)) == r
    assert r["miou"] is None and r["boundary_iou"] is None and r["per_class_iou"] == {"road": None, "sky": None}


def test_bad_inputs_raise():
    m = SegMetrics(2)
    zeros = torch.zeros(1, 2, 2, dtype=L)
    with pytest.raises(ValueError, match=r"outside 0\.\.1"):
        m.update(torch.full((1, 2, 2), 2, dtype=L), zeros)
    with pytest.raises(ValueError, match=r"outside 0\.\.1"):
        m.update(torch.full((1, 2, 2), -1, dtype=L), zeros)
    with pytest.raises(ValueError, match="target class"):
        m.update(zeros, torch.full((1, 2, 2), 7, dtype=L))
    with pytest.raises(TypeError, match="int64"):
        m.update(torch.zeros(1, 2, 2), zeros)
    with pytest.raises(ValueError, match=r"\(N, H, W\)"):
        m.update(zeros[0], zeros[0])
    with pytest.raises(ValueError, match="flat with 12 counts"):
        m.load_state_tensor(torch.zeros(11, dtype=L))
    with pytest.raises(ValueError, match="one name per class"):
        SegMetrics(3, ["a", "b"])
    assert m.compute()["num_pixels"] == 0  # failed updates left nothing behind
