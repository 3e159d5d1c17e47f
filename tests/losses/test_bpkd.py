"""BPKD by hand (methods.md section 1 worked examples)."""

import pytest
import torch

from distill.losses.bpkd import BoundaryPrivilegedBodyLoss, BoundaryPrivilegedEdgeLoss, build_edge_masks


def two_halves(size: int) -> torch.Tensor:
    labels = torch.zeros(1, size, size, dtype=torch.long)
    labels[0, :, size // 2 :] = 1  # left half class 0, right half class 1
    return labels


def logits_4x4():
    s = torch.zeros(1, 2, 4, 4, requires_grad=True)
    t = torch.zeros(1, 2, 4, 4)
    t[0, 0] = 1.0  # teacher: channel 0 = 1 everywhere, channel 1 = 0
    return s, t


def test_edge_masks_on_a_hand_drawn_map():
    masks = build_edge_masks(two_halves(4), 2, radius=1, logit_size=(4, 4))
    # dilate(G0) = columns 0-2, erode(G0) = column 0 (the border does not erode) -> columns 1-2
    expected = torch.tensor([0.0, 1.0, 1.0, 0.0]).expand(4, 4)
    assert torch.equal(masks[0, 0], expected) and torch.equal(masks[0, 1], expected)
    assert int(masks.sum()) == 16  # 8 edge pixels per class
    # 8x8 labels pooled 2x to 4x4 logits: half of each pooled cell is edge on columns 1-2
    pooled = build_edge_masks(two_halves(8), 2, radius=1, logit_size=(4, 4))
    assert torch.equal(pooled[0, 0], torch.tensor([0.0, 0.5, 0.5, 0.0]).expand(4, 4))


@pytest.mark.parametrize("tau, edge, body", [(1.0, 0.443776, 0.055472), (4.0, 0.496121, 0.062015)])
def test_edge_and_body_by_hand(pair_of, tau, edge, body):
    s, t = logits_4x4()
    pair = pair_of(s, t, two_halves(4))
    # T=1: each edge pixel KL((0.731059, 0.268941) || (0.5, 0.5)) = 0.110944, per class 0.110944,
    # 2 classes x alpha 2 -> 0.443776. Body: channel 0 masked is 1 on columns 0 and 3, its
    # spatial softmax vs uniform gives 0.110944; channel 1 gives 0 -> / (N*C = 2) = 0.055472.
    l_edge = BoundaryPrivilegedEdgeLoss(tau=tau, edge_radius=1)(pair)
    l_body = BoundaryPrivilegedBodyLoss(tau=tau, edge_radius=1)(pair)
    assert l_edge.item() == pytest.approx(edge, rel=1e-5)
    assert l_body.item() == pytest.approx(body, rel=1e-5)
    if tau == 1.0:
        assert (50 * l_edge + 20 * l_body).item() == pytest.approx(23.298255, rel=1e-5)


def test_pooling_check(pair_of):
    s, t = logits_4x4()
    pair = pair_of(s, t, two_halves(8))
    assert BoundaryPrivilegedEdgeLoss(tau=1.0, edge_radius=1)(pair).item() == pytest.approx(0.121199, rel=1e-5)
    assert BoundaryPrivilegedBodyLoss(tau=1.0, edge_radius=1)(pair).item() == pytest.approx(0.015150, rel=1e-4)


def test_ignored_pixels_have_no_edges_and_no_edge_loss(pair_of):
    s, t = logits_4x4()
    labels = torch.full((1, 4, 4), 255)  # nothing labeled: no edge anywhere
    assert build_edge_masks(labels, 2, 1, (4, 4)).sum() == 0
    assert BoundaryPrivilegedEdgeLoss(tau=1.0, edge_radius=1)(pair_of(s, t, labels)).item() == 0.0
    # an ignored band between the halves: the class regions no longer touch there
    labels = two_halves(4)
    labels[0, :, 1:3] = 255
    masks = build_edge_masks(labels, 2, 1, (4, 4))
    assert masks[0, :, :, 1:3].sum() == 0


def test_gradient_flows_and_sizes_may_differ(pair_of):
    s = torch.randn(2, 3, 8, 8, requires_grad=True)
    t = torch.randn(2, 3, 16, 16)  # teacher at another stride
    labels = torch.randint(0, 3, (2, 32, 32))
    pair = pair_of(s, t, labels)
    total = BoundaryPrivilegedEdgeLoss()(pair) + BoundaryPrivilegedBodyLoss()(pair)
    total.backward()
    assert torch.isfinite(s.grad).all() and s.grad.abs().sum() > 0


def test_radius_is_clamped_on_tiny_labels():
    masks = build_edge_masks(two_halves(4), 2, radius=3, logit_size=(4, 4))  # k = 7 > 4 -> r = 1
    assert torch.equal(masks, build_edge_masks(two_halves(4), 2, radius=1, logit_size=(4, 4)))
