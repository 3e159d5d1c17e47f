"""A model file as ONNX, checked against PyTorch: parity of the logits and latency side by side.

The exported graph takes `images`, float (N, 3, H, W) in [0, 1] (the card's normalisation is
inside, as in PyTorch), and returns `logits`, (N, C, h, w) at the head's output stride, before
upsampling and argmax. The file is written atomically, then loaded by onnxruntime (CPU) and run on
seeded random images: the largest absolute difference to PyTorch's logits must stay within
`tolerance * max(1, max |logit|)`, i.e. relative to the logits' scale, with an absolute floor of
`tolerance` when logits are small. A file that fails this check is kept (for inspection); the
report says it failed and the CLI exits with 1.
"""

from __future__ import annotations

import json

import math
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from rich.table import Table
from torch import Tensor, nn

from distill.errors import DistillError
from distill.export.sidecar import write_sidecar
from distill.io import atomic_path
from distill.measure.flops import count_gflops, count_params
from distill.models import load_model_file
from distill.model_card import write_model_card
from distill.models.inference import for_inference
from distill.measure.latency import DEFAULT_SIZE, Latency, Setting, measure_latency, paired_ratio

EXTRA = "pip install -e '.[export]'"
TOLERANCE = 1e-3  # max |diff| <= TOLERANCE * max(1, max |logit|); float32 CNNs agree to ~1e-5 in practice
MIN_OPSET, MAX_OPSET = 11, 20  # 11: Resize with PyTorch's bilinear rule; 20: the TorchScript exporter's highest


class LogitsOnly(nn.Module):
    """images (N, 3, H, W) in [0, 1] -> logits (N, C, h, w) at the head's stride, as a plain tensor."""

    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        self.model = model

    def forward(self, images: Tensor) -> Tensor:
        return self.model(images).logits


class OrtModule(nn.Module):
    """An onnxruntime session behind the nn.Module interface, so it is timed by the same code as PyTorch."""

    def __init__(self, session: Any) -> None:
        super().__init__()
        self.session = session

    def forward(self, images: Tensor) -> np.ndarray:
        return self.session.run(["logits"], {"images": images.numpy()})[0]


@dataclass(frozen=True)
class Parity:
    """ONNX against PyTorch on one seeded random batch."""

    size: tuple[int, int]  # (H, W) of the input
    batch: int
    max_abs_diff: float  # max |logits_onnx - logits_torch|; inf when the shapes differ
    max_abs_logit: float  # max |logits_torch|, the scale the limit is relative to
    limit: float  # tolerance * max(1, max_abs_logit)

    @property
    def passed(self) -> bool:
        return self.max_abs_diff <= self.limit  # False for NaN as well


@dataclass(frozen=True)
class ExportReport:
    path: Path  # the ONNX file
    model_path: Path
    opset: int
    dynamic_size: bool
    tolerance: float
    parity: list[Parity]  # the export size first; with dynamic_size also a second size and batch
    torch: Latency | None  # batch 1 at the export size, CPU
    ort: Latency | None
    ratio: float | None  # median over rounds of onnxruntime ms / PyTorch ms (< 1: onnxruntime is faster)
    setting: Setting | None
    file_bytes: int

    @property
    def size(self) -> tuple[int, int]:
        return self.parity[0].size

    @property
    def sizes(self) -> list[tuple[int, int]]:
        return [p.size for p in self.parity]

    @property
    def max_abs_diff(self) -> float:
        return max(p.max_abs_diff for p in self.parity)

    @property
    def passed(self) -> bool:
        return all(p.passed for p in self.parity)

    @property
    def worst(self) -> Parity:
        """The sample furthest from (or over) its limit."""
        return max(self.parity, key=lambda p: p.max_abs_diff / p.limit if not math.isnan(p.max_abs_diff) else math.inf)

    def describe_setting(self) -> str:
        if self.setting is None:
            return "latency not measured"
        return (f"{self.setting.describe()}; PyTorch and onnxruntime (CPUExecutionProvider, {self.setting.threads} "
                f"intra-op thread(s)) alternate each round; ratio = median over rounds of onnxruntime / PyTorch")


