import math

import pytest
import torch
import torch.nn.functional as F

from distill.losses.ifvd import IntraClassFeatureVariation, prototype_similarity
from distill.outputs import IGNORE_INDEX

# methods.md 5.4: 1x2x1x3 features, labels (0, 0, 1)
S = torch.tensor([[1.0, 0.0, 1.0], [0.0, 1.0, 1.0]]).view(1, 2, 1, 3)  # student (1,0),(0,1),(1,1)
T = torch.tensor([[1.0, 1.0, 1.0], [0.0, 0.0, 1.0]]).view(1, 2, 1, 3)  # teacher (1,0),(1,0),(1,1)
BY_HAND = 2 * (1 - math.sqrt(0.5)) ** 2 / 3


def feature_pair(pair_of, s_feat, t_feat, labels, num_classes=2, tap="head"):
    n, _, h, w = s_feat.shape
    logits = torch.zeros(n, num_classes, h, w)  # only their channel count (K) is read
    return pair_of(logits, logits, labels, s_feats={tap: s_feat}, t_feats={tap: t_feat})


def test_ifvd_by_hand(pair_of, student_only_grad):
    # Student class-0 prototype (0.5, 0.5): cos 0.7071 at pixels 0 and 1; class 1 is one pixel,
    # its own prototype: cos 1. Teacher: cos 1 everywhere. L = ((1 - 0.7071)^2 * 2 + 0) / 3.
    s, t = S.clone().requires_grad_(), T.clone().requires_grad_()
    value = IntraClassFeatureVariation()(feature_pair(pair_of, s, t, torch.tensor([[[0, 0, 1]]])))
    assert BY_HAND == pytest.approx(0.057191, abs=5e-7)
    assert value.item() == pytest.approx(BY_HAND, rel=1e-5)
    student_only_grad(value, [s], [t])


def test_ignore_pixels_contribute_zero_but_count(pair_of):
    s = torch.tensor([[1.0, 0.0, 5.0], [0.0, 1.0, -3.0]]).view(1, 2, 1, 3)
    t = torch.tensor([[1.0, 1.0, 2.0], [0.0, 0.0, 7.0]]).view(1, 2, 1, 3)
    labels = torch.tensor([[[0, 0, 255]]])  # the ignored pixel is its own prototype: cos 1 in both
    value = IntraClassFeatureVariation()(feature_pair(pair_of, s, t, labels))
    assert value.item() == pytest.approx(BY_HAND, rel=1e-5)  # still divided by 3 pixels


def test_prototypes_are_per_image(pair_of):
    # Image 0 is the worked example; image 1 has the teacher's features in both networks. With
    # per-batch prototypes image 1 would change image 0's class-0 prototype.
    s, t = torch.cat([S, T]), torch.cat([T, T])
    labels = torch.tensor([[[0, 0, 1]], [[0, 0, 1]]])
    value = IntraClassFeatureVariation()(feature_pair(pair_of, s, t, labels))
    assert value.item() == pytest.approx(BY_HAND / 2, rel=1e-5)  # same sum over 6 pixels


def test_labels_and_teacher_are_resized_to_the_student(pair_of):
    labels = torch.tensor([[[0, 0, 0, 0, 1, 1], [0, 0, 0, 0, 1, 1]]])  # 2x6 -> nearest 1x3: (0, 0, 1)
    t_big = T.repeat_interleave(2, 2).repeat_interleave(2, 3)  # 2x6; bilinear halving gives T back
    value = IntraClassFeatureVariation()(feature_pair(pair_of, S, t_big, labels))
    assert value.item() == pytest.approx(BY_HAND, rel=1e-5)


def test_channels_may_differ(pair_of, student_only_grad):
    torch.manual_seed(0)
    s = torch.randn(2, 4, 6, 6, requires_grad=True)
    labels = torch.randint(0, 3, (2, 12, 12))
    labels[:, :2] = 255
    loss = IntraClassFeatureVariation(feature="layer4")
    assert loss.needs == ("layer4",)
    pair = feature_pair(pair_of, s, torch.randn(2, 7, 6, 6), labels, num_classes=3, tap="layer4")
    student_only_grad(loss(pair), [s])


def test_prototype_similarity_equals_the_per_pixel_prototype_map():
    """Against the official loop's form: each pixel's class prototype written out as a (N, C, H, W)
    map, F.cosine_similarity with the pixel's feature, 1 at ignore pixels."""
    gen = torch.Generator().manual_seed(0)
    feat = torch.randn(2, 16, 6, 8, generator=gen)
    labels = torch.randint(0, 3, (2, 6, 8), generator=gen)
    labels[0, :2] = IGNORE_INDEX
    valid = labels != IGNORE_INDEX
    centers = feat.clone()
    for n in range(2):
        for k in range(3):
            mask = labels[n] == k
            if mask.any():
                centers[n][:, mask] = (feat[n][:, mask].sum(1) / (mask.sum() + 1e-6))[:, None]
    expected = torch.where(valid, F.cosine_similarity(feat, centers, dim=1), torch.ones(()))
    assert torch.allclose(prototype_similarity(feat, labels, 3), expected, atol=1e-6)
