"""An ONNX file (from `distill export` or `distill quantize`) as a compared or checked model.

What compare and check need of a model comes from the file's sidecar (distill.export.sidecar):
its own metrics (an int8 graph does not score what its fp32 source scored), and params and GFLOPs
counted on the source model at the graph's input size, since an onnxruntime session cannot be
counted. Latency is measured here like any model's, on onnxruntime's CPU provider, side by side
with the others: a row says which runtime it is, so "int8 ONNX 0.6x" is not read as "torch 0.6x".
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from distill.errors import DistillError
from distill.io import ModelFile

if TYPE_CHECKING:
    from distill.report.compare import Entry


def is_onnx(path: Path) -> bool:
    return path.suffix.lower() == ".onnx"


def runtime_label(sidecar: dict[str, Any]) -> str:
    block = sidecar.get("quantization")
    return f"{block.get('activations', 'int8')}/int8 ONNX" if block else "fp32 ONNX"


def entry_name(path: Path) -> str:
    """runs/kd/student.int8.onnx -> 'kd int8'; m.onnx -> 'm'."""
    stem = path.name[: -len(".onnx")]
    head, _, tail = stem.partition(".")
    return f"{path.parent.name}{' ' + tail if tail else ' onnx'}" if head == "student" else stem


def load_onnx_entry(path: Path) -> tuple[Entry, Any, ModelFile]:
    """(Entry, an onnxruntime-backed model, what the sidecar says as a ModelFile) for an ONNX file."""
    from distill.export.onnx import ort_session, require_runtime
    from distill.export.runtime import OnnxSegmenter, read_onnx_metadata
    from distill.export.sidecar import read_sidecar
    from distill.report.compare import Entry

    onnx, ort = require_runtime()
    read_onnx_metadata(onnx, path)  # one-line errors for a file that is not one of ours
    side = read_sidecar(path)
    info, metrics = dict(side["info"]), dict(side.get("metrics") or {})
    block = side.get("quantization")
    where = (block["dataset"], "val") if block else (info.get("dataset"), info.get("split"))
    losses = info.get("losses") or []
    entry = Entry(name=entry_name(path), model_path=path, method=f"{'+'.join(losses) or '-'} ({runtime_label(side)})",
                  metrics=metrics, evaluated_on=" ".join(str(w) for w in where if w) + " (stored)",
                  eval_size=tuple(side["input_size"]), file_bytes=path.stat().st_size,
                  params=side["params"], gflops=side["gflops"])
    model = OnnxSegmenter(ort_session(ort, path), len(side["classes"]))
    # as a model file's info reads: where its stored metrics come from, and its input size
    meta = ModelFile(path, side["card"], {**info, "metrics": metrics, "dataset": where[0], "split": where[1],
                                          "eval_size": side["input_size"]})
    return entry, model, meta


def check_input_size(entry: Entry, size: tuple[int, int]) -> None:
    """An exported graph is fixed to its input size: it is measured at that size or not at all."""
    if entry.eval_size is not None and tuple(entry.eval_size) != tuple(size):
        raise DistillError(entry.model_path, "input_size", f"the measured size {size[0]}x{size[1]} (the graph is "
                           f"fixed to its export size; pass --size {entry.eval_size[0]} {entry.eval_size[1]}, or "
                           "export it at this size)", got=list(entry.eval_size))
