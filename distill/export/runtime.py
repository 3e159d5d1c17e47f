"""`distill eval FILE.onnx`: an ONNX file written by `distill export` or `distill quantize`, scored
with onnxruntime (CPU) through the same evaluation code as a model file.

The file's metadata says what the graph needs: classes, the input size it was exported at, and
that the card's normalisation is inside the graph, so images are fed as RGB in [0, 1], resized to
that size exactly as a model file's are at its eval size (engine/evaluate.predict_batch).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from distill.batch import View
from distill.data import build_dataset
from distill.engine.scoring import check_data_choice
from distill.errors import DistillError
from distill.export.onnx import ort_session, require_runtime
from distill.models.base import class_map
from distill.models.inputs import INPUTS
from distill.outputs import SegOutput

EXPECTED = "an ONNX file written by distill export or distill quantize (metadata: classes, input_size)"


class OnnxSegmenter(nn.Module):
    """An onnxruntime session behind the part of the Segmenter interface `evaluate` uses:
    images (N, 3, H, W) in [0, 1] -> SegOutput with logits (N, C, h, w)."""

    def __init__(self, session: Any, num_classes: int) -> None:
        super().__init__()
        self.session = session
        self.input_adapter = INPUTS.get("image")(num_classes)  # an exported graph reads the image alone

    def prepare_input(self, view: View, generator: torch.Generator | None = None) -> Tensor:
        return view.image

    def forward(self, images: Tensor) -> SegOutput:
        # one image per run: an export without --dynamic-size is fixed to batch 1
        logits = [self.session.run(["logits"], {"images": image[None].cpu().numpy()})[0] for image in images]
        return SegOutput(torch.from_numpy(np.concatenate(logits)).to(images.device))

    def predict(self, images: Tensor) -> Tensor:
        """Class-index map at input resolution, as a Segmenter's predict (what latency is timed on)."""
        logits = F.interpolate(self(images).logits, size=images.shape[-2:], mode="bilinear", align_corners=False)
        return class_map(logits)


def read_onnx_metadata(onnx: Any, path: Path) -> dict[str, Any]:
    """classes, input_size (and dataset, data_options, quantization when present), JSON-decoded."""
    if not path.is_file():
        raise DistillError(path, None, "an existing ONNX file", got="<missing>")
    try:
        props = {p.key: p.value for p in onnx.load(str(path), load_external_data=False).metadata_props}
    except Exception as exc:  # onnx raises DecodeError and others for a file that is not ONNX
        raise DistillError(path, None, EXPECTED, got=f"<{type(exc).__name__}>") from None
    if "classes" not in props or "input_size" not in props:
        raise DistillError(path, "metadata", EXPECTED, got=f"<keys: {', '.join(sorted(props)) or 'none'}>")
    if props.get("normalisation") != "inside the graph":
        raise DistillError(path, "metadata.normalisation", "'inside the graph'", got=props.get("normalisation"))
    return {key: json.loads(props[key]) for key in ("classes", "input_size", "dataset", "data_options", "quantization")
            if key in props}


def score_onnx_file(path: Path, data: str, root: str | None, split: str, show_progress: bool = True) -> dict[str, Any]:
    """mIoU and the other metrics of an ONNX file on a split, on the CPU with onnxruntime."""
    check_data_choice(data, split)
    onnx, ort = require_runtime()
    meta = read_onnx_metadata(onnx, Path(path))
    options = meta.get("data_options") if meta.get("dataset") == data else None  # as for a model file
    dataset = build_dataset(data, root, split, options)
    if list(dataset.classes) != meta["classes"]:
        raise DistillError(path, "classes", f"the classes of data set {data!r} ({len(dataset.classes)})", got=meta["classes"])
    from accelerate import Accelerator

    from distill.engine.evaluate import evaluate

    model = OnnxSegmenter(ort_session(ort, Path(path)), len(meta["classes"]))
    metrics = evaluate(model, dataset, list(dataset.classes), Accelerator(cpu=True),
                       eval_size=tuple(meta["input_size"]), show_progress=show_progress)
    extra = {"quantization": meta["quantization"]} if "quantization" in meta else {}
    return {**metrics, "split": split, "dataset": data, "model": str(path), "runtime": "onnxruntime (CPU)", **extra}
