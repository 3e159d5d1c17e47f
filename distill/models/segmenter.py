"""A segmentation model assembled from a card: timm encoder, a registered head, named taps."""

from __future__ import annotations

from collections.abc import Collection

import timm
import torch
from torch import Tensor, nn

from distill.cards import ModelCard
from distill.errors import DistillError, did_you_mean
from distill.models.heads import HEADS, AuxHead
from distill.outputs import SegOutput, TapInfo


class SegmentationModel(nn.Module):
    """Input: float images in [0, 1], (N, 3, H, W); the card's normalisation happens inside.

    Output: SegOutput with logits at the head's stride and the requested taps: `stage1..stageK`
    (backbone features), `head` (the feature the classifier reads) and, in training mode with
    `aux_head: true`, `aux_logits`.
    """

    def __init__(self, card: ModelCard, num_classes: int) -> None:
        super().__init__()
        self.card, self.num_classes = card, num_classes
        self.encoder = timm.create_model(card.backbone, features_only=True, output_stride=card.output_stride, pretrained=False)
        channels, strides = self.encoder.feature_info.channels(), self.encoder.feature_info.reduction()
        head_cls = HEADS.get(card.arch, field="arch")
        self.head = head_cls(channels, strides, num_classes, card.head_channels, card.output_stride)
        self.aux = AuxHead(channels[-2], num_classes) if card.aux_head else None
        self.register_buffer("mean", torch.tensor(card.input_mean).view(1, 3, 1, 1), persistent=False)
        self.register_buffer("std", torch.tensor(card.input_std).view(1, 3, 1, 1), persistent=False)
        self._taps = {f"stage{i + 1}": TapInfo(c, s) for i, (c, s) in enumerate(zip(channels, strides))}
        self._taps["head"] = TapInfo(self.head.width, self.head.stride)
        self._taps["logits"] = TapInfo(num_classes, self.head.stride)
        if self.aux is not None:
            self._taps["aux_logits"] = TapInfo(num_classes, strides[-2])

    def refresh_taps(self) -> None:
        """Re-read tap channel counts from a forward pass, after pruning changed them."""
        names = [n for n in self._taps if n.startswith("stage") or n == "head"]
        was_training = self.training
        self.eval()
        with torch.no_grad():
            out = self(torch.zeros(1, 3, 64, 64, device=self.mean.device), taps=names)
        self.train(was_training)
        for name in names:
            self._taps[name] = TapInfo(out.features[name].shape[1], self._taps[name].stride)

    @property
    def taps(self) -> dict[str, TapInfo]:
        return dict(self._taps)

    def check_taps(self, names: Collection[str], where: str | None = None) -> None:
        for name in names:
            if name not in self._taps:
                hint = did_you_mean(name, self._taps) or f"available: {', '.join(self._taps)}"
                raise DistillError(where, "feature", f"a tap of {self.card.name}", got=name, hint=hint)

    def forward(self, images: Tensor, taps: Collection[str] = ()) -> SegOutput:
        feats = self.encoder((images - self.mean) / self.std)
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

    def predict(self, images: Tensor) -> Tensor:
        """Class-index map at input resolution, (N, H, W)."""
        logits = self(images).logits
        logits = nn.functional.interpolate(logits, size=images.shape[-2:], mode="bilinear", align_corners=False)
        return logits.argmax(1)

    def param_groups(self) -> tuple[list[nn.Parameter], list[nn.Parameter]]:
        """(backbone, everything else), for a head learning-rate multiplier."""
        backbone = list(self.encoder.parameters())
        ids = {id(p) for p in backbone}
        return backbone, [p for p in self.parameters() if id(p) not in ids]
