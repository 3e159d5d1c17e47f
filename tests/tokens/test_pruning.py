"""The token-exit rule and canvas of methods.md section 4, on its worked example."""

from __future__ import annotations

import pytest
import torch

from distill.tokens.pruning import exit_mask, score_tokens, write_canvas

# methods.md 4, worked example: one image, 8 active tokens, p0 = 0.9
CONF = torch.tensor([0.95, 0.97, 0.99, 0.50, 0.92, 0.93, 0.20, 0.91])
CLASSES = torch.tensor([0, 0, 0, 1, 1, 0, 0, 1])


def test_worked_example_with_k2_exits_tokens_0_and_5():
    # candidates (> 0.9): 0, 1, 2, 5 of class 0 and 4, 7 of class 1; class 0 keeps its two most
    # confident (2: 0.99, 1: 0.97), so 0 and 5 exit; class 1 has only two and keeps both
    exits = exit_mask(CONF, CLASSES, p0=0.9, k=2)
    assert torch.nonzero(exits).flatten().tolist() == [0, 5]


def test_worked_example_with_k5_nothing_exits():
    # no class has more than k = 5 candidates, so every candidate stays for context
    assert not exit_mask(CONF, CLASSES, p0=0.9, k=5).any()


def test_threshold_is_strict_and_p0_one_exits_nothing():
    conf = torch.tensor([0.9, 0.9, 0.9, 1.0, 1.0, 1.0])
    classes = torch.zeros(6, dtype=torch.long)
    assert not exit_mask(conf, classes, p0=0.9, k=1)[:3].any()  # 0.9 is not > 0.9
    assert not exit_mask(conf, classes, p0=1.0, k=1).any()      # nothing is > 1


def test_top_k_keeps_k_tokens_of_each_class_present():
    torch.manual_seed(0)
    conf = 0.95 + 0.04 * torch.rand(60)  # every token is a candidate
    classes = torch.arange(60) % 3
    for k in (1, 3, 7):
        stay = ~exit_mask(conf, classes, p0=0.9, k=k)
        for c in range(3):
            kept = torch.nonzero(stay & (classes == c)).flatten()
            assert kept.numel() == k
            assert conf[kept].min() >= conf[classes == c].topk(k).values.min()  # the k most confident


def test_score_is_max_softmax_and_its_class():
    logits = torch.tensor([[0.0, 0.0], [torch.log(torch.tensor(3.0)), 0.0]])
    conf, classes = score_tokens(logits)
    assert conf.tolist() == pytest.approx([0.5, 0.75]) and classes.tolist() == [0, 0]


def test_canvas_keeps_exit_head_logits_for_exited_tokens():
    # 4 tokens, 2 classes. Head 1 writes all; token 3 exits there. Head 2 writes tokens 0, 1, 2;
    # token 1 exits there. Head 3 writes tokens 0, 2.
    head = [torch.full((4, 2), 1.0), torch.full((3, 2), 2.0), torch.full((2, 2), 3.0)]
    canvas = write_canvas(torch.zeros(2, 4), head[0], torch.arange(4))
    canvas = write_canvas(canvas, head[1], torch.tensor([0, 1, 2]))
    canvas = write_canvas(canvas, head[2], torch.tensor([0, 2]))
    assert canvas[0].tolist() == [3.0, 2.0, 3.0, 1.0]


def test_canvas_passes_gradient_to_each_head_at_its_own_positions():
    first = torch.ones(3, 2, requires_grad=True)
    later = torch.ones(1, 2, requires_grad=True)
    canvas = write_canvas(write_canvas(torch.zeros(2, 3), first, torch.arange(3)), later, torch.tensor([1]))
    canvas.sum().backward()
    assert first.grad[:, 0].tolist() == [1.0, 0.0, 1.0]  # overwritten at token 1
    assert later.grad.tolist() == [[1.0, 1.0]]
