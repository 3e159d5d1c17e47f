"""The JSON file beside an exported or quantized ONNX file (`FILE.onnx.json`): what the safetensors
student says about itself (card, classes, normalisation, recipe hash, seed, ...) plus what is true of
this file alone (its own metrics, the quantization settings, its source and that file's sha256).

An ONNX graph's own metadata carries only what a runtime needs to feed it (classes, input size,
normalisation: distill.export.onnx.add_metadata). `distill compare` and `distill check` need more:
the metrics of this very file (an int8 graph does not score what its fp32 source scored), and
params and GFLOPs, which cannot be counted on an onnxruntime session. They are measured on the
source model at the graph's input size when the file is written; a quantized graph runs the same
convolutions, in int8.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from distill.io import ModelFile, atomic_write_text, read_format_json, sha256_of

FORMAT = "distill-onnx-sidecar/1"
NEEDED = ("card", "classes", "info", "input_size", "params", "gflops", "source")


def sidecar_path(onnx_path: Path) -> Path:
    return onnx_path.with_name(onnx_path.name + ".json")


def write_sidecar(onnx_path: Path, meta: ModelFile, size: tuple[int, int], metrics: dict[str, Any] | None,
                  counts: tuple[int, float], quantization: dict[str, Any] | None = None) -> Path:
    """Write FILE.onnx.json for `onnx_path`, exported from the model file `meta` at input `size`.
    `metrics` are this file's own (None: not measured; compare then says so); `counts` are the
    source model's (params, GFLOPs at `size`), counted by the exporter, which has the model loaded."""
    params, gflops = counts
    record = {
        "format": FORMAT, "card": meta.card, "classes": meta.classes, "info": meta.info,
        "normalisation": {"mean": list(meta.card.get("input_mean", [])), "std": list(meta.card.get("input_std", [])),
                          "where": "inside the graph: feed RGB in [0, 1]"},
        "input_size": list(size), "params": params, "gflops": round(gflops, 6),
        "metrics": metrics, "quantization": quantization,
        "source": {"path": str(meta.path), "sha256": sha256_of(meta.path)}, "file_sha256": sha256_of(onnx_path),
    }
    path = sidecar_path(onnx_path)
    atomic_write_text(path, json.dumps(record, indent=2, default=str) + "\n")
    return path


def read_sidecar(onnx_path: Path) -> dict[str, Any]:
    """The sidecar of an ONNX file, checked; a missing or foreign one is a one-line error."""
    return read_format_json(sidecar_path(Path(onnx_path)), FORMAT, NEEDED, "the sidecar JSON that distill export / "
                            "distill quantize write beside an ONNX file", "distill export / quantize")