def export_onnx(model_path: str | Path, out_path: str | Path | None = None, opset: int = 17, dynamic_size: bool = False,
                size: tuple[int, int] | None = None, *, tolerance: float = TOLERANCE, repeats: int = 20,
                warmup: int = 3) -> ExportReport:
    """Export a distill model file to ONNX, then check and time the file with onnxruntime.

    `size` (H, W) defaults to the file's `eval_size`, else 360x480; the graph is fixed to batch 1
    at that size unless `dynamic_size`, which makes batch, height and width dynamic and checks
    parity at a second size (and batch 2) too. `out_path` defaults to the model path with suffix
    `.onnx`. `repeats=0` skips the timing.
    """
    model_path = Path(model_path)
    out_path = Path(out_path) if out_path is not None else model_path.with_suffix(".onnx")
    check_options(opset, size)
    onnx, ort = require_runtime()
    model, meta = load_model_file(model_path)
    model.check_exportable(str(model_path))  # DToP with token exits: refused, its graph depends on the input
    if out_path.resolve() == model_path.resolve():
        raise DistillError("command line", "--out", "a path other than the model file", got=str(out_path))
    size = tuple(int(v) for v in (size or meta.info.get("eval_size") or DEFAULT_SIZE))
    wrapper = LogitsOnly(model.cpu().eval()).eval()
    with atomic_path(out_path) as tmp:
        write_onnx(wrapper, tmp, size, opset, dynamic_size, model_path)
        add_metadata(onnx, tmp, meta, size)
        try:
            onnx.checker.check_model(str(tmp))
        except onnx.checker.ValidationError as exc:
            raise DistillError(model_path, None, "an export that passes onnx.checker",
                               got=f"<{str(exc).strip().splitlines()[0][:200]}>") from exc
    write_beside(out_path, meta, model, size, opset)
    session = ort_session(ort, out_path)
    samples = [(size, 1)]
    if dynamic_size:
        samples.append(((round_up(size[0] + 32, 32), round_up(size[1] + 64, 32)), 2))
    parity = [check_parity(wrapper, session, s, batch, tolerance, seed) for seed, (s, batch) in enumerate(samples)]
    timing, setting = time_side_by_side(wrapper, session, size, repeats, warmup) if repeats > 0 else ({}, None)
    return ExportReport(out_path, model_path, opset, dynamic_size, tolerance, parity, timing.get("torch"), timing.get("ort"),
                        paired_ratio(timing["ort"], timing["torch"]) if timing else None, setting,
                        out_path.stat().st_size)


def write_beside(out_path: Path, meta: Any, model: nn.Module, size: tuple[int, int], opset: int) -> None:
    """The model card and the sidecar beside an export. The sidecar carries the model file's stored
    metrics (the graph matches it within the parity tolerance) and the params and GFLOPs of the model
    at hand, so nothing is loaded again to count them."""
    write_model_card(out_path, meta.card, meta.info, {"format": f"ONNX opset {opset}", "onnx": True})
    write_sidecar(out_path, meta, size, meta.info.get("metrics"), (count_params(model), count_gflops(model, size)))


def check_options(opset: int, size: tuple[int, int] | None) -> None:
    if not MIN_OPSET <= opset <= MAX_OPSET:
        raise DistillError("command line", "--opset", f"an opset from {MIN_OPSET} to {MAX_OPSET}", got=opset)
    if size is not None and (len(size) != 2 or min(size) < 1):
        raise DistillError("command line", "--size", "two positive integers H W", got=tuple(size))


def add_metadata(onnx: Any, path: Path, meta: Any, size: tuple[int, int]) -> None:
    """Class names, normalisation and input size as the ONNX file's own metadata properties: the
    graph takes RGB in [0, 1] and normalises inside, so a runtime needs only these to use it."""
    graph = onnx.load(str(path))
    props = {"classes": json.dumps(meta.classes), "input_mean": json.dumps(list(meta.card.get("input_mean", []))),
             "input_std": json.dumps(list(meta.card.get("input_std", []))), "input_range": "RGB float in [0, 1], NCHW",
             "input_size": json.dumps(list(size)), "normalisation": "inside the graph", "source": str(meta.path)}
    # what `distill eval FILE.onnx` needs to rebuild the data set the model was trained on (e.g. the synthetic size)
    props.update({key: json.dumps(meta.info[key]) for key in ("dataset", "data_options") if meta.info.get(key) is not None})
    for key, value in props.items():
        entry = graph.metadata_props.add()
        entry.key, entry.value = key, value
    onnx.save(graph, str(path))


def require_runtime() -> tuple[Any, Any]:
    """The onnx and onnxruntime modules, or one line saying how to install them."""
    modules = []
    for name in ("onnx", "onnxruntime"):
        try:
            modules.append(__import__(name))
        except ImportError:
            raise DistillError(None, name, f"the export extra: {EXTRA}", got="<not installed>") from None
    return modules[0], modules[1]


