"""Build PairViews from plain tensors."""

from __future__ import annotations

import pytest
import torch

from distill.outputs import PairView, SegOutput


def make_pair(s_logits, t_logits=None, labels=None, s_feats=None, t_feats=None) -> PairView:
    if labels is None:
        n, _, h, w = s_logits.shape
        labels = torch.zeros(n, h, w, dtype=torch.long)
    teacher = None if t_logits is None else SegOutput(t_logits.detach(), {k: v.detach() for k, v in (t_feats or {}).items()})
    return PairView(SegOutput(s_logits, dict(s_feats or {})), teacher, labels)


@pytest.fixture()
def pair_of():
    return make_pair


@pytest.fixture()
def example_51():
    """methods.md 5.1: 1x2x2x2, student logits 0, teacher 0 except z_T[0,0,0,0] = ln 3."""
    s = torch.zeros(1, 2, 2, 2, requires_grad=True)
    t = torch.zeros(1, 2, 2, 2)
    t[0, 0, 0, 0] = torch.log(torch.tensor(3.0))
    return s, t
