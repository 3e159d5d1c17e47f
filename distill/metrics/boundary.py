"""Boundary regions for Boundary IoU and trimap IoU, from windowed max/min so they run on any device.

A (2r+1) square window is separable (rows, then columns), and a width-k window max along one
axis takes O(log k) elementwise ops by doubling spans. At Cityscapes size d = 46, so a plain
93x93 max-pool over one-hot class masks would cost ~C*93*2 comparisons per pixel.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import torch
from torch import Tensor

Combine = Callable[[Tensor, Tensor], Tensor]


def boundary_dilation(height: int, width: int, ratio: float) -> int:
    """Cheng et al. 2021: d = max(1, round(ratio * image diagonal)), as `int(round(...))` in their code."""
    return max(1, int(round(ratio * math.sqrt(height**2 + width**2))))


def window_reduce(x: Tensor, k: int, dim: int, combine: Combine) -> Tensor:
    """combine (max or min) over every width-k window along dim; that dim shrinks by k - 1."""
    span = 1
    while 2 * span <= k:  # afterwards x[i] covers [i, i + span)
        n = x.shape[dim] - span
        x = combine(x.narrow(dim, 0, n), x.narrow(dim, span, n))
        span *= 2
    n = x.shape[dim] - (k - span)  # [i, i + span) and [i + k - span, i + k) cover [i, i + k)
    return combine(x.narrow(dim, 0, n), x.narrow(dim, k - span, n))


def square_reduce(x: Tensor, radius: int, outside: float | bool, combine: Combine) -> Tensor:
    """combine over the (2r+1)x(2r+1) square around each pixel of the last two dims, same size out.

    Pixels outside the image hold `outside`.
    """
    if radius == 0:
        return x
    h, w = x.shape[-2:]
    padded = x.new_full((*x.shape[:-2], h + 2 * radius, w + 2 * radius), outside)
    padded[..., radius : radius + h, radius : radius + w] = x
    k = 2 * radius + 1
    return window_reduce(window_reduce(padded, k, -2, combine), k, -1, combine)


def inner_boundary(masks: Tensor, d: int) -> Tensor:
    """Mask minus its erosion by a (2d+1) square, outside the image counting as 0.

    Matches the official `mask_to_boundary`: pad a 1-pixel zero border, cv2.erode with a 3x3
    kernel d times (= one erosion by a (2d+1) square), crop, subtract. Pixels within d of the
    image border are therefore boundary. masks: bool (..., H, W) -> bool (..., H, W).
    """
    return masks & ~square_reduce(masks, d, False, torch.minimum)


def label_boundary(labels: Tensor, d: int) -> Tensor:
    """Pixels whose (2d+1) square holds another value or leaves the image. (N, H, W) -> bool.

    For any value c, (labels == c) & label_boundary(labels, d) equals inner_boundary(labels == c, d),
    so one integer map gives every class's boundary at once instead of C one-hot masks.
    """
    outside = torch.iinfo(labels.dtype).min  # below every label, so it only ever wins a min
    high = square_reduce(labels, d, outside, torch.maximum)  # never the outside value
    low = square_reduce(labels, d, outside, torch.minimum)
    return high != low


def label_edges(labels: Tensor) -> Tensor:
    """Pixels with a 4-neighbour of a different value (ignore is just another value). (N, H, W) -> bool."""
    edge = torch.zeros_like(labels, dtype=torch.bool)
    dy = labels[:, 1:, :] != labels[:, :-1, :]
    dx = labels[:, :, 1:] != labels[:, :, :-1]
    edge[:, 1:, :] |= dy
    edge[:, :-1, :] |= dy
    edge[:, :, 1:] |= dx
    edge[:, :, :-1] |= dx
    return edge


def trimap_band(labels: Tensor, band: int) -> Tensor:
    """Label edges dilated by a (2*band+1) square (Kohli et al. 2009). (N, H, W) -> bool."""
    return square_reduce(label_edges(labels), band, False, torch.maximum)
