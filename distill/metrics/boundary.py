"""Boundary regions for Boundary IoU and trimap IoU, built from max-pooling so they run on any device.

A square max-pool is separable (a (k, 1) pool then a (1, k) pool gives the same result), which
keeps the cost at O(k) per pixel: at Cityscapes size d = 46, so the square kernel would be 93x93.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor


def boundary_dilation(height: int, width: int, ratio: float) -> int:
    """Cheng et al. 2021: d = max(1, round(ratio * image diagonal)), as `int(round(...))` in their code."""
    return max(1, int(round(ratio * math.sqrt(height**2 + width**2))))


def square_max(x: Tensor, radius: int, pad_value: float | None = None) -> Tensor:
    """Max over a (2r+1)x(2r+1) window, same size out. x: float (N, K, H, W).

    pad_value=None leaves outside the image out of the max; otherwise outside holds pad_value.
    """
    if radius == 0:
        return x
    k = 2 * radius + 1
    if pad_value is None:
        x = F.max_pool2d(x, (k, 1), stride=1, padding=(radius, 0))
        return F.max_pool2d(x, (1, k), stride=1, padding=(0, radius))
    x = F.pad(x, (radius, radius, radius, radius), value=pad_value)
    return F.max_pool2d(F.max_pool2d(x, (k, 1), stride=1), (1, k), stride=1)


def inner_boundary(masks: Tensor, d: int) -> Tensor:
    """Mask minus its erosion by a (2d+1) square, outside the image counting as 0.

    Matches the official `mask_to_boundary`: pad a 1-pixel zero border, cv2.erode with a 3x3
    kernel d times (= one erosion by a (2d+1) square), crop, subtract. Pixels within d of the
    image border are therefore boundary. masks: bool (N, K, H, W) -> bool (N, K, H, W).
    """
    background = (~masks).float()
    eroded = square_max(background, d, pad_value=1.0) == 0  # erode(M) = 1 - dilate(1 - M)
    return masks & ~eroded


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
    edges = label_edges(labels).float()[:, None]
    return square_max(edges, band)[:, 0] > 0
