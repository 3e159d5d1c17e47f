"""Helpers shared by the pruning tests: tiny models (mobilenetv3_small_100, 16 head channels, no weights
fetched), a model file's info metadata, subprocess environment."""

from __future__ import annotations

import json

import torch
from helpers import cli_env
from safetensors import safe_open

from distill.cards import card_from_dict
from distill.models import SegmentationModel, build_model

CLASSES = ["a", "b", "c"]


def tiny_model(arch: str = "lraspp", aux_head: bool = False, classes: list[str] | None = None,
               backbone: str = "mobilenetv3_small_100", seed: int = 0) -> SegmentationModel:
    classes = classes or CLASSES
    card = card_from_dict({"name": f"tiny_{arch}", "arch": arch, "backbone": backbone, "head_channels": 16,
                           "aux_head": aux_head, "pretrained": "none"}, "test")
    torch.manual_seed(seed)  # the layers' random init: fixed, so every figure below is reproducible
    return build_model(card, len(classes), classes, load_pretrained=False)


def file_info(path) -> dict:
    """The `info` metadata of a distill model file, without building anything."""
    with safe_open(str(path), framework="pt") as handle:
        return json.loads(handle.metadata()["info"])


def params(model: torch.nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


def subprocess_env() -> dict[str, str]:
    """As the CLI tests: no user settings leak in; the same thread count as this process (bit-exact logits)."""
    return cli_env(OMP_NUM_THREADS=str(torch.get_num_threads()))
