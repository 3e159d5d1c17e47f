"""Boundary bands by hand and against a slow copy of the official erosion."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from distill.metrics.boundary import (
    boundary_dilation,
    inner_boundary,
    label_boundary,
    label_edges,
    trimap_band,
    window_reduce,
)


def official_boundary(mask: np.ndarray, d: int) -> np.ndarray:
    """Cheng et al.'s mask_to_boundary without cv2: 1-pixel zero border, then d 3x3 erosions.

    cv2.erode's default border counts outside the (padded) array as 1, hence mode='constant', 1.
    """
    h, w = mask.shape
    m = np.pad(mask.astype(np.uint8), 1, constant_values=0)
    for _ in range(d):
        p = np.pad(m, 1, constant_values=1)
        m = np.min([p[i : i + m.shape[0], j : j + m.shape[1]] for i in range(3) for j in range(3)], axis=0)
    return mask.astype(bool) & ~m[1 : h + 1, 1 : w + 1].astype(bool)


def square(size: int, lo: int, hi: int) -> torch.Tensor:
    """(1, size, size) labels: class 1 on rows and columns lo..hi-1, class 0 elsewhere."""
    labels = torch.zeros(1, size, size, dtype=torch.long)
    labels[0, lo:hi, lo:hi] = 1
    return labels


def test_boundary_dilation_follows_the_diagonal():
    assert boundary_dilation(360, 480, 0.02) == 12  # diagonal 600
    assert boundary_dilation(1024, 2048, 0.02) == 46  # 0.02 * 2289.7 = 45.8
    assert boundary_dilation(7, 7, 0.02) == 1  # 0.2 rounds to 0, floored at 1


def test_window_reduce_by_hand():
    x = torch.tensor([3, 1, 4, 1, 5, 9, 2, 6])
    assert window_reduce(x, 1, 0, torch.maximum).tolist() == x.tolist()
    assert window_reduce(x, 3, 0, torch.maximum).tolist() == [4, 4, 5, 9, 9, 9]
    assert window_reduce(x, 5, 0, torch.minimum).tolist() == [1, 1, 1, 1]  # 5 = span 4 + overlap
    assert window_reduce(x, 8, 0, torch.maximum).tolist() == [9]


def test_inner_boundary_by_hand():
    labels = square(9, 3, 6)  # 3x3 square of class 1 in the middle of a 9x9 image
    masks = torch.stack([labels == 0, labels == 1], dim=1)  # (1, 2, 9, 9)
    band = inner_boundary(masks, 1)
    # the square erodes to its centre pixel: its 8-pixel ring is boundary
    assert int(band[0, 1].sum()) == 8 and not band[0, 1, 4, 4]
    # background (72 pixels) survives erosion on rows/cols 1..7 (7x7) outside the square grown
    # by 1 (rows/cols 2..6, 5x5): 49 - 25 = 24 survive, so 72 - 24 = 48 boundary pixels =
    # the image border ring (32) + the ring touching the square (16)
    assert int(band[0, 0].sum()) == 32 + 16
    assert band[0, 0, 0].all() and band[0, 0, 2, 2:7].all() and not band[0, 0, 1, 1]
    # d = 2: the square erodes away entirely (9) and no background pixel survives (72)
    band = inner_boundary(masks, 2)
    assert int(band[0, 1].sum()) == 9 and int(band[0, 0].sum()) == 72


@pytest.mark.parametrize("d", [1, 2, 4])
def test_inner_boundary_matches_official_erosion(d):
    rng = np.random.default_rng(d)
    blobs = np.zeros((2, 4, 29, 37), dtype=bool)  # unions of rectangles, so some survive erosion
    for mask in blobs.reshape(-1, 29, 37):
        for top, left, h, w in rng.integers([0, 0, 2, 2], [29, 37, 24, 30], size=(3, 4)):
            mask[top : top + h, left : left + w] = True
        mask ^= rng.random(mask.shape) < 0.005  # a few holes and specks
    got = inner_boundary(torch.from_numpy(blobs), d).numpy()
    want = np.stack([np.stack([official_boundary(m, d) for m in image]) for image in blobs])
    assert (got == want).all()
    assert 0 < got.sum() < blobs.sum()  # neither empty nor the whole mask


@pytest.mark.parametrize("d", [1, 2, 4])
def test_label_boundary_equals_one_hot_boundaries(d):
    torch.manual_seed(d)
    coarse = torch.randint(-1, 4, (3, 4, 4))  # -1 stands for masked-out predictions
    labels = coarse.repeat_interleave(10, 1).repeat_interleave(10, 2)[:, :37, :38]
    labels[0, :3] = 255
    labels[1] = torch.randint(0, 2, (37, 38))  # salt and pepper: nearly all boundary
    edge = label_boundary(labels, d)
    for c in [-1, 0, 1, 2, 3, 255]:
        mask = labels == c
        assert torch.equal(mask & edge, inner_boundary(mask, d))
    assert 0 < int(edge.sum()) < edge.numel()


def test_label_edges_treat_ignore_as_a_label():
    labels = torch.tensor([[[0, 0, 0], [0, 0, 255], [0, 0, 0]]])
    # the ignore pixel and its three 4-neighbours differ from a neighbour
    assert label_edges(labels)[0].int().tolist() == [[0, 0, 1], [0, 1, 1], [0, 0, 1]]


def test_trimap_band_by_hand():
    labels = torch.zeros(1, 1, 8, dtype=torch.long)
    labels[0, 0, 4:] = 1
    # edge pixels: columns 3 and 4; band 1 widens to 2..5, band 2 to 1..6, band 0 keeps the edges
    assert trimap_band(labels, 0)[0, 0].nonzero().flatten().tolist() == [3, 4]
    assert trimap_band(labels, 1)[0, 0].nonzero().flatten().tolist() == [2, 3, 4, 5]
    assert trimap_band(labels, 2)[0, 0].nonzero().flatten().tolist() == [1, 2, 3, 4, 5, 6]
    # in 2D the band grows as a square: one odd pixel at the corner of a 5x5 image, band 1
    corner = torch.zeros(1, 5, 5, dtype=torch.long)
    corner[0, 0, 0] = 1
    # edges: (0,0), (0,1), (1,0); grown by a 3x3 square: rows 0..2 x cols 0..1 and rows 0..1 x col 2
    assert int(trimap_band(corner, 1).sum()) == 6 + 2
