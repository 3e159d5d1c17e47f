"""Build PairViews from plain tensors, and check where gradients go."""

from __future__ import annotations

import pytest
import torch

from distill.outputs import PairView, SegOutput


def make_pair(s_logits, t_logits=None, labels=None, s_feats=None, t_feats=None) -> PairView:
    """A PairView; teacher tensors are detached here, as the engine hands them to losses."""
    if labels is None:
        n, _, h, w = s_logits.shape
        labels = torch.zeros(n, h, w, dtype=torch.long)
    teacher = None
    if t_logits is not None:
        teacher = SegOutput(t_logits.detach(), {k: v.detach() for k, v in (t_feats or {}).items()})
    return PairView.single(SegOutput(s_logits, dict(s_feats or {})), teacher, labels)


def check_student_only_grad(value, students, teachers=()) -> None:
    """Backpropagate a finite scalar loss: the student tensors it reads get finite gradients,
    not all zero; no teacher tensor gets one."""
    assert value.ndim == 0 and torch.isfinite(value)
    value.backward()
    grads = [s.grad for s in students if s.grad is not None]
    assert grads and all(torch.isfinite(g).all() for g in grads)
    assert sum(float(g.abs().sum()) for g in grads) > 0
    assert all(t.grad is None for t in teachers)


@pytest.fixture()
def pair_of():
    return make_pair


@pytest.fixture()
def student_only_grad():
    return check_student_only_grad


@pytest.fixture()
def example_51():
    """methods.md 5.1: 1x2x2x2, student logits 0, teacher 0 except z_T[0,0,0,0] = ln 3.

    The teacher requires grad so tests can check that none reaches it."""
    s = torch.zeros(1, 2, 2, 2, requires_grad=True)
    t = torch.zeros(1, 2, 2, 2)
    t[0, 0, 0, 0] = torch.log(torch.tensor(3.0))
    return s, t.requires_grad_()
