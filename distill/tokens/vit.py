"""A plain ViT whose tokens exit early (DToP, Tang et al., ICCV 2023; methods.md section 4).

A timm VisionTransformer without class token runs on the patch grid of the input (position
embeddings interpolated to it by timm's dynamic_img_size). Heads after the blocks named by
`out_indices` cut it into stages; each auxiliary head grades its stage's active tokens and the
confident ones exit (distill.tokens.pruning). Later blocks run on each image's remaining tokens
only, gathered into a shorter sequence, so exited tokens are gone from queries, keys and values
and their compute is really saved (an attention mask would still multiply them). Images keep
different numbers of tokens, so after the first exit each image runs through the blocks on its
own (batch 1); until then, and whenever no token has exited, the batch runs as one tensor.
"""

from __future__ import annotations

from dataclasses import dataclass

import timm
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from distill.errors import DistillError
from distill.tokens.pruning import exit_mask, score_tokens, write_canvas

Feats = Tensor | list[Tensor]  # (B, N, D) while every token is active, else per image (1, n_b, D)


@dataclass
class TokenForward:
    logits: Tensor  # (B, C, h, w): the canvas after the final head, at patch stride
    aux: list[Tensor]  # per auxiliary head, (B, C, h, w): the canvas as it stood after that head
    active: Tensor  # (B, S) int: tokens each image had when it reached each of the S heads
    tokens: int  # N = h * w tokens per image before any exit


class TokenHead(nn.Module):
    """LayerNorm + linear classifier per token: the simplest (Segmenter-linear-style) head. Our
    choice [I] in place of DToP's ATM heads (methods.md section 4 allows linear heads)."""

    def __init__(self, dim: int, num_classes: int) -> None:
        super().__init__()
        self.norm = nn.LayerNorm(dim)
        self.classifier = nn.Linear(dim, num_classes)

    def forward(self, x: Tensor) -> Tensor:
        return self.classifier(self.norm(x))


def create_plain_vit(backbone: str, in_chans: int, drop_path_rate: float) -> nn.Module:
    """A timm ViT with no class or register token, no pooling and no classifier of its own."""
    try:
        vit = timm.create_model(backbone, pretrained=False, num_classes=0, global_pool="", class_token=False,
                                dynamic_img_size=True, in_chans=in_chans, drop_path_rate=drop_path_rate)
    except TypeError:  # a ViT variant without these options (relative-position ViTs)
        raise DistillError(None, "backbone", "a plain timm VisionTransformer (class_token, dynamic_img_size)", got=backbone) from None
    if getattr(vit, "num_prefix_tokens", 0) != 0 or not hasattr(vit, "blocks"):
        raise DistillError(None, "backbone", "a plain timm ViT without prefix tokens (e.g. vit_tiny_patch16_224)", got=backbone)
    vit.norm = nn.Identity()  # each head has its own norm; the unused final norm would be dead weights
    return vit


class TokenPruningViT(nn.Module):
    def __init__(self, backbone: str, num_classes: int, out_indices: list[int], in_chans: int = 3,
                 drop_path_rate: float = 0.0) -> None:
        super().__init__()
        self.vit = create_plain_vit(backbone, in_chans, drop_path_rate)
        depth = len(self.vit.blocks)
        if out_indices[-1] != depth - 1:
            raise DistillError(None, "out_indices", f"increasing block indices ending at the last block, {depth - 1}",
                               got=out_indices)
        self.out_indices = list(out_indices)
        self.heads = nn.ModuleList([TokenHead(self.vit.embed_dim, num_classes) for _ in out_indices])
        self.patch = int(self.vit.patch_embed.patch_size[0])

    def embed(self, x: Tensor) -> tuple[Tensor, int, int]:
        """(B, 3, H, W) -> tokens (B, h*w, D) in row-major grid order, with position embeddings
        interpolated (bicubic) from the pretraining grid to this input's patch grid.

        timm's own resampling antialiases, an operator ONNX lacks; plain bicubic is the same when
        the grid grows and aliases a little when it shrinks (our choice [I], for export)."""
        grid = self.vit.patch_embed(x)  # (B, h, w, D) with dynamic_img_size
        b, h, w, d = grid.shape
        pos = self.vit.pos_embed  # (1, h0 * w0, D)
        h0, w0 = self.vit.patch_embed.grid_size
        if (h, w) != (h0, w0):
            pos = F.interpolate(pos.reshape(1, h0, w0, d).permute(0, 3, 1, 2), size=(h, w), mode="bicubic",
                                align_corners=False).permute(0, 2, 3, 1).reshape(1, h * w, d)
        tokens = self.vit.pos_drop(grid.reshape(b, h * w, d) + pos)
        return self.vit.norm_pre(self.vit.patch_drop(tokens)), h, w

    def forward(self, x: Tensor, p0: float = 1.0, k: int = 5) -> TokenForward:
        feats, h, w = self.embed(x)
        batch, n = feats.shape[:2]
        positions: list[Tensor] | None = None  # None: every token of every image is active
        canvas, aux, active, start = None, [], [], 0
        for stage, (end, head) in enumerate(zip(self.out_indices, self.heads)):
            feats = run_blocks(self.vit.blocks[start:end + 1], feats)
            start = end + 1
            active.append([n] * batch if positions is None else [len(p) for p in positions])
            canvas, logits = grade(head, feats, positions, canvas)
            if stage < len(self.heads) - 1:  # the final head never prunes
                aux.append(canvas.reshape(batch, -1, h, w))
                if p0 < 1.0:
                    feats, positions = drop_exits(feats, positions, logits, p0, k)
        counts = torch.tensor(active, device=x.device).t()  # (B, S)
        return TokenForward(canvas.reshape(batch, -1, h, w), aux, counts, n)


def run_blocks(blocks: nn.Module, feats: Feats) -> Feats:
    return blocks(feats) if isinstance(feats, Tensor) else [blocks(f) for f in feats]


def grade(head: nn.Module, feats: Feats, positions: list[Tensor] | None,
          canvas: Tensor | None) -> tuple[Tensor, list[Tensor]]:
    """The head's logits on each image's active tokens, written into the (B, C, N) canvas.

    Returns the new canvas and the per-image (n_b, C) logits that grade the tokens."""
    if positions is None:  # all active: the head overwrites the whole canvas
        logits = head(feats)  # (B, N, C)
        return logits.transpose(1, 2), list(logits)
    logits = [head(f[0]) for f in feats]
    assert canvas is not None  # the first head always sees every token
    return torch.stack([write_canvas(canvas[i], lg, positions[i]) for i, lg in enumerate(logits)]), logits


@torch.no_grad()
def exits_of(logits: list[Tensor], p0: float, k: int) -> list[Tensor]:
    """Per image, the (n_b,) bool mask of tokens that exit here (decided without gradient)."""
    return [exit_mask(*score_tokens(lg), p0, k) for lg in logits]


def drop_exits(feats: Feats, positions: list[Tensor] | None, logits: list[Tensor], p0: float,
               k: int) -> tuple[Feats, list[Tensor] | None]:
    """Each image's remaining tokens, gathered; unchanged (still one tensor) when none exits."""
    exits = exits_of(logits, p0, k)
    if positions is None:
        if not any(bool(e.any()) for e in exits):
            return feats, None
        positions = [torch.arange(feats.shape[1], device=feats.device)] * feats.shape[0]
        feats = list(feats.split(1))
    keep = [~e for e in exits]
    return [f[:, m] for f, m in zip(feats, keep)], [p[m] for p, m in zip(positions, keep)]
