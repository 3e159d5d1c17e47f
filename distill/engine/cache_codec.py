"""How the teacher-output cache stores one image's maps: a tensor dict for a safetensors file.

Each tap is one (C, h, w) tensor in the storage dtype. With top-k, the logits become three
tensors: `logits.values` (k, h, w) in the storage dtype, `logits.index` (k, h, w) class indices
(uint8 up to 256 classes, else int16) and `logits.fill` (1, h, w), the logit every dropped class
gets back: logsumexp(dropped logits) - log(C - k), so the dropped classes together keep their
softmax mass (spread evenly) and none exceeds the k-th logit (see distill.engine.cache).
"""

from __future__ import annotations

import math
from typing import Any

import torch
from torch import Tensor

DTYPES = {"float16": torch.float16, "bfloat16": torch.bfloat16, "float32": torch.float32}


def topk_encode(logits: Tensor, k: int) -> tuple[Tensor, Tensor, Tensor]:
    """(C, h, w) float32 -> values (k, h, w), indices (k, h, w) int64, fill (1, h, w)."""
    values, index = logits.topk(k, dim=0)
    dropped = logits.scatter(0, index, float("-inf"))  # the C - k others
    fill = dropped.logsumexp(0, keepdim=True) - math.log(logits.shape[0] - k)
    return values, index, fill


def topk_decode(values: Tensor, index: Tensor, fill: Tensor, num_classes: int) -> Tensor:
    """The (C, h, w) logits: the kept ones in place, the fill everywhere else."""
    full = fill.float().expand(num_classes, *fill.shape[-2:]).clone()
    return full.scatter_(0, index.long(), values.float())


def encode(maps: dict[str, Tensor], dtype: str, topk: int | None) -> dict[str, Tensor]:
    """Float32 maps by tap -> the tensors of one cache file."""
    store = DTYPES[dtype]
    out = {tap: m.to(store) for tap, m in maps.items() if tap != "logits" or topk is None}
    if topk is not None:
        values, index, fill = topk_encode(maps["logits"], topk)
        index_dtype = torch.uint8 if maps["logits"].shape[0] <= 256 else torch.int16
        out.update({"logits.values": values.to(store), "logits.index": index.to(index_dtype), "logits.fill": fill.to(store)})
    return out


def decode(tensors: dict[str, Tensor], num_classes: int, taps: tuple[str, ...]) -> dict[str, Tensor]:
    """One cache file's tensors -> float32 (C, h, w) maps by tap."""
    maps = {tap: tensors[tap].float() for tap in taps if tap in tensors}
    if "logits" not in maps:
        maps["logits"] = topk_decode(tensors["logits.values"], tensors["logits.index"], tensors["logits.fill"], num_classes)
    missing = [tap for tap in taps if tap not in maps]
    if missing:
        raise KeyError(f"taps {missing} not in the file")
    return maps


def stored_bytes(key: Any, teacher: Any, size: tuple[int, int], strides: dict[str, int]) -> int:
    """About the bytes of one image's file, for an image of `size` (H, W): the disk-space estimate."""
    item = DTYPES[key.dtype].itemsize
    total = 4096  # header and metadata
    for tap in key.taps:
        cells = math.ceil(size[0] / strides[tap]) * math.ceil(size[1] / strides[tap])
        channels = teacher.taps[tap].channels
        if tap == "logits" and key.topk is not None:
            total += cells * (key.topk * item + key.topk * (1 if channels <= 256 else 2) + item)
        else:
            total += cells * channels * item
    return total
