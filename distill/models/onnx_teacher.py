"""The onnx family: an ONNX graph from anywhere as a frozen teacher, run by onnxruntime on the CPU.

What the graph sees: the engine hands the teacher the raw RGB image in [0, 1] (N, 3, H, W); it is
resized (bilinear) to the card's `input_size`, the size the graph was made for, and fed as
(image * input_scale - input_mean) / input_std in the dtype of the graph's input. What comes back:
the graph's output, (N, C, h, w) logits, resized (bilinear) to ceil(H / s) x ceil(W / s), where the
stride s is read off the graph once at load: the smallest integer with ceil(H_in / s) = h_out and
ceil(W_in / s) = w_out at `input_size` (a graph that returns full-resolution logits has s = 1). So
the teacher looks like any other at its stride, to losses and to the teacher-output cache.

It has no trainable weights (the session holds them) and no feature taps. onnxruntime is in the
optional `export` extra, imported only when a graph is opened; its intra-op threads follow
torch.get_num_threads(), so a teacher does not oversubscribe the cores the student trains on.
The cache key's teacher hash (`onnx_sha256`) covers the .onnx file and every card field that
changes what the graph is fed or which output is read.
"""

from __future__ import annotations

import hashlib
import json
import math
from collections.abc import Collection
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from distill.errors import DistillError
from distill.io import sha256_of
from distill.models.base import MODELS, Segmenter
from distill.models.cards import OnnxCard
from distill.outputs import SegOutput, TapInfo

EXTRA = "pip install distill[export]"
INPUT_DTYPES = {"tensor(float)": np.float32, "tensor(float16)": np.float16, "tensor(double)": np.float64}


@dataclass
class Graph:
    """An open session and what was read off it at load."""

    session: Any
    input_name: str
    output_name: str
    dtype: Any  # numpy dtype of the input
    batch: int | None  # a fixed batch size, or None when the batch axis is dynamic
    channels: int
    stride: int

    def run(self, images: np.ndarray) -> np.ndarray:
        """(N, 3, H_in, W_in) -> (N, C, h, w); one image per run when the graph is fixed to batch 1."""
        if self.batch == 1 and images.shape[0] != 1:
            return np.concatenate([self.run(image[None]) for image in images])
        return self.session.run([self.output_name], {self.input_name: images.astype(self.dtype)})[0]


def import_onnxruntime(card_file: str | Path | None) -> Any:
    try:
        import onnxruntime
    except ImportError:
        raise DistillError(card_file, "family", f"onnxruntime for an onnx teacher ({EXTRA})", got="<not installed>") from None
    return onnxruntime


def open_session(card: OnnxCard, card_file: str | Path | None) -> Any:
    ort = import_onnxruntime(card_file)
    if not Path(card.file).is_file():
        raise DistillError(card_file, "file", "an existing .onnx file (relative to the working directory)", got=card.file)
    options = ort.SessionOptions()
    options.intra_op_num_threads = torch.get_num_threads()
    options.inter_op_num_threads = 1
    options.log_severity_level = 3  # errors only
    try:
        return ort.InferenceSession(card.file, sess_options=options, providers=["CPUExecutionProvider"])
    except Exception as exc:  # onnxruntime raises its own Fail / InvalidGraph / NotImplemented types
        detail = (str(exc).strip().splitlines() or [""])[0][:200]
        raise DistillError(card.file, None, "an ONNX file onnxruntime loads", got=f"<{type(exc).__name__}: {detail}>") from None


def pick(nodes: list[Any], name: str | None, field: str, card_file: str | Path | None) -> Any:
    """The named graph input or output, or the first one."""
    by_name = {node.name: node for node in nodes}
    if name is None:
        return nodes[0]
    if name not in by_name:
        raise DistillError(card_file, field, f"one of the graph's names ({', '.join(by_name)})", got=name)
    return by_name[name]


def stride_of(size: tuple[int, int], out: tuple[int, int]) -> int | None:
    """The smallest integer s with ceil(H / s) = h and ceil(W / s) = w, or None."""
    for s in range(1, max(size) + 1):
        if math.ceil(size[0] / s) == out[0] and math.ceil(size[1] / s) == out[1]:
            return s
    return None


