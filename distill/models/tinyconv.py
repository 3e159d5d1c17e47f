"""The tinyconv family: strided 3x3 conv-BN-ReLU stages and a 1x1 classifier, nothing else.

A second family behind the same protocol as the CNN segmenter (and a model for tests and CI that
needs no backbone weights): it trains, saves, prunes and is rebuilt from its file alone.
"""

from __future__ import annotations

import math
from collections.abc import Collection

from torch import Tensor, nn

from distill.models.cards import TinyConvCard
from distill.models.base import MODELS, Segmenter
from distill.models.heads import conv_bn_relu
from distill.outputs import SegOutput, TapInfo


def stage(cin: int, cout: int, norm: str) -> nn.Sequential:
    """A stride-2 3x3 conv and a 3x3 conv, each normalised and rectified. BatchNorm's statistics
    are per process under DDP on a CPU (SyncBatchNorm needs a GPU); GroupNorm's are per sample,
    so a group-norm model trains the same with one process or several."""
    if norm == "batch":
        return nn.Sequential(nn.Conv2d(cin, cout, 3, stride=2, padding=1, bias=False), nn.BatchNorm2d(cout), nn.ReLU(inplace=True),
                             conv_bn_relu(cout, cout, 3))
    groups = math.gcd(cout, 8)
    return nn.Sequential(nn.Conv2d(cin, cout, 3, stride=2, padding=1, bias=False), nn.GroupNorm(groups, cout), nn.ReLU(inplace=True),
                         nn.Conv2d(cout, cout, 3, padding=1, bias=False), nn.GroupNorm(groups, cout), nn.ReLU(inplace=True))


@MODELS.register("tinyconv")
class TinyConvSegmenter(Segmenter):
    """Taps: `stage1..stageK` (stride 2^k) and `logits` (at the last stage's stride)."""

    def __init__(self, card: TinyConvCard, num_classes: int) -> None:
        super().__init__(card, num_classes)
        widths = [self.in_channels, *card.widths]
        self.stages = nn.ModuleList([stage(cin, cout, card.norm) for cin, cout in zip(widths, widths[1:])])
        self.classifier = nn.Conv2d(widths[-1], num_classes, 1)
        self._taps = {f"stage{i + 1}": TapInfo(w, 2 ** (i + 1)) for i, w in enumerate(card.widths)}
        self._taps["logits"] = TapInfo(num_classes, 2 ** len(card.widths))

    def forward_single(self, images: Tensor, taps: Collection[str] = ()) -> SegOutput:
        x, feats = self.normalise(images), []
        for stage in self.stages:
            x = stage(x)
            feats.append(x)
        out = SegOutput(self.classifier(x))
        for name in taps:
            if name.startswith("stage"):
                out.features[name] = feats[int(name[5:]) - 1]
        return out
