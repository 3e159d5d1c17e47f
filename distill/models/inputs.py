"""Input adapters: what a model reads from a view of the batch.

A card's `input:` names one. `image` (the default) is the RGB image. `label_channel` appends one
channel made from the view's label, for a teacher that is given privileged information (as LAD's
label-assisted teacher is): the label is an input, so an adapter that reads it refuses an
unlabeled view. `lad_label` is LAD's label noising module: per-image random codes in training,
a fixed code book with a little noise when the teacher is frozen or evaluated. The student of a distillation recipe must read `image` (checked at load).
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

    def __call__(self, view: View, generator: torch.Generator | None = None, training: bool = False) -> Tensor:
        """`training` is the model's mode: an adapter may noise its input differently in training."""
        return view.image


INPUTS: Registry[type[InputAdapter]] = Registry("input adapter")
INPUTS.register("image")(InputAdapter)


@INPUTS.register("label_channel")
class LabelChannel(InputAdapter):
    """Image plus one channel: (class index + 1) / K at labeled pixels, 0 where ignored."""

    extra_channels = 1
    reads_label = True

    def __call__(self, view: View, generator: torch.Generator | None = None, training: bool = False) -> Tensor:
        label = view.labels("an input adapter that reads the label")
        valid = label != IGNORE_INDEX
        channel = torch.where(valid, (label + 1).float() / self.num_classes, torch.zeros((), device=label.device))
        return torch.cat([view.image, channel.unsqueeze(1).to(view.image.dtype)], dim=1)


@INPUTS.register("lad_label")
class NoisedLabelCodes(InputAdapter):
    """LAD's label noising module (Qiu et al. 2024; methods.md section 3).

    Ignore pixels become index K, so there are K+1 codes. In training every image draws its own
    code book v_k ~ N(0, 1) on every call (so two forwards of one view are two independently
    noised paths), and the channel tells the teacher which pixels belong together, not which
    class they are; per-pixel noise has sigma `train_sigma` (0.03). A frozen or evaluated teacher
    gets the fixed code book c_k = (k - floor((K+1)/2)) / 10 [C for VOC's 22 indices, our
    generalisation to K+1 [I]] with sigma `eval_sigma` (0.02). The channel is scaled by
    `label_scale` (x100 [C], deliberate). It is built from the view's label, i.e. after every
    geometric augmentation of the sample.
    """

    extra_channels = 1
    reads_label = True

    def __init__(self, num_classes: int, label_scale: float = 100.0, train_sigma: float = 0.03,
                 eval_sigma: float = 0.02) -> None:
        super().__init__(num_classes)
        self.label_scale, self.train_sigma, self.eval_sigma = label_scale, train_sigma, eval_sigma

    def code_book(self, images: int, training: bool, device: torch.device, generator: torch.Generator | None) -> Tensor:
        """(N, K+1) codes: random per image in training, the fixed book otherwise."""
        k = self.num_classes + 1
        if training:
            return torch.randn(images, k, generator=generator, device=device)
        fixed = (torch.arange(k, device=device, dtype=torch.float32) - k // 2) / 10
        return fixed.expand(images, k)

    def __call__(self, view: View, generator: torch.Generator | None = None, training: bool = False) -> Tensor:
        label = view.labels("an input adapter that reads the label")
        index = torch.where(label == IGNORE_INDEX, torch.full_like(label, self.num_classes), label).flatten(1)
        codes = self.code_book(label.shape[0], training, label.device, generator)
        channel = codes.gather(1, index).view(label.shape)
        sigma = self.train_sigma if training else self.eval_sigma
        if sigma:
            channel = channel + sigma * torch.randn(channel.shape, generator=generator, device=label.device)
        return torch.cat([view.image, (self.label_scale * channel).unsqueeze(1).to(view.image.dtype)], dim=1)
