"""DToP's token-exit rule and prediction canvas (methods.md section 4), on one image's tokens.

Kept apart from the ViT so the rule can be tested on the worked example alone. Everything here
acts on one image: the number of active tokens differs between images after the first exit.
"""

from __future__ import annotations

import torch
from torch import Tensor


def exit_mask(confidence: Tensor, classes: Tensor, p0: float, k: int) -> Tensor:
    """Which active tokens exit at an auxiliary head: (n,) confidences and classes -> (n,) bool.

    Candidates are tokens with confidence > p0 (strictly, as the official prune_head.py compares);
    of each class among the candidates the k most confident stay active to keep context, every
    other candidate exits [C: zbwxp/Dynamic-Token-Pruning prune_head.py; P: Abstract]. Ties in
    confidence are broken by torch.topk's order (our choice [I]; the code does the same).
    """
    candidate = confidence > p0
    exits = candidate.clone()
    for c in torch.unique(classes[candidate]):
        members = torch.nonzero(candidate & (classes == c)).flatten()
        keep = confidence[members].topk(min(k, members.numel())).indices
        exits[members[keep]] = False
    return exits


def score_tokens(logits: Tensor) -> tuple[Tensor, Tensor]:
    """Confidence and class of each token from a linear head's (n, C) logits.

    DToP grades tokens with its ATM heads' mask scores; for a linear head the token score is
    P = softmax_c(logits) (methods.md section 4 [I]), so the confidence is max_c P."""
    confidence, classes = logits.detach().float().softmax(dim=-1).max(dim=-1)
    return confidence, classes


def write_canvas(canvas: Tensor, logits: Tensor, positions: Tensor) -> Tensor:
    """A head's (n, C) logits written at the image's active `positions` of its (C, N) canvas.

    Returns a new canvas (autograd reaches both the earlier heads, through the positions this
    head does not write, and this head); exited tokens keep what the head where they exited wrote.
    """
    return canvas.index_copy(1, positions, logits.t().to(canvas.dtype))