def check_input(graph_in: Any, card: OnnxCard, card_file: str | Path | None) -> int | None:
    """The graph reads a float (N, 3, H, W) image, at the card's input_size where it fixes one;
    returns its fixed batch size, or None."""
    dims = list(graph_in.shape or [])
    if graph_in.type not in INPUT_DTYPES or len(dims) != 4 or (isinstance(dims[1], int) and dims[1] != 3):
        raise DistillError(card.file, "input", "a float RGB image input (N, 3, H, W)",
                           got=f"<{graph_in.name}: {graph_in.type} {graph_in.shape}>")
    if all(isinstance(d, int) for d in dims[2:]) and tuple(dims[2:]) != tuple(card.input_size):
        raise DistillError(card_file, "input_size", f"the graph's input size {dims[2:]}", got=list(card.input_size))
    return dims[0] if isinstance(dims[0], int) else None


def open_graph(card: OnnxCard, card_file: str | Path | None) -> Graph:
    """Open the card's graph and read its names, input dtype, batch, output channels and stride."""
    session = open_session(card, card_file)
    graph_in = pick(session.get_inputs(), card.input_name, "input_name", card_file)
    graph_out = pick(session.get_outputs(), card.output_name, "output_name", card_file)
    batch = check_input(graph_in, card, card_file)
    graph = Graph(session, graph_in.name, graph_out.name, INPUT_DTYPES[graph_in.type], batch, 0, 0)
    shape = list(graph_out.shape or [])
    if len(shape) != 4 or not all(isinstance(d, int) for d in shape[1:]):  # dynamic dims: one probe forward says
        shape = list(graph.run(np.zeros((batch or 1, 3, *card.input_size), dtype=np.float32)).shape)
    if len(shape) != 4:
        raise DistillError(card.file, "output", "logits of shape (N, C, h, w)", got=f"<{graph_out.name}: shape {shape}>")
    stride = stride_of(tuple(card.input_size), (shape[2], shape[3]))
    if stride is None:
        raise DistillError(card_file, "input_size", f"the size the graph takes (its {shape[2]}x{shape[3]} output is no "
                           "whole stride of it)", got=list(card.input_size))
    if shape[1] != len(card.classes):
        raise DistillError(card_file, "classes", f"{shape[1]} names (the graph's output {graph_out.name} has {shape[1]} "
                           "channels)", got=f"<{len(card.classes)} names>")
    graph.channels, graph.stride = shape[1], stride
    return graph


def onnx_sha256(card: OnnxCard) -> str:
    """sha256 of the .onnx file's sha256 and the card's input and output settings, as JSON."""
    fields = card.model_dump(mode="json", include={"input_size", "input_mean", "input_std", "input_scale", "input_name",
                                                    "output_name"})
    text = json.dumps({"family": "onnx", "sha256": sha256_of(card.file), **fields}, sort_keys=True)
    return hashlib.sha256(text.encode()).hexdigest()


@MODELS.register("onnx")
class OnnxTeacher(Segmenter):
    """Taps: `logits` only, at the graph's stride."""

    def __init__(self, card: OnnxCard, num_classes: int, graph: Graph | None = None) -> None:
        super().__init__(card, num_classes)
        self.graph = graph or open_graph(card, None)
        # No weights live in torch, but callers find a model's device from its first parameter
        # (the teacher-output cache, the dry run's costs): an empty one moves with .to() like any.
        self.device_anchor = nn.Parameter(torch.zeros(0), requires_grad=False)
        self._taps = {"logits": TapInfo(num_classes, self.graph.stride)}

    def normalise(self, images: Tensor) -> Tensor:
        return (images * self.card.input_scale - self.mean.to(images.device)) / self.std.to(images.device)

    def forward_single(self, images: Tensor, taps: Collection[str] = ()) -> SegOutput:
        self.card.refuse_features(taps)
        h, w = images.shape[-2:]
        x = images[:, :3].detach().float().cpu()  # (N, 3, H, W) in [0, 1]
        if (h, w) != tuple(self.card.input_size):
            x = F.interpolate(x, size=tuple(self.card.input_size), mode="bilinear", align_corners=False)
        logits = torch.from_numpy(self.graph.run(np.ascontiguousarray(self.normalise(x).numpy()))).float()
        grid = (math.ceil(h / self.graph.stride), math.ceil(w / self.graph.stride))
        if tuple(logits.shape[-2:]) != grid:
            logits = F.interpolate(logits, size=grid, mode="bilinear", align_corners=False)
        return SegOutput(logits.to(images.device))


def load_onnx(card: OnnxCard, card_file: str | Path) -> OnnxTeacher:
    """The card's graph as a frozen teacher; errors name the card file and its field."""
    model = OnnxTeacher(card, len(card.classes), open_graph(card, card_file))
    model.requires_grad_(False)
    return model.eval()
