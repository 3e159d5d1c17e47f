"""The vit family: a plain ViT segmenter with DToP token exits (distill.tokens), behind the
Segmenter protocol, so it trains, distils, saves and is rebuilt from its file like the CNNs."""

from __future__ import annotations

from collections.abc import Collection

import torch.nn.functional as F
from torch import Tensor, nn

from distill.errors import DistillError
from distill.models.base import MODELS, Segmenter
from distill.models.cards import VitCard
from distill.outputs import SegOutput, TapInfo
from distill.tokens.vit import TokenForward, TokenPruningViT


@MODELS.register("vit")
class VitSegmenter(Segmenter):
    """Taps: `logits` (the merged canvas at patch stride) and `aux0..aux{S-2}`, the canvas after
    each auxiliary head (recorded in training, for the CE loss, and whenever asked for)."""

    def __init__(self, card: VitCard, num_classes: int) -> None:
        super().__init__(card, num_classes)
        self.net = TokenPruningViT(card.backbone, num_classes, card.out_indices, self.in_channels, card.drop_path_rate)
        stride = self.net.patch
        self._taps = {"logits": TapInfo(num_classes, stride)}
        self._taps.update({f"aux{i}": TapInfo(num_classes, stride) for i in range(len(card.out_indices) - 1)})
        self._last: tuple[Tensor, int] | None = None  # (B, S) token counts and N of the last forward

    def forward_single(self, images: Tensor, taps: Collection[str] = ()) -> SegOutput:
        x = self.fit_to_patches(self.normalise(images))
        result: TokenForward = self.net(x, self.card.p0, self.card.k)
        self._last = (result.active, result.tokens)  # counts only: no autograd graph is kept alive
        out = SegOutput(result.logits)
        for i, aux in enumerate(result.aux):
            if self.training or f"aux{i}" in taps:
                out.features[f"aux{i}"] = aux
        return out

    def fit_to_patches(self, x: Tensor) -> Tensor:
        """Sides that are not multiples of the patch: resized to the nearest multiple (card odd_size).

        Our choice [I] over padding: the logit grid then covers exactly the image, so the usual
        bilinear upsampling to the labels stays aligned (padding 360 rows to 368 would shift
        the bottom rows by up to half a patch)."""
        patch, (h, w) = self.net.patch, x.shape[-2:]
        if h % patch == 0 and w % patch == 0:
            return x
        if self.card.odd_size == "refuse":
            raise DistillError(None, "input size", f"height and width multiples of the patch size {patch} "
                               "(card odd_size: refuse)", got=[h, w])
        size = (max(patch, round(h / patch) * patch), max(patch, round(w / patch) * patch))
        return F.interpolate(x, size=size, mode="bilinear", align_corners=False)

    def dynamic_stats(self) -> dict[str, list[float]]:
        """Per image of the last forward: the fraction of its tokens that exited at each auxiliary
        head (`exit_fraction_head<i>`), and the fraction that reached the final head (`final_fraction`)."""
        assert self._last is not None, "dynamic_stats() reads the last forward"
        counts, tokens = self._last
        active = counts.double() / tokens  # (B, S)
        stats = {f"exit_fraction_head{i}": (active[:, i] - active[:, i + 1]).tolist() for i in range(active.shape[1] - 1)}
        stats["final_fraction"] = active[:, -1].tolist()
        return stats

    def param_groups(self) -> tuple[list[nn.Parameter], list[nn.Parameter]]:
        backbone = list(self.net.vit.parameters())
        return backbone, list(self.net.heads.parameters())

    def classifier_layers(self) -> list[nn.Module]:
        return [head.classifier for head in self.net.heads]

    def check_exportable(self, path: str | None) -> None:
        """Token exits make the graph depend on the image (per-image token counts, top-k per
        class): a traced export would freeze one image's exits. Our choice: refuse, not export the
        unpruned graph silently, which would compute something else than the file's model."""
        super().check_exportable(path)
        if self.card.p0 < 1.0:
            raise DistillError(path, "card.p0", "1.0 for ONNX export (DToP token exits depend on the input; "
                               "export the stage-1 base model)", got=self.card.p0)

    def tokens_per_stage(self) -> list[list[int]]:
        """(B, S) token counts entering each head in the last forward, for tests and benchmarks."""
        assert self._last is not None
        return self._last[0].tolist()
