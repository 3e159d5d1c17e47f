"""distill/losses/mgd.py: the methods.md section 2 worked examples, reads, mixing, gradients."""

from __future__ import annotations

import math

import pytest
import torch

from distill.batch import MIX_MASK, Batch, View
from distill.errors import DistillError
from distill.losses import LOSSES
from distill.losses.mgd import ContentAware, PixelConsistency, SemanticSensitive, region_affinity
from distill.outputs import STUDENT, PairView, Read, SegOutput


def pair_on(view: str, student: SegOutput, teachers: dict[tuple[str, str], SegOutput], images: dict[str, View],
            teacher: str = "main") -> PairView:
    """A PairView over named views; teacher tensors detached, as the engine hands them over."""
    outputs = {(STUDENT, view): student}
    outputs.update({key: SegOutput(o.logits.detach(), {k: v.detach() for k, v in o.features.items()}) for key, o in teachers.items()})
    return PairView(outputs, Batch(images), view, teacher)


def test_the_three_terms_are_registered_with_methods_md_weights():
    assert LOSSES.get("mgd.pixel").default_weight == 1.0
    assert LOSSES.get("mgd.image").default_weight == 0.001  # lambda_1, Cityscapes R18 [C]
    assert LOSSES.get("mgd.region").default_weight == 100.0  # lambda_2, R18 [C]


def test_pixel_consistency_worked_example():
    # student: channel 0 zeros, channel 1 zeros except (1,1) = ln 3; teacher channel 0 [[1,0],[0,0]],
    # channel 1 [[0,1],[1,1]] -> pseudo-label [[0,1],[1,1]]. Three pixels have equal logits: CE ln 2;
    # pixel (1,1) has label 1 with logits (0, ln 3): -ln(3/4). Mean (3 ln 2 + ln(4/3)) / 4 = 0.591781.
    s = torch.zeros(1, 2, 2, 2, requires_grad=True)
    with torch.no_grad():
        s[0, 1, 1, 1] = math.log(3.0)
    t = torch.tensor([[[1.0, 0.0], [0.0, 0.0]], [[0.0, 1.0], [1.0, 1.0]]])[None]
    pair = pair_on("labeled", SegOutput(s), {("main", "labeled"): SegOutput(t)}, {"labeled": View(torch.zeros(1, 3, 2, 2))})
    value = PixelConsistency()(pair)
    assert value.item() == pytest.approx((3 * math.log(2) + math.log(4 / 3)) / 4, abs=1e-6)
    assert value.item() == pytest.approx(0.591781, abs=1e-6)


def test_image_level_worked_example():
    # g_S = GAP(S) = (2.5, 0); g_D = (2, 0.5); sum |g_S - g_D| = 0.5 + 0.5 = 1.0; x lambda_1 -> 0.001
    s = torch.zeros(1, 2, 2, 2, requires_grad=True)
    with torch.no_grad():
        s[0, 0] = torch.tensor([[1.0, 2.0], [3.0, 4.0]])
    t = torch.stack([torch.full((2, 2), 2.0), torch.tensor([[1.0, 1.0], [1.0, -1.0]])])[None]
    pair = pair_on("mixed", SegOutput(s), {("deep", "mixed"): SegOutput(t)}, {"mixed": View(torch.zeros(1, 3, 2, 2))}, "deep")
    value = SemanticSensitive()(pair)
    assert value.item() == pytest.approx(1.0, abs=1e-6)
    assert (SemanticSensitive.default_weight * value).item() == pytest.approx(0.001, abs=1e-9)


def test_image_level_is_a_sum_over_batch_and_classes():
    s = torch.ones(3, 4, 2, 2)
    pair = pair_on("labeled", SegOutput(s), {("main", "labeled"): SegOutput(torch.zeros(3, 4, 2, 2))},
                   {"labeled": View(torch.zeros(3, 3, 2, 2))})
    assert SemanticSensitive()(pair).item() == pytest.approx(12.0)  # 3 images x 4 classes x |1 - 0|


def test_region_level_worked_example():
    # grid 2 on 1x2x2x2 features (no pooling): student regions (1,0),(0,1),(1,0),(0,1), teacher all (1,0)
    # -> A^S has 8 zeros where A^T has ones -> MSE 8/16 = 0.5, x lambda_2 = 100 -> 50.0
    s = torch.tensor([[[1.0, 0.0], [1.0, 0.0]], [[0.0, 1.0], [0.0, 1.0]]])[None].requires_grad_()
    t = torch.stack([torch.ones(2, 2), torch.zeros(2, 2)])[None]
    pair = pair_on("mixed", SegOutput(torch.zeros(1, 2, 2, 2), {"head": s}),
                   {("wide", "mixed"): SegOutput(torch.zeros(1, 2, 2, 2), {"head": t})}, {"mixed": View(torch.zeros(1, 3, 2, 2))},
                   "wide")
    value = ContentAware(grid=2)(pair)
    assert value.item() == pytest.approx(0.5, rel=1e-5)
    assert (ContentAware.default_weight * value).item() == pytest.approx(50.0, rel=1e-5)


def test_region_affinity_has_epsilon_for_all_zero_regions():
    affinity = region_affinity(torch.zeros(1, 4, 7, 7), grid=7)
    assert affinity.shape == (1, 49, 49) and torch.isfinite(affinity).all() and affinity.abs().max() == 0


def test_region_needs_no_adapter_for_other_channel_counts():
    s = torch.randn(2, 16, 14, 14, requires_grad=True)
    t = torch.randn(2, 48, 28, 28)
    pair = pair_on("mixed", SegOutput(torch.zeros(2, 3, 14, 14), {"head": s}),
                   {("wide", "mixed"): SegOutput(torch.zeros(2, 3, 28, 28), {"head": t})}, {"mixed": View(torch.zeros(2, 3, 56, 56))},
                   "wide")
    loss = ContentAware()
    assert list(loss.parameters()) == []
    assert torch.isfinite(loss(pair))


