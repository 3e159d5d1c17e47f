"""Multi-scale and flip inference: one model, several views of each image, one averaged output.

A stronger teacher for free in weights (the strongest teachers of the segmentation literature are
evaluated this way), paid for in forwards: len(scales) x (2 if flip) per image. It is a card
setting (`inference:`), applied whenever the model runs in eval mode, which is how a frozen teacher
and `distill eval` run it; training always sees the plain single-scale forward.

How views are merged [I: our choice, after mmsegmentation's aug_test, which sums the softmax
outputs of every scale and flip]: each view's logits are resized (bilinear) to the logit grid of the
unscaled image, flipped views flipped back, and the softmax probabilities averaged. The result is
returned as log-probabilities, so `softmax(logits)` is exactly the averaged distribution and every
logit loss reads it unchanged (with a temperature T, softmax(log p / T) is that distribution
sharpened or flattened as usual). Feature taps have no such average: only logit losses can read an
augmented teacher.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Collection

import torch
import torch.nn.functional as F
from torch import Tensor

from distill.errors import DistillError
from distill.outputs import SegOutput

SingleForward = Callable[[Tensor, Collection[str]], SegOutput]


def augmented_forward(forward: SingleForward, images: Tensor, taps: Collection[str], scales: list[float], flip: bool,
                      stride: int, card_name: str) -> SegOutput:
    """Mean softmax over scales x flips, as log-probabilities on the unscaled image's logit grid."""
    features = [t for t in taps if t != "logits"]
    if features:
        raise DistillError(None, "inference", f"single-scale inference ({card_name} averages logits over scales/flips; "
                           "only logit losses can read it)", got=f"a loss reading the feature taps {features}")
    h, w = images.shape[-2:]
    grid = (math.ceil(h / stride), math.ceil(w / stride))
    total = None
    for scale in scales:
        size = (max(1, round(h * scale)), max(1, round(w * scale)))
        scaled = images if size == (h, w) else F.interpolate(images, size=size, mode="bilinear", align_corners=False)
        for flipped in (False, True) if flip else (False,):
            x = scaled.flip(-1) if flipped else scaled
            logits = forward(x, ()).logits.float()
            if flipped:
                logits = logits.flip(-1)
            if tuple(logits.shape[-2:]) != grid:
                logits = F.interpolate(logits, size=grid, mode="bilinear", align_corners=False)
            probs = logits.softmax(1)
            total = probs if total is None else total + probs
    views = len(scales) * (2 if flip else 1)
    return SegOutput(torch.log((total / views).clamp_min(1e-12)))
