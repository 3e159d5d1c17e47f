"""fp16 model files: the same distill model file with its floating tensors in half precision.

Half the bytes, for shipping trained models in the repository (zoo/): loading copies the fp16
values into the fp32 model, so `distill eval` of the file gives the figures of fp16 weights, and
those are the figures to record beside it.
"""

from __future__ import annotations

from pathlib import Path

import torch

from distill.errors import DistillError
from distill.io import read_model_file, save_model_file, sha256_of


def export_fp16(model_path: Path, out: Path | None = None) -> tuple[Path, str, int]:
    """(the fp16 file, its sha256, its size in bytes)."""
    out = out or model_path.with_name(model_path.name.removesuffix(".safetensors") + ".fp16.safetensors")
    if out.resolve() == model_path.resolve():
        raise DistillError("command line", "--out", "a path other than the model file", got=str(out))
    meta, state = read_model_file(model_path)
    half = {k: v.half() if v.is_floating_point() else v for k, v in state.items()}
    info = {k: v for k, v in meta.info.items() if k != "versions"}
    info["stored_as"] = {"dtype": "float16", "source": str(model_path), "source_sha256": sha256_of(model_path)}
    save_model_file(out, {k: v.contiguous() for k, v in half.items()}, meta.card, info)
    if any(torch.isinf(v).any() for v in half.values() if v.is_floating_point()):
        raise DistillError(model_path, None, "weights that fit in float16", got="<values beyond 65504>")
    return out, sha256_of(out), out.stat().st_size
