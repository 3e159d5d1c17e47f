"""Boundary regions for Boundary IoU and trimap IoU, with pooling so they run on any device."""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor


def boundary_dilation(height: int, width: int, ratio: float) -> int:
    """Cheng et al. 2021: d = max(1, round(ratio * image diagonal))."""
    return max(1, int(round(ratio * math.sqrt(height**2 + width**2))))


def inner_boundary(masks: Tensor, d: int) -> Tensor:
    """Mask minus its erosion by a (2d+1) square, outside the image counting as 0.

    Matches the official code: pad with a zero border, cv2.erode with a 3x3 kernel d times
    (= one erosion by a (2d+1) square), crop. masks: bool (N, K, H, W).
    """
    outside = F.pad((~masks).float(), (d, d, d, d), value=1.0)
    eroded = 1.0 - F.max_pool2d(outside, kernel_size=2 * d + 1, stride=1)
    return masks & ~eroded.bool()


def label_edges(labels: Tensor) -> Tensor:
    """(N, H, W) -> bool map of pixels with a 4-neighbour of a different value."""
    edge = torch.zeros_like(labels, dtype=torch.bool)
    dy = labels[:, 1:, :] != labels[:, :-1, :]
    dx = labels[:, :, 1:] != labels[:, :, :-1]
    edge[:, 1:, :] |= dy
    edge[:, :-1, :] |= dy
    edge[:, :, 1:] |= dx
    edge[:, :, :-1] |= dx
    return edge


def trimap_band(labels: Tensor, band: int) -> Tensor:
    """Pixels within `band` (square distance) of a ground-truth label edge, (N, H, W) bool."""
    edges = label_edges(labels).float()[:, None]
    return F.max_pool2d(edges, kernel_size=2 * band + 1, stride=1, padding=band)[:, 0].bool()
