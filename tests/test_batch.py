"""distill/batch.py's cutmix transform: MGD's box masks and the mixed unlabeled view."""

from __future__ import annotations

import pytest
import torch

from distill.batch import BATCH_TRANSFORMS, MIX_MASK, Batch, CutMix, View, draw_box_masks
from distill.errors import DistillError
from distill.losses.mgd import mix


def test_seeded_masks_have_three_boxes_of_a_third_of_an_area_in_the_range():
    height, width, n = 60, 80, 64
    masks, boxes = draw_box_masks(n, (height, width), 3, (0.25, 0.5), torch.Generator().manual_seed(0))
    assert masks.shape == (n, 1, height, width) and boxes.shape == (n, 3, 4)
    assert set(masks.unique().tolist()) <= {0.0, 1.0}
    top, left, bottom, right = boxes.unbind(-1)
    assert (top >= 0).all() and (left >= 0).all() and (bottom <= height).all() and (right <= width).all()  # inside
    box_area = (bottom - top) * (right - left) / (height * width)  # (n, 3), each p / 3 up to rounding
    prop = box_area.sum(1)  # the drawn total p, up to the rounding of each side (1 pixel in 60)
    assert (prop > 0.25 - 0.05).all() and (prop < 0.5 + 0.05).all()
    assert (box_area.max(1).values - box_area.min(1).values < 0.04).all()  # the three are equal thirds
    covered = masks.mean(dim=(1, 2, 3))  # union of the three boxes: at most p, at least the largest box
    assert (covered <= prop + 1e-6).all() and (covered >= box_area.max(1).values - 1e-6).all()
    assert prop.min() < 0.3 and prop.max() > 0.45  # the draw spans the range


def test_the_mask_is_one_exactly_inside_the_boxes():
    masks, boxes = draw_box_masks(4, (20, 30), 3, (0.25, 0.5), torch.Generator().manual_seed(3))
    rebuilt = torch.zeros_like(masks)
    for i, sample in enumerate(boxes.tolist()):
        for top, left, bottom, right in sample:
            rebuilt[i, 0, top:bottom, left:right] = 1
    assert torch.equal(masks, rebuilt)


def test_same_seed_same_masks_other_seed_other_masks():
    draw = lambda seed: draw_box_masks(8, (32, 32), 3, (0.25, 0.5), torch.Generator().manual_seed(seed))[0]  # noqa: E731
    assert torch.equal(draw(1), draw(1)) and not torch.equal(draw(1), draw(2))


def test_cutmix_mixes_the_two_unlabeled_views_with_the_mask_it_stores():
    torch.manual_seed(0)
    u0, u1 = torch.rand(4, 3, 24, 32), torch.rand(4, 3, 24, 32)
    batch = Batch({"labeled": View(torch.rand(4, 3, 24, 32), torch.zeros(4, 24, 32, dtype=torch.long)),
                   "unlabeled0": View(u0), "unlabeled1": View(u1)})
    cutmix = BATCH_TRANSFORMS.get("cutmix")()
    assert cutmix.produces == ("mixed",) and cutmix.consumes == ("unlabeled0", "unlabeled1")
    mixed = cutmix(batch, torch.Generator().manual_seed(5)).view("mixed")
    mask = mixed.extras[MIX_MASK]  # (N, 1, H, W)
    assert mixed.label is None and mask.shape == (4, 1, 24, 32)
    assert torch.equal(mixed.image, (1 - mask) * u0 + mask * u1)
    # the loss side mixes teacher logits with the same function and the same stored mask
    t0, t1 = torch.randn(4, 5, 24, 32), torch.randn(4, 5, 24, 32)
    logits = mix(t0, t1, mask)
    inside = mask.bool().expand_as(logits)
    assert torch.equal(logits[inside], t1[inside]) and torch.equal(logits[~inside], t0[~inside])
    same = torch.Generator().manual_seed(5)
    assert torch.equal(draw_box_masks(4, (24, 32), 3, (0.25, 0.5), same)[0], mask)


def test_cutmix_refuses_bad_settings_and_views_of_two_sizes():
    with pytest.raises(DistillError, match=r"cutmix\.boxes"):
        CutMix(boxes=0)
    with pytest.raises(DistillError, match=r"cutmix\.area"):
        CutMix(area=(0.6, 0.5))
    batch = Batch({"unlabeled0": View(torch.rand(1, 3, 8, 8)), "unlabeled1": View(torch.rand(1, 3, 8, 10))})
    with pytest.raises(DistillError, match="two views of one image size"):
        CutMix()(batch)
