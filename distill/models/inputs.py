"""Input adapters: what a model reads from a view of the batch.

A card's `input:` names one. `image` (the default) is the RGB image. `label_channel` appends one
channel made from the view's label, for a teacher that is given privileged information (as LAD's
label-assisted teacher is): the label is an input, so an adapter that reads it refuses an
unlabeled view. The student of a distillation recipe must read `image` (checked at load).
"""

from __future__ import annotations

import torch
from torch import Tensor

from distill.batch import View
from distill.outputs import IGNORE_INDEX
from distill.registry import Registry


class InputAdapter:
    extra_channels = 0  # channels after the 3 RGB ones
    reads_label = False

    def __init__(self, num_classes: int) -> None:
        self.num_classes = num_classes

    def __call__(self, view: View, generator: torch.Generator | None = None) -> Tensor:
        return view.image


INPUTS: Registry[type[InputAdapter]] = Registry("input adapter")
INPUTS.register("image")(InputAdapter)


@INPUTS.register("label_channel")
class LabelChannel(InputAdapter):
    """Image plus one channel: (class index + 1) / K at labeled pixels, 0 where ignored."""

    extra_channels = 1
    reads_label = True

    def __call__(self, view: View, generator: torch.Generator | None = None) -> Tensor:
        label = view.labels("an input adapter that reads the label")
        valid = label != IGNORE_INDEX
        channel = torch.where(valid, (label + 1).float() / self.num_classes, torch.zeros((), device=label.device))
        return torch.cat([view.image, channel.unsqueeze(1).to(view.image.dtype)], dim=1)
