"""LAD (methods.md section 3): the label noising module's codes and the dual-path consistency."""

from __future__ import annotations

import math

import pytest
import torch

from distill.batch import Batch, View
from distill.losses.lad import DualPathConsistency
from distill.models.inputs import INPUTS, NoisedLabelCodes
from distill.outputs import IGNORE_INDEX, STUDENT, PairView, SegOutput


def two_paths(o1: torch.Tensor, o2: torch.Tensor) -> PairView:
    labels = torch.zeros(o1.shape[0], *o1.shape[-2:], dtype=torch.long)
    image = torch.zeros(o1.shape[0], 3, *o1.shape[-2:])
    batch = Batch({"labeled": View(image, labels), "copy": View(image, labels)})
    return PairView({(STUDENT, "labeled"): SegOutput(o1), (STUDENT, "copy"): SegOutput(o2)}, batch)


def example_logits() -> tuple[torch.Tensor, torch.Tensor]:
    """methods.md's example: B=1, C=2, 2x2; o1 = 0 except o1[0,0,0,0] = ln 3, o2 = 0."""
    o1 = torch.zeros(1, 2, 2, 2)
    o1[0, 0, 0, 0] = math.log(3.0)
    return o1.requires_grad_(), torch.zeros(1, 2, 2, 2, requires_grad=True)


@pytest.mark.parametrize("tau, expected, weighted", [(4.0, 0.120680, 0.603400), (1.0, 0.137327, 0.686633)])
def test_consistency_matches_the_worked_example(tau, expected, weighted):
    o1, o2 = example_logits()
    value = DualPathConsistency(tau=tau)(two_paths(o1, o2))
    assert value.item() == pytest.approx(expected, abs=1e-6)
    assert DualPathConsistency.default_weight * value.item() == pytest.approx(weighted, abs=5e-6)


def test_consistency_directions_by_hand():
    # o2 <- o1: target channel 0 is softmax_s(ln3/4, 0, 0, 0) = (a, 1, 1, 1)/(a+3), a = 3^(1/4), and
    # o2 is uniform: KL = sum q ln(4q). o1 <- o2: target uniform, o1's channel 0 is (a,1,1,1)/(a+3):
    # KL = sum 1/4 ln((1/4)/p). Channel 1 agrees in both; L = 16 * KL / (N*C = 2) each way.
    a = 3 ** 0.25
    q = [a / (a + 3)] + [1 / (a + 3)] * 3
    to_o1 = 16 * sum(p * math.log(4 * p) for p in q) / 2
    to_o2 = 16 * sum(0.25 * math.log(0.25 / p) for p in q) / 2
    assert (to_o1, to_o2) == (pytest.approx(0.061572, abs=5e-7), pytest.approx(0.059109, abs=5e-7))
    o1, o2 = example_logits()
    assert DualPathConsistency()(two_paths(o1, o2)).item() == pytest.approx(to_o1 + to_o2, rel=1e-6)


def test_consistency_gradient_reaches_both_paths_through_their_own_term():
    o1, o2 = example_logits()
    DualPathConsistency()(two_paths(o1, o2)).backward()
    assert o1.grad is not None and o2.grad is not None
    assert float(o1.grad.abs().sum()) > 0 and float(o2.grad.abs().sum()) > 0
    # each direction stops its target's gradient: the o1 <- o2 term alone moves o1 only
    o1, o2 = example_logits()
    from distill.losses._functional import channel_kl

    channel_kl(o1, o2.detach(), 4.0).backward()
    assert o2.grad is None and float(o1.grad.abs().sum()) > 0


def test_consistency_reads_its_two_views():
    loss = DualPathConsistency(other="second")
    assert {(r.model, r.view) for r in loss.reads()} == {(STUDENT, "labeled"), (STUDENT, "second")}
    assert loss.teachers_read() == set()


def label_view() -> View:
    return View(torch.zeros(1, 3, 2, 2), torch.tensor([[[0, 1], [2, IGNORE_INDEX]]]))


def test_deterministic_codes_match_the_worked_example():
    adapter = NoisedLabelCodes(num_classes=3, eval_sigma=0.0)
    channel = adapter(label_view(), training=False)[:, 3]
    assert torch.allclose(channel, torch.tensor([[[-20.0, -10.0], [0.0, 10.0]]]), atol=1e-5)
    assert INPUTS.get("lad_label") is NoisedLabelCodes


def test_training_codes_are_per_image_redrawn_and_group_pixels_by_class():
    labels = torch.tensor([[0, 0, 1, 1, IGNORE_INDEX, IGNORE_INDEX]] * 3).view(3, 2, 3)
    view = View(torch.zeros(3, 3, 2, 3), labels)
    adapter = NoisedLabelCodes(num_classes=2, train_sigma=0.0, label_scale=1.0)
    g = torch.Generator().manual_seed(0)
    first, second = adapter(view, g, training=True)[:, 3], adapter(view, g, training=True)[:, 3]
    flat = first.flatten(1)
    assert torch.equal(flat[:, 0], flat[:, 1]) and torch.equal(flat[:, 2], flat[:, 3])  # one code per class
    assert not torch.equal(flat[0], flat[1])  # each image draws its own book
    assert not torch.equal(first, second)  # redrawn on every call (every step, every path)
    # ignore pixels get their own index K: a code of their own, not one of a class
    assert torch.equal(flat[:, 4], flat[:, 5]) and not torch.equal(flat[:, 4], flat[:, 0])


def test_ignore_pixels_never_share_a_class_code_in_the_fixed_book():
    adapter = NoisedLabelCodes(num_classes=11, eval_sigma=0.0, label_scale=1.0)
    book = adapter.code_book(1, False, torch.device("cpu"), None)[0]
    assert book.shape == (12,) and len(set(book.tolist())) == 12
    assert book[11].item() == pytest.approx(0.5) and book[0].item() == pytest.approx(-0.6)


def test_pixel_noise_has_the_stated_sigma():
    labels = torch.zeros(1, 200, 200, dtype=torch.long)
    view = View(torch.zeros(1, 3, 200, 200), labels)
    g = torch.Generator().manual_seed(1)
    eval_channel = NoisedLabelCodes(3, label_scale=1.0)(view, g, training=False)[:, 3]
    assert float(eval_channel.std()) == pytest.approx(0.02, rel=0.05)
    assert float(eval_channel.mean()) == pytest.approx(-0.2, abs=1e-3)  # class 0's fixed code
    train_channel = NoisedLabelCodes(3, label_scale=1.0)(view, g, training=True)[:, 3]
    assert float(train_channel.std()) == pytest.approx(0.03, rel=0.05)  # one code per image: only noise varies


def test_the_label_channel_is_built_from_the_augmented_label():
    """A flipped view's channel is the flip of the original's (the adapter reads the view's own label)."""
    from distill.batch import HorizontalFlip

    labels = torch.tensor([[[0, 1, 2], [2, 1, 0]]])
    batch = HorizontalFlip()(Batch({"labeled": View(torch.rand(1, 3, 2, 3), labels)}))
    adapter = NoisedLabelCodes(3, eval_sigma=0.0)
    original, flipped = (adapter(batch.view(v), training=False)[:, 3] for v in ("labeled", "flipped"))
    assert torch.equal(flipped, original.flip(-1))


def test_an_unlabeled_view_is_refused():
    from distill.errors import DistillError

    with pytest.raises(DistillError, match="labeled view"):
        NoisedLabelCodes(3)(View(torch.zeros(1, 3, 2, 2)), training=True)
