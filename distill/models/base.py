"""The protocol every model family implements, and the registry of families.

A family is a card type (distill.cards.CARDS) plus a model class here (MODELS), both under the
family's name; model files record the family, so `eval`, `compare`, `check` and `export` rebuild
any of them from the file alone. The engine, the losses and pruning use only what this base
class declares: forward with named taps, tap info, parameter groups, the classifier layers
pruning must keep whole, and predict.
"""

from __future__ import annotations

from collections.abc import Collection

import torch
from torch import Tensor, nn

from distill.batch import View
from distill.models.cards import BaseCard
from distill.errors import DistillError, did_you_mean
from distill.models.inputs import INPUTS, InputAdapter
from distill.models.multiscale import augmented_forward
from distill.outputs import SegOutput, TapInfo
from distill.registry import Registry


def class_map(logits: Tensor) -> Tensor:
    """argmax over classes, (N, C, H, W) -> (N, H, W). Taken on a channels-last copy, where each
    pixel's scores are contiguous: the same indices (first maximum on ties) as `logits.argmax(1)`,
    about 10x faster on a CPU for an NCHW map (1.2 vs 12-14 ms for 11 x 360 x 480)."""
    return logits.contiguous(memory_format=torch.channels_last).argmax(1)


class Segmenter(nn.Module):
    """Input: float images in [0, 1], (N, 3 + extra, H, W); the card's RGB normalisation happens
    inside, extra channels (a label channel) pass through as the input adapter made them.

    Output: SegOutput with logits at the model's output stride and the requested taps."""

    def __init__(self, card: BaseCard, num_classes: int) -> None:
        super().__init__()
        self.card, self.num_classes = card, num_classes
        self.input_adapter: InputAdapter = INPUTS.get(card.input.name, field="input.name")(num_classes, **card.input.params())
        self.register_buffer("mean", torch.tensor(card.input_mean).view(1, 3, 1, 1), persistent=False)
        self.register_buffer("std", torch.tensor(card.input_std).view(1, 3, 1, 1), persistent=False)
        self._taps: dict[str, TapInfo] = {}

    @property
    def in_channels(self) -> int:
        return 3 + self.input_adapter.extra_channels

    def normalise(self, images: Tensor) -> Tensor:
        rgb = (images[:, :3] - self.mean) / self.std
        return rgb if self.in_channels == 3 else torch.cat([rgb, images[:, 3:]], dim=1)  # a constant when traced

    def prepare_input(self, view: View, generator: torch.Generator | None = None) -> Tensor:
        """The tensor this model reads from a view: the image, or image plus channels built from the
        label (which may be noised differently while the model trains, as LAD's are)."""
        return self.input_adapter(view, generator, training=self.training)

    @property
    def taps(self) -> dict[str, TapInfo]:
        return dict(self._taps)

    def check_taps(self, names: Collection[str], where: str | None = None) -> None:
        for name in names:
            if name not in self._taps:
                hint = did_you_mean(name, self._taps) or f"available: {', '.join(self._taps)}"
                raise DistillError(where, "feature", f"a tap of {self.card.name}", got=name, hint=hint)

    def forward(self, images: Tensor, taps: Collection[str] = ()) -> SegOutput:
        """The family's single forward, or in eval mode the card's multi-scale/flip average."""
        spec = self.card.inference
        if self.training or spec.plain:
            return self.forward_single(images, taps)
        return augmented_forward(self.forward_single, images, taps, spec.scales, spec.flip, self._taps["logits"].stride, self.card.name)

    def forward_single(self, images: Tensor, taps: Collection[str] = ()) -> SegOutput:  # pragma: no cover - abstract
        """One forward of the image as given: what each family implements."""
        raise NotImplementedError

    def predict(self, images: Tensor) -> Tensor:
        """Class-index map at input resolution, (N, H, W)."""
        logits = self(images).logits
        logits = nn.functional.interpolate(logits, size=images.shape[-2:], mode="bilinear", align_corners=False)
        return class_map(logits)

    def param_groups(self) -> tuple[list[nn.Parameter], list[nn.Parameter]]:
        """(backbone, everything else), for a head learning-rate multiplier; default: all in the second."""
        return [], list(self.parameters())

    def classifier_layers(self) -> list[nn.Module]:
        """The layers whose outputs are the classes: pruning keeps them whole."""
        return [m for m in self.modules() if (isinstance(m, nn.Conv2d) and m.out_channels == self.num_classes)
                or (isinstance(m, nn.Linear) and m.out_features == self.num_classes)]

    def refresh_taps(self) -> None:
        """Re-read tap channel counts from a forward pass, after pruning changed them."""
        names = [n for n in self._taps if n not in ("logits", "aux_logits")]
        was_training = self.training
        self.eval()
        with torch.no_grad():
            out = self.forward_single(torch.zeros(1, self.in_channels, 64, 64, device=self.mean.device), taps=names)
        self.train(was_training)
        for name in names:
            self._taps[name] = TapInfo(out.features[name].shape[1], self._taps[name].stride)

    def adopt_runtime_settings(self, card: BaseCard) -> None:
        """Take the settings of a card of this family that no weight depends on (its runtime_keys,
        e.g. DToP's p0 and k): a recipe's student card applies them to a student_init model."""
        keys = type(self.card).runtime_keys
        if keys and type(card) is type(self.card):
            self.card = self.card.model_copy(update={key: getattr(card, key) for key in keys})

    def check_exportable(self, path: str | None) -> None:
        """Refuse, as one DistillError, a model whose graph a static export cannot hold: here, one
        whose card averages scales or flips (its resize sizes would be frozen into the graph)."""
        if not self.card.inference.plain:
            raise DistillError(path, "card.inference", "single-scale inference for export (scales [1.0], flip false)",
                               got=self.card.inference.model_dump())

    def load_pretrained(self, card_file: str | None) -> None:
        """Load the card's pretrained weights, where the family has any (default: none)."""


MODELS: Registry[type[Segmenter]] = Registry("model family")
