"""The pruned ViT forward: no exit changes nothing, exits really shorten later blocks' sequences,
images keep their own token counts, and the canvas holds each token's exit-head logits."""

from __future__ import annotations

import pytest
import torch
from torch.utils.flop_counter import FlopCounterMode

import distill.tokens.vit as vit_module
from distill.errors import DistillError

from conftest import block_lengths


def unpruned_logits(model, x):
    """The plain ViT segmenter by hand: every block on every token, then the final head."""
    net = model.net
    tokens, h, w = net.embed(model.normalise(x))
    logits = net.heads[-1](net.vit.blocks(tokens))  # (B, N, C)
    return logits.transpose(1, 2).reshape(x.shape[0], -1, h, w)


def flops_of(model, x) -> int:
    counter = FlopCounterMode(display=False)
    with torch.no_grad(), counter:
        model(x)
    return counter.get_total_flops()


def test_p0_one_exits_nothing_and_equals_the_unpruned_model_exactly(make_vit):
    model = make_vit(p0=1.0)
    x = torch.rand(2, 3, 64, 96)
    with torch.no_grad():
        out, expected = model(x).logits, unpruned_logits(model, x)
    assert torch.equal(out, expected)
    assert model.tokens_per_stage() == [[24, 24, 24], [24, 24, 24]]
    assert model.dynamic_stats() == {"exit_fraction_head0": [0.0, 0.0], "exit_fraction_head1": [0.0, 0.0],
                                     "final_fraction": [1.0, 1.0]}


def test_low_p0_cuts_counted_flops_and_later_blocks_see_fewer_tokens(make_vit):
    x = torch.rand(2, 3, 64, 96)
    full, pruned = make_vit(p0=1.0), make_vit(p0=0.0, k=1)  # p0 0: every token is a candidate
    lengths = block_lengths(pruned)
    assert flops_of(pruned, x) < 0.6 * flops_of(full, x)
    assert lengths[0] == [24] and lengths[1] == [24]  # before the first head: the whole batch, all tokens
    assert all(n <= 4 for block in lengths[2:] for n in block)  # after it: one token per class (4 classes) per image
    assert len(lengths[2]) == 2  # each image on its own sequence
    stats = pruned.dynamic_stats()
    for i in range(2):
        assert stats["exit_fraction_head0"][i] + stats["exit_fraction_head1"][i] + stats["final_fraction"][i] == pytest.approx(1.0)
        assert stats["exit_fraction_head0"][i] >= 20 / 24 - 1e-9


def scripted_exits(plan):
    """exits_of replaced: call j of a forward returns plan[j] (per image, the positions among its
    active tokens that exit)."""
    calls = []

    def exits_of(logits, p0, k):
        masks = []
        for image, lg in enumerate(logits):
            mask = torch.zeros(lg.shape[0], dtype=torch.bool)
            mask[plan[len(calls) % len(plan)][image]] = True
            masks.append(mask)
        calls.append(1)
        return masks
    return exits_of


def test_images_keep_their_own_token_counts_within_a_batch(make_vit, monkeypatch):
    model = make_vit(p0=0.5)
    x = torch.rand(2, 3, 64, 96)
    plan = [[list(range(10)), []], [[], list(range(5))]]  # head 0: image 0 drops 10; head 1: image 1 drops 5
    monkeypatch.setattr(vit_module, "exits_of", scripted_exits(plan))
    with torch.no_grad():
        out = model(x, taps=["aux0", "aux1"])
    assert model.tokens_per_stage() == [[24, 14, 14], [24, 24, 19]]
    final, aux0 = out.logits.flatten(2), out.features["aux0"].flatten(2)
    assert torch.equal(final[0, :, :10], aux0[0, :, :10])  # exited at head 0: head 0's logits stay
    assert not torch.equal(final[0, :, 10:], aux0[0, :, 10:])
    with torch.no_grad():
        monkeypatch.setattr(vit_module, "exits_of", scripted_exits([[plan[0][0]], [plan[1][0]]]))
        alone = model(x[:1]).logits
    torch.testing.assert_close(out.logits[:1], alone, atol=1e-5, rtol=1e-5)


def test_exited_tokens_are_gone_from_keys_and_values(make_vit, monkeypatch):
    model = make_vit(p0=0.5)
    x = torch.rand(1, 3, 64, 96)
    monkeypatch.setattr(vit_module, "exits_of", scripted_exits([[list(range(10))], [[]]]))
    with torch.no_grad():
        out = model(x).logits.flatten(2)  # (1, C, 24)
        net = model.net
        tokens, _, _ = net.embed(model.normalise(x))
        kept = net.vit.blocks[:2](tokens)[:, 10:]  # only the 14 active tokens go on
        alone = net.heads[-1](net.vit.blocks[2:](kept)).transpose(1, 2)
        everyone = net.heads[-1](net.vit.blocks(tokens)).transpose(1, 2)[:, :, 10:]
    torch.testing.assert_close(out[:, :, 10:], alone, atol=1e-5, rtol=1e-5)
    assert (out[:, :, 10:] - everyone).abs().max() > 1e-3  # attending to the exited tokens would differ


def test_training_with_exits_reaches_every_head_and_the_backbone(make_vit):
    model = make_vit(p0=0.0, k=1).train()
    out = model(torch.rand(2, 3, 64, 96))
    assert set(out.features) == {"aux0", "aux1"}  # recorded in training, for the CE loss
    (out.logits.sum() + sum(v.sum() for v in out.features.values())).backward()
    assert all(head.classifier.weight.grad.abs().sum() > 0 for head in model.net.heads)
    assert model.net.vit.blocks[-1].mlp.fc2.weight.grad.abs().sum() > 0


def test_odd_sizes_are_resized_to_patch_multiples_or_refused(make_vit):
    with torch.no_grad():
        assert make_vit()(torch.rand(1, 3, 40, 50)).logits.shape[-2:] == (2, 3)  # 40/16 -> 2, 50/16 -> 3 patches
    with pytest.raises(DistillError, match="multiples of the patch size 16"):
        make_vit(odd_size="refuse")(torch.rand(1, 3, 40, 50))


def test_a_vit_with_prefix_tokens_is_refused(make_vit):
    with pytest.raises(DistillError, match="backbone"):
        make_vit(backbone="test_vit2", out_indices=[7])
