"""The CNN family: a timm features_only encoder, a registered head, named taps."""

from __future__ import annotations

from collections.abc import Collection

import timm
from torch import Tensor, nn

from distill.models.cards import CnnCard
from distill.models.base import MODELS, Segmenter
from distill.models.heads import HEADS, AuxHead
from distill.models.pretrained import load_backbone_weights
from distill.outputs import SegOutput, TapInfo


@MODELS.register("cnn")
class SegmentationModel(Segmenter):
    """Taps: `stage1..stageK` (backbone features), `head` (the feature the classifier reads),
    `logits` and, in training mode with `aux_head: true`, `aux_logits`."""

    def __init__(self, card: CnnCard, num_classes: int) -> None:
        super().__init__(card, num_classes)
        self.encoder = timm.create_model(card.backbone, features_only=True, output_stride=card.output_stride,
                                         pretrained=False, in_chans=self.in_channels)
        channels, strides = self.encoder.feature_info.channels(), self.encoder.feature_info.reduction()
        head_cls = HEADS.get(card.arch, field="arch")
        self.head = head_cls(channels, strides, num_classes, card.head_channels, card.output_stride)
        self.aux = AuxHead(channels[-2], num_classes) if card.aux_head else None
        self._taps = {f"stage{i + 1}": TapInfo(c, s) for i, (c, s) in enumerate(zip(channels, strides))}
        self._taps["head"] = TapInfo(self.head.width, self.head.stride)
        self._taps["logits"] = TapInfo(num_classes, self.head.stride)
        if self.aux is not None:
            self._taps["aux_logits"] = TapInfo(num_classes, strides[-2])

    def forward_single(self, images: Tensor, taps: Collection[str] = ()) -> SegOutput:
        feats = self.encoder(self.normalise(images))
        head, logits = self.head(feats)
        out = SegOutput(logits)
        for name in taps:
            if name.startswith("stage"):
                out.features[name] = feats[int(name[5:]) - 1]
            elif name == "head":
                out.features[name] = head
        if self.aux is not None and self.training:
            out.features["aux_logits"] = self.aux(feats[-2])
        return out

    def param_groups(self) -> tuple[list[nn.Parameter], list[nn.Parameter]]:
        backbone = list(self.encoder.parameters())
        ids = {id(p) for p in backbone}
        return backbone, [p for p in self.parameters() if id(p) not in ids]

    def classifier_layers(self) -> list[nn.Module]:
        """Only the heads are searched: an encoder layer may have as many channels as there are
        classes (a squeeze-excite reduction with 8 channels on an 8-class data set)."""
        heads = [self.head] + ([self.aux] if self.aux is not None else [])
        return [m for head in heads for m in head.modules()
                if (isinstance(m, nn.Conv2d) and m.out_channels == self.num_classes)
                or (isinstance(m, nn.Linear) and m.out_features == self.num_classes)]

    def load_pretrained(self, card_file: str | None) -> None:
        load_backbone_weights(self.encoder, self.card.pretrained, self.card.backbone, card_file)
