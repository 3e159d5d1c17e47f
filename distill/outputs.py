"""What a segmentation model hands to losses and metrics.

Models return logits at their head's stride (not upsampled) plus the named feature taps that
the recipe's losses asked for; losses and metrics decide how to align sizes.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from torch import Tensor

from distill.batch import DEFAULT_VIEW, Batch, View
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


AUX_TAP = re.compile(r"aux_logits|aux\d+")  # auxiliary-head logits: the CNN's one, or one per ViT stage


def aux_logits_of(out: SegOutput) -> list[Tensor]:
    """The auxiliary-head logits a model recorded, by tap name: `aux_logits` (the CNN family's
    one aux head) and `aux0, aux1, ...` (one per auxiliary head of the vit family)."""
    return [out.features[name] for name in sorted(out.features) if AUX_TAP.fullmatch(name)]


@dataclass(frozen=True)
class Read:
    """One tensor a loss reads: which model ("student" or a teacher's name), on which view, which tap."""

    model: str
    view: str
    tap: str


STUDENT = "student"
DEFAULT_TEACHER = "main"


@dataclass
class PairView:
    """Everything a loss may read in one step; teacher tensors are already detached.

    `outputs` holds each forward the engine ran, keyed by (model, view). `student`, `teacher` and
    `labels` are those of the loss's own view and teacher (its recipe entry's `view:` and
    `teacher:`), so a one-view, one-teacher loss reads as the paper's equation; a loss reading more
    asks `output(model, view)` and `batch.view(name)`.
    """

    outputs: dict[tuple[str, str], SegOutput]
    batch: Batch
    view_name: str = DEFAULT_VIEW
    teacher_name: str = DEFAULT_TEACHER

    def output(self, model: str, view: str | None = None) -> SegOutput:
        key = (model, view or self.view_name)
        if key not in self.outputs:
            ran = ", ".join(f"{m}@{v}" for m, v in self.outputs) or "none"
            raise DistillError(None, "reads", "a (model, view) the loss declared in reads()", got=f"{key[0]}@{key[1]}",
                               hint=f"forwards run this step: {ran}")
        return self.outputs[key]

    @property
    def student(self) -> SegOutput:
        return self.output(STUDENT)

    @property
    def teacher(self) -> SegOutput | None:
        return self.outputs.get((self.teacher_name, self.view_name))

    @property
    def labels(self) -> Tensor:
        return self.batch.view(self.view_name).labels()

    @classmethod
    def single(cls, student: SegOutput, teacher: SegOutput | None, labels: Tensor | None) -> PairView:
        """One view, at most one teacher: the shape of most losses (and of their unit tests)."""
        image = labels.new_zeros(()) if labels is not None else student.logits.new_zeros(())
        batch = Batch({DEFAULT_VIEW: View(image, labels)})
        outputs = {(STUDENT, DEFAULT_VIEW): student}
        if teacher is not None:
            outputs[(DEFAULT_TEACHER, DEFAULT_VIEW)] = teacher
        return cls(outputs, batch)
