"""BPKD by hand (methods.md section 1 worked examples)."""

import math

import pytest
import torch
import torch.nn.functional as F

from distill.losses.bpkd import BoundaryPrivilegedBodyLoss, BoundaryPrivilegedEdgeLoss, build_edge_masks, window_max
from distill.outputs import IGNORE_INDEX


def two_halves(size: int) -> torch.Tensor:
    labels = torch.zeros(1, size, size, dtype=torch.long)
    labels[0, :, size // 2 :] = 1  # left half class 0, right half class 1
    return labels


def logits_4x4(t_size: int = 4):
    s = torch.zeros(1, 2, 4, 4, requires_grad=True)
    t = torch.zeros(1, 2, t_size, t_size)
    t[0, 0] = 1.0  # teacher: channel 0 = 1 everywhere, channel 1 = 0
    return s, t.requires_grad_()


def kl_binary_to_uniform(z: float) -> float:
    """KL((sigmoid z, 1 - sigmoid z) || (1/2, 1/2)): one edge pixel with masked logits (z, 0) vs (0, 0)."""
    p = 1 / (1 + math.exp(-z))
    return p * math.log(2 * p) + (1 - p) * math.log(2 * (1 - p))


def kl_spatial_to_uniform(values: list[float]) -> float:
    """KL(softmax(values) || uniform) over the positions of one channel."""
    e = [math.exp(v) for v in values]
    return sum(x / sum(e) * math.log(len(e) * x / sum(e)) for x in e)


def test_edge_masks_on_a_hand_drawn_map():
    # 6x6, class 0 with a 2x2 class-1 square at rows 2-3, cols 2-3, and an ignored corner (0, 5).
    labels = torch.zeros(1, 6, 6, dtype=torch.long)
    labels[0, 2:4, 2:4] = 1
    labels[0, 0, 5] = 255
    masks = build_edge_masks(labels, 2, radius=1, logit_size=(6, 6))
    # class 1: dilate = rows 1-4 x cols 1-4 (16 px), erode = nothing (2x2 < 3x3) -> that block.
    block = torch.zeros(6, 6)
    block[1:5, 1:5] = 1
    assert torch.equal(masks[0, 1], block)
    # class 0: dilate = everything; erode drops the block and, since the ignored corner is 0 in
    # the one-hot, also its neighbours (0,4), (1,4), (1,5); E is zeroed on the corner itself.
    expected_0 = block.clone()
    expected_0[0, 4] = expected_0[1, 5] = 1
    assert torch.equal(masks[0, 0], expected_0)
    assert int(masks.sum()) == 16 + 18
    # the image border does not erode: a region touching it has no edge there
    halves = build_edge_masks(two_halves(4), 2, radius=1, logit_size=(4, 4))
    assert torch.equal(halves[0, 0], torch.tensor([0.0, 1.0, 1.0, 0.0]).expand(4, 4))
    assert torch.equal(halves[0, 1], halves[0, 0])


def test_masks_are_averaged_over_each_logit_cell():
    labels = torch.randint(0, 3, (2, 12, 8))
    labels[:, :3] = 255
    full = build_edge_masks(labels, 3, radius=1, logit_size=(12, 8))
    # 8x8 label -> 4x4 logits: M_E = 0.5 on columns 1-2 (half of each pooled cell is edge)
    pooled = build_edge_masks(two_halves(8), 2, 1, (4, 4))
    assert torch.equal(pooled[0, 0], torch.tensor([0.0, 0.5, 0.5, 0.0]).expand(4, 4))
    assert torch.allclose(build_edge_masks(labels, 3, 1, (4, 4)), F.avg_pool2d(full, (3, 2)))  # divisible, non-square
    assert torch.allclose(build_edge_masks(labels, 3, 1, (5, 3)), F.adaptive_avg_pool2d(full, (5, 3)))  # not divisible


@pytest.mark.parametrize(
    "tau, edge, body, total", [(1.0, 0.443776, 0.055472, 23.298255), (4.0, 0.496121, 0.062015, 26.046337)]
)
def test_edge_and_body_by_hand(pair_of, tau, edge, body, total):
    s, t = logits_4x4()
    pair = pair_of(s, t, two_halves(4))
    # M_E = 1 on columns 1-2 for both classes, 0 elsewhere. Edge pixels: masked logits (1, 0) vs
    # (0, 0) -> phi = tau^2 KL(sigmoid(1/tau) || 1/2) (T=1: 0.110944); per class
    # sum(phi * M_E) / n_c = phi; 2 classes x alpha 2 -> L_E = 4 phi.
    # Body: teacher channel 0 masked by M_B is 1 on columns 0, 3 and 0 on columns 1-2; its
    # spatial softmax vs the student's uniform over 16 positions (T=1: 0.110944), channel 1
    # gives 0 -> L_B = tau^2 KL / (N*C = 2).
    by_hand_edge = 4 * tau**2 * kl_binary_to_uniform(1 / tau)
    by_hand_body = tau**2 * kl_spatial_to_uniform([1 / tau, 0, 0, 1 / tau] * 4) / 2
    assert (by_hand_edge, by_hand_body) == (pytest.approx(edge, abs=5e-7), pytest.approx(body, abs=5e-7))
    l_edge = BoundaryPrivilegedEdgeLoss(tau=tau, edge_radius=1)(pair)
    l_body = BoundaryPrivilegedBodyLoss(tau=tau, edge_radius=1)(pair)
    assert l_edge.item() == pytest.approx(by_hand_edge, rel=1e-5)
    assert l_body.item() == pytest.approx(by_hand_body, rel=1e-5)
    assert (50 * l_edge + 20 * l_body).item() == pytest.approx(total, rel=1e-5)


def test_pooling_check(pair_of):
    s, t = logits_4x4()
    pair = pair_of(s, t, two_halves(8))  # 8x8 labels, 4x4 logits: M_E = 0.5 on columns 1-2
    # Edge pixels: masked logits (0.5, 0) -> phi = KL(sigmoid(0.5) || 1/2); per class
    # sum(phi * 0.5) / (8 * 0.5) = phi -> L_E = 4 phi. Body: channel 0 masked by M_B is 1 on
    # columns 0, 3 and 0.5 on columns 1-2 -> L_B = KL(softmax || uniform over 16) / 2.
    by_hand_edge = 4 * kl_binary_to_uniform(0.5)
    by_hand_body = kl_spatial_to_uniform([1, 0.5, 0.5, 1] * 4) / 2
    assert (by_hand_edge, by_hand_body) == (pytest.approx(0.121199, abs=5e-7), pytest.approx(0.015150, abs=5e-7))
    l_edge = BoundaryPrivilegedEdgeLoss(tau=1.0, edge_radius=1)(pair)
    l_body = BoundaryPrivilegedBodyLoss(tau=1.0, edge_radius=1)(pair)
    assert l_edge.item() == pytest.approx(by_hand_edge, rel=1e-5)
    assert l_body.item() == pytest.approx(by_hand_body, rel=1e-5)
    assert (50 * l_edge + 20 * l_body).item() == pytest.approx(6.362971, rel=1e-5)


def test_ignored_regions_add_nothing_to_the_edge_loss(pair_of):
    # 8x8 labels: columns 0-1 class 0, 2-3 class 1, 4-7 ignored; 4x4 logits, so logit columns 2-3
    # cover only ignored pixels: M_E = 0 there for every class, whatever the logits.
    labels = two_halves(4).repeat_interleave(2, 1)  # 8 rows x 4 columns
    labels = torch.cat([labels, torch.full((1, 8, 4), 255)], dim=2)
    masks = build_edge_masks(labels, 2, 1, (4, 4))
    assert masks[..., 2:].sum() == 0 and masks[..., :2].sum() > 0
    torch.manual_seed(0)
    s, t = torch.randn(1, 2, 4, 4, requires_grad=True), torch.randn(1, 2, 4, 4)
    s2, t2 = s.detach().clone(), t.clone()
    s2[..., 2:] += 5 * torch.randn(1, 2, 4, 2)
    t2[..., 2:] -= 5 * torch.randn(1, 2, 4, 2)
    edge = BoundaryPrivilegedEdgeLoss(edge_radius=1)
    value = edge(pair_of(s, t, labels))
    assert value.item() > 0
    assert edge(pair_of(s2, t2, labels)).item() == pytest.approx(value.item(), rel=1e-6)
    value.backward()
    assert s.grad[..., 2:].abs().sum() == 0 and s.grad[..., :2].abs().sum() > 0
    # as in R1, ignored pixels are body (M_B = 1 - 0): the body loss does see them
    body = BoundaryPrivilegedBodyLoss(edge_radius=1)
    assert body(pair_of(s2, t2, labels)).item() != pytest.approx(body(pair_of(s, t, labels)).item(), rel=1e-3)
    # nothing labeled: no edge anywhere, L_E = 0
    unlabeled = torch.full((1, 8, 8), 255)
    assert build_edge_masks(unlabeled, 2, 1, (4, 4)).sum() == 0
    assert edge(pair_of(s, t, unlabeled)).item() == 0.0


def test_teacher_at_another_size_is_resized(pair_of):
    s, t = logits_4x4(t_size=8)  # constant per channel, so the bilinear resize changes nothing
    pair = pair_of(s, t, two_halves(4))
    assert BoundaryPrivilegedEdgeLoss(tau=1.0, edge_radius=1)(pair).item() == pytest.approx(0.443776, abs=5e-7)
    assert BoundaryPrivilegedBodyLoss(tau=1.0, edge_radius=1)(pair).item() == pytest.approx(0.055472, abs=5e-7)


@pytest.mark.parametrize("loss_cls", [BoundaryPrivilegedEdgeLoss, BoundaryPrivilegedBodyLoss])
def test_gradient_reaches_student_only(pair_of, student_only_grad, loss_cls):
    torch.manual_seed(0)
    s = torch.randn(2, 3, 8, 8, requires_grad=True)
    t = torch.randn(2, 3, 16, 16, requires_grad=True)  # teacher at another stride
    labels = torch.randint(0, 3, (2, 32, 32))
    labels[:, :5] = 255
    student_only_grad(loss_cls()(pair_of(s, t, labels)), [s], [t])


def test_radius_is_clamped_on_tiny_labels():
    masks = build_edge_masks(two_halves(4), 2, radius=3, logit_size=(4, 4))  # k = 7 > 4 -> r = 1
    assert torch.equal(masks, build_edge_masks(two_halves(4), 2, radius=1, logit_size=(4, 4)))


@pytest.mark.parametrize("radius", [0, 1, 2, 3, 5])
def test_window_max_is_max_pool_with_zero_outside(radius):
    x = torch.rand(2, 3, 13, 17, generator=torch.Generator().manual_seed(radius))
    expected = F.max_pool2d(x, 2 * radius + 1, stride=1, padding=radius)
    assert torch.equal(window_max(x, radius), expected)


def test_edge_masks_match_the_max_pool_reference_with_ignore_pixels():
    """The shift-based masks against R1's formula written with max_pool2d, on random labels
    with ignore pixels, at label resolution and pooled to a logit grid."""
    gen = torch.Generator().manual_seed(0)
    labels = torch.randint(0, 4, (2, 24, 32), generator=gen)
    labels[torch.rand(2, 24, 32, generator=gen) < 0.1] = IGNORE_INDEX
    valid = (labels != IGNORE_INDEX)[:, None].float()
    onehot = F.one_hot(labels.where(labels != IGNORE_INDEX, 0), 4).permute(0, 3, 1, 2).float() * valid
    dilated = F.max_pool2d(onehot, 7, stride=1, padding=3)
    eroded = 1.0 - F.max_pool2d(F.pad(1.0 - onehot, (3, 3, 3, 3), value=0.0), 7, stride=1)
    reference = (dilated - eroded).clamp(0, 1) * valid
    assert torch.equal(build_edge_masks(labels, 4, 3, (24, 32)), reference)
    assert torch.allclose(build_edge_masks(labels, 4, 3, (6, 8)), F.avg_pool2d(reference, 4))
