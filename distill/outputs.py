"""What a segmentation model hands to losses and metrics.

Models return logits at their head's stride (not upsampled) plus the named feature taps that
the recipe's losses asked for; losses and metrics decide how to align sizes.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from torch import Tensor

from distill.errors import DistillError, did_you_mean

IGNORE_INDEX = 255  # label value for "not annotated"; excluded from losses and metrics


@dataclass(frozen=True)
class TapInfo:
    """A named intermediate tensor a loss can ask for, as in timm's FeatureInfo."""

    channels: int
    stride: int


@dataclass
class SegOutput:
    logits: Tensor  # (N, C, h, w) at the head's output stride
    features: dict[str, Tensor] = field(default_factory=dict)  # tap name -> (N, C_tap, h_tap, w_tap)

    def tap(self, name: str) -> Tensor:
        if name == "logits":
            return self.logits
        if name not in self.features:
            hint = did_you_mean(name, self.features) or f"recorded: logits, {', '.join(self.features)}"
            raise DistillError(None, "tap", "a feature tap the model records", got=name, hint=hint)
        return self.features[name]


@dataclass
class PairView:
    """Everything a loss may read in one step; teacher tensors are already detached."""

    student: SegOutput
    teacher: SegOutput | None
    labels: Tensor  # (N, H, W) int64 at input resolution, IGNORE_INDEX where unlabeled
