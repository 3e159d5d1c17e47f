"""Primitives shared by several losses (methods.md section 0)."""

from __future__ import annotations

import torch.nn.functional as F
from torch import Tensor


def pixel_kl(s_logits: Tensor, t_logits: Tensor, tau: float) -> Tensor:
    """tau^2 * KL(softmax_c(t/tau) || softmax_c(s/tau)) per pixel: (N, C, H, W) -> (N, H, W)."""
    s_log = F.log_softmax(s_logits / tau, dim=1)
    t_log = F.log_softmax(t_logits / tau, dim=1)
    return tau**2 * (t_log.exp() * (t_log - s_log)).sum(dim=1)


def channel_kl(s_logits: Tensor, t_logits: Tensor, tau: float) -> Tensor:
    """tau^2/(N*C) * sum over (n, c) of KL between spatial softmaxes: (N, C, H, W) -> scalar."""
    n, c = s_logits.shape[:2]
    s_log = F.log_softmax(s_logits.flatten(2) / tau, dim=2)
    t_log = F.log_softmax(t_logits.flatten(2) / tau, dim=2)
    return tau**2 * (t_log.exp() * (t_log - s_log)).sum() / (n * c)


def resize_like(t: Tensor, size: tuple[int, int]) -> Tensor:
    """Bilinear resize of a teacher map to the student's (H, W); a no-op when sizes match."""
    if tuple(t.shape[-2:]) == tuple(size):
        return t
    return F.interpolate(t, size=size, mode="bilinear", align_corners=False)


def resize_labels(labels: Tensor, size: tuple[int, int]) -> Tensor:
    """Nearest-neighbour resize of (N, H, W) labels; labels are never interpolated bilinearly."""
    if tuple(labels.shape[-2:]) == tuple(size):
        return labels
    return F.interpolate(labels[:, None].float(), size=size, mode="nearest")[:, 0].long()