def write_onnx(wrapper: nn.Module, path: Path, size: tuple[int, int], opset: int, dynamic_size: bool,
               model_path: Path) -> None:
    # The legacy TorchScript exporter (dynamo=False), although torch >= 2.9 defaults to the dynamo
    # one: the dynamo exporter needs the onnxscript package (not in the export extra) and writes the
    # weights to a separate external-data file by default; tracing converts these timm/torchvision
    # CNNs exactly (parity ~1e-5) into one self-contained file, with dynamic axes when asked.
    example = torch.rand(1, 3, *size, generator=torch.Generator().manual_seed(0))
    dynamic_axes = ({"images": {0: "batch", 2: "height", 3: "width"},
                     "logits": {0: "batch", 2: "logits_height", 3: "logits_width"}} if dynamic_size else None)
    try:
        with warnings.catch_warnings():
            # the exporter's own notices that it is the legacy one, not about this model
            warnings.filterwarnings("ignore", message=".*legacy TorchScript-based ONNX export", category=DeprecationWarning)
            warnings.filterwarnings("ignore", message="The feature will be removed", category=DeprecationWarning)
            torch.onnx.export(wrapper, (example,), str(path), input_names=["images"], output_names=["logits"],
                              opset_version=opset, dynamic_axes=dynamic_axes, dynamo=False)
    except Exception as exc:  # unsupported operators and tracing failures; --debug shows the cause
        detail = (str(exc).strip().splitlines() or [""])[0][:200]
        raise DistillError(model_path, None, f"a model the ONNX exporter converts at opset {opset}",
                           got=f"<{type(exc).__name__}: {detail}>") from exc


def ort_session(ort: Any, path: Path) -> Any:
    """A CPU session with as many threads as torch uses, so the side-by-side timing is like for like."""
    options = ort.SessionOptions()
    options.intra_op_num_threads = torch.get_num_threads()
    options.inter_op_num_threads = 1
    options.log_severity_level = 3  # errors only
    # No busy-waiting between runs: an idle session's threads otherwise spin on the cores for a
    # while after each run, and models timed side by side (interleaved) slow one another down.
    options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    try:
        return ort.InferenceSession(str(path), sess_options=options, providers=["CPUExecutionProvider"])
    except Exception as exc:  # onnxruntime raises its own Fail / InvalidGraph / NotImplemented types
        detail = (str(exc).strip().splitlines() or [""])[0][:200]
        raise DistillError(path, None, "an ONNX file onnxruntime loads (the file is kept)",
                           got=f"<{type(exc).__name__}: {detail}>") from exc


def check_parity(wrapper: nn.Module, session: Any, size: tuple[int, int], batch: int, tolerance: float,
                 seed: int) -> Parity:
    images = torch.rand(batch, 3, *size, generator=torch.Generator().manual_seed(seed))
    with torch.inference_mode():
        expected = wrapper(images).numpy()
    got = session.run(["logits"], {"images": images.numpy()})[0]
    peak = float(np.abs(expected).max())
    diff = float(np.abs(got - expected).max()) if got.shape == expected.shape else math.inf
    return Parity(tuple(size), batch, diff, peak, tolerance * max(1.0, peak))


def time_side_by_side(wrapper: nn.Module, session: Any, size: tuple[int, int], repeats: int,
                      warmup: int) -> tuple[dict[str, Latency], Setting]:
    """PyTorch (in its deployable form: BatchNorm folded, channels-last) and onnxruntime, batch 1
    on the CPU, one run of each per round in rotating order."""
    deployed = LogitsOnly(for_inference(wrapper.model)).eval()
    return measure_latency({"torch": deployed, "ort": OrtModule(session)}, size, repeats, warmup, torch.device("cpu"))


def round_up(value: int, multiple: int) -> int:
    return -(-value // multiple) * multiple


def export_table(report: ExportReport) -> Table:
    limit = f"{report.tolerance:g} x max(1, max |logit|)"
    table = Table(title=f"{report.model_path} as ONNX", header_style="bold", caption_justify="left",
                  caption=f"max |diff|: ONNX against PyTorch logits on seeded random images, limit {limit}")
    for label in ("file", "file MB", "opset", "size", "max |diff|", "torch ms", "onnxruntime ms", "ratio"):
        table.add_column(label, justify="left" if label in ("file", "size") else "right",
                         overflow="fold" if label == "file" else "ellipsis")  # a path is never cut short
    for i, p in enumerate(report.parity):
        first = i == 0
        diff = f"{p.max_abs_diff:.1e}" if p.passed else f"[bold red]{p.max_abs_diff:.1e} > {p.limit:.1e}[/]"
        timed = first and report.setting is not None
        table.add_row(str(report.path) if first else "", f"{report.file_bytes / 1e6:.2f}" if first else "",
                      str(report.opset) if first else "",
                      f"{p.size[0]}x{p.size[1]}" + (f", batch {p.batch}" if p.batch > 1 else ""),
                      diff, f"{report.torch.median_ms:.2f}" if timed else "-", f"{report.ort.median_ms:.2f}" if timed else "-",
                      f"{report.ratio:.2f}" if timed else "-")
    return table