def mixed_pair(teacher_logits_0, teacher_logits_1, mask, student_logits, size):
    images = {"unlabeled0": View(torch.zeros(1, 3, *size)), "unlabeled1": View(torch.zeros(1, 3, *size)),
              "mixed": View(torch.zeros(1, 3, *size), None, {MIX_MASK: mask})}
    teachers = {("wide", "unlabeled0"): SegOutput(teacher_logits_0), ("wide", "unlabeled1"): SegOutput(teacher_logits_1)}
    return pair_on("mixed", SegOutput(student_logits), teachers, images, "wide")


def test_mixed_pixel_loss_reads_the_teacher_on_both_sources_and_the_student_on_the_mix():
    loss = PixelConsistency(mixed_from=("unlabeled0", "unlabeled1"))
    loss.view, loss.teacher_name = "mixed", "wide"
    assert loss.reads() == [Read("student", "mixed", "logits"), Read("wide", "unlabeled0", "logits"),
                            Read("wide", "unlabeled1", "logits")]


def test_mixed_pseudo_labels_follow_the_mask():
    # teacher says class 0 everywhere on u0 and class 1 everywhere on u1; the mask takes u1 in the
    # left column, so the pseudo-label is 1 there and 0 elsewhere
    size = (2, 2)
    t0 = torch.tensor([5.0, 0.0]).view(1, 2, 1, 1).expand(1, 2, *size).contiguous()
    t1 = torch.tensor([0.0, 5.0]).view(1, 2, 1, 1).expand(1, 2, *size).contiguous()
    mask = torch.tensor([[1.0, 0.0], [1.0, 0.0]]).view(1, 1, 2, 2)
    loss = PixelConsistency(mixed_from=("unlabeled0", "unlabeled1"))
    loss.view, loss.teacher_name = "mixed", "wide"
    pair = mixed_pair(t0, t1, mask, torch.zeros(1, 2, *size), size)
    assert loss.pseudo_labels(pair, size).tolist() == [[[1, 0], [1, 0]]]
    # a student that predicts exactly that labelling scores a lower loss than its mirror image
    good = torch.stack([1 - mask[0, 0], mask[0, 0]])[None] * 10
    assert loss(mixed_pair(t0, t1, mask, good, size)) < loss(mixed_pair(t0, t1, mask, good.flip(1), size))


def test_mixed_pixel_loss_upsamples_teacher_and_student_to_the_input():
    loss = PixelConsistency(mixed_from=("unlabeled0", "unlabeled1"))
    loss.view, loss.teacher_name = "mixed", "wide"
    mask = torch.zeros(1, 1, 16, 16)
    mask[..., :8] = 1
    pair = mixed_pair(torch.randn(1, 3, 8, 8), torch.randn(1, 3, 4, 4), mask, torch.randn(1, 3, 4, 4), (16, 16))
    assert loss.pseudo_labels(pair, (16, 16)).shape == (1, 16, 16)
    assert torch.isfinite(loss(pair))


def test_mixed_pixel_loss_refuses_a_view_without_mask_and_a_bad_source_count():
    loss = PixelConsistency(mixed_from=("unlabeled0", "unlabeled1"))
    loss.view, loss.teacher_name = "mixed", "wide"
    pair = mixed_pair(torch.randn(1, 2, 2, 2), torch.randn(1, 2, 2, 2), torch.zeros(1, 1, 2, 2), torch.randn(1, 2, 2, 2), (2, 2))
    pair.batch.views["mixed"].extras.clear()
    with pytest.raises(DistillError, match="cutmix"):
        loss(pair)
    with pytest.raises(DistillError, match=r"mgd\.pixel\.mixed_from"):
        PixelConsistency(mixed_from=("unlabeled0",))
    with pytest.raises(DistillError, match=r"mgd\.region\.grid"):
        ContentAware(grid=0)


@pytest.mark.parametrize("make", ["pixel", "pixel_mixed", "image", "region"])
def test_gradient_reaches_the_student_only(make, student_only_grad):
    torch.manual_seed(0)
    size = (16, 16)
    s_logits = torch.randn(2, 5, 4, 4, requires_grad=True)
    s_head = torch.randn(2, 12, 8, 8, requires_grad=True)
    t_logits = [torch.randn(2, 5, 8, 8, requires_grad=True) for _ in range(3)]
    t_head = torch.randn(2, 20, 8, 8, requires_grad=True)
    mask = (torch.rand(2, 1, *size) > 0.5).float()
    images = {name: View(torch.rand(2, 3, *size)) for name in ("unlabeled0", "unlabeled1")}
    images["mixed"] = View(torch.rand(2, 3, *size), None, {MIX_MASK: mask})
    teachers = {("t", "mixed"): SegOutput(t_logits[0], {"head": t_head}), ("t", "unlabeled0"): SegOutput(t_logits[1]),
                ("t", "unlabeled1"): SegOutput(t_logits[2])}
    loss = {"pixel": PixelConsistency(), "pixel_mixed": PixelConsistency(mixed_from=("unlabeled0", "unlabeled1")),
            "image": SemanticSensitive(), "region": ContentAware()}[make]
    loss.view, loss.teacher_name = "mixed", "t"
    pair = pair_on("mixed", SegOutput(s_logits, {"head": s_head}), teachers, images, "t")
    student_only_grad(loss(pair), [s_logits, s_head], [*t_logits, t_head])
