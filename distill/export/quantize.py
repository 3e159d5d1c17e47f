"""Post-training int8 quantization of a model file: static QDQ through onnxruntime, compared with fp32 ONNX.

The model file is first exported to fp32 ONNX by `export_onnx` (parity-checked against PyTorch),
then quantized with `onnxruntime.quantization.quantize_static`: QDQ format, int8 activations and
weights, weights per output channel, activation ranges calibrated on N training images. The
calibration images are fed as the graph reads them, RGB in [0, 1] at its input size (resized as
`distill eval` resizes, see engine/evaluate.predict_batch); the card's mean/std are applied
inside the graph, so they are not applied here a second time. The int8 file carries the fp32
export's metadata plus `quantization` (method, images, excluded nodes). The report compares the
two ONNX files: the fraction of pixels whose argmax agrees, on the same val images and on the same
seeded random images, file sizes, and batch-1 latency timed side by side in one run. Random images
are not what the model was calibrated for (uniform noise drives the first layers beyond the
calibrated ranges), so their agreement is lower: on the tiny models of the tests, 0.89-0.97 against
0.96-0.97 on val images (six seeds of a trained tinyconv), which is why val images come first.
"""

from __future__ import annotations

import json
import logging
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from rich.table import Table

from distill.data import build_dataset
from distill.errors import DistillError, did_you_mean
from distill.export.onnx import OrtModule, add_metadata, export_onnx, ort_session, require_runtime
from distill.io import ModelFile, atomic_path, read_model_file
from distill.measure.latency import Latency, Setting, measure_latency, paired_ratio
from distill.report.model_card import write_model_card

METHODS = ("minmax", "percentile", "entropy")
AGREEMENT_IMAGES = 8  # val images (spread evenly over the split) and seeded random images (seeds 0..7)


@dataclass(frozen=True)
class QuantizeReport:
    path: Path  # the int8 file
    model_path: Path
    method: str
    images: int  # calibration images actually used (at most the train split's size)
    excluded: list[str]  # nodes left in float
    size: tuple[int, int]  # (H, W) of the graph's input
    # fraction of pixels whose class (argmax of the logits upsampled to the input size) is the same
    # in both files: on held-out val images (None when the data set has no val split here), and on
    # seeded uniform-noise images, which lie outside the calibrated ranges and so bound it from below
    agreement_val: float | None
    agreement_random: float
    fp32_bytes: int
    int8_bytes: int
    fp32: Latency | None  # batch 1, CPU
    int8: Latency | None
    ratio: float | None  # median over rounds of int8 ms / fp32 ms (< 1: int8 is faster)
    setting: Setting | None

    def describe_setting(self) -> str:
        if self.setting is None:
            return "latency not measured"
        return (f"{self.setting.describe()}; fp32 and int8 ONNX (onnxruntime CPUExecutionProvider, "
                f"{self.setting.threads} intra-op thread(s)) alternate each round; ratio = median of int8 / fp32")


def quantize_onnx(model_path: str | Path, out_path: str | Path | None = None, calibration: str = "synthetic",
                  num_images: int = 32, method: str = "minmax", keep_fp32: list[str] | tuple[str, ...] = (),
                  size: tuple[int, int] | None = None, *, data_root: str | None = None, repeats: int = 20,
                  warmup: int = 3) -> QuantizeReport:
    """Write an int8 QDQ ONNX file of a model file, calibrated on `num_images` images of `calibration`'s
    train split (spread evenly over it), and compare it with the fp32 export.

    `size` (H, W) defaults as in export_onnx (the file's eval size, else 360x480). `keep_fp32` names
    nodes of the pre-processed fp32 graph left unquantized. `out_path` defaults to MODEL.int8.onnx.
    `repeats=0` skips the timing.
    """
    model_path = Path(model_path)
    out_path = Path(out_path) if out_path is not None else model_path.with_suffix(".int8.onnx")
    check_quantize_options(method, num_images, model_path, out_path)
    onnx, ort = require_runtime()
    meta, _ = read_model_file(model_path)  # the existing one-line errors for a file that is not a model file
    train = load_split(meta, calibration, data_root, "train")
    indices = spread(len(train), num_images)
    block = {"method": method, "images": len(indices), "split": "train", "dataset": calibration,
             "excluded_nodes": list(keep_fp32), "format": "QDQ, int8 activations, int8 per-channel weights"}
    with tempfile.TemporaryDirectory(prefix="distill-quantize-") as work:
        fp32_path, size = export_fp32(model_path, Path(work), size)
        prepared = Path(work) / "prepared.onnx"
        prepare_graph(fp32_path, prepared)
        check_nodes(onnx.load(str(prepared)).graph, list(keep_fp32))
        with atomic_path(out_path) as tmp:
            run_quantizer(prepared, tmp, CalibrationImages(train, indices, size), method, list(keep_fp32))
            write_metadata(onnx, tmp, meta, size, block)
        write_model_card(out_path, meta.card, meta.info, {"format": f"ONNX int8 QDQ, {method} calibration on "
                                                          f"{len(indices)} {calibration} train images", "onnx": True})
        comparison = compare_files(ort, fp32_path, out_path, held_out_images(meta, calibration, data_root, size), size,
                                   repeats, warmup)
    return QuantizeReport(out_path, model_path, method, len(indices), list(keep_fp32), tuple(size), **comparison)


def check_quantize_options(method: str, num_images: int, model_path: Path, out_path: Path) -> None:
    if method not in METHODS:
        raise DistillError("command line", "--method", f"one of {', '.join(METHODS)}", got=method,
                           hint=did_you_mean(method, METHODS))
    if num_images < 1:
        raise DistillError("command line", "--images", "at least 1 calibration image", got=num_images)
    if out_path.resolve() == model_path.resolve():
        raise DistillError("command line", "--out", "a path other than the model file", got=str(out_path))


def load_split(meta: ModelFile, name: str, root: str | None, split: str) -> Any:
    """A split of data set `name`, with the file's data options when it was trained on that data set
    (as distill eval does: e.g. the synthetic scenes' size); refused when empty or of other classes."""
    options = meta.info.get("data_options") if meta.info.get("dataset") == name else None
    dataset = build_dataset(name, root, split, options)
    if len(dataset) == 0:
        where, field = (root, "--data-root") if root is not None else ("command line", "--data")
        raise DistillError(where, field, f"a {split} split with at least 1 image to calibrate on", got="<0 images>")
    if meta.classes and list(dataset.classes) != meta.classes:
        raise DistillError(meta.path, "classes", f"the classes of data set {name!r} ({len(dataset.classes)})",
                           got=meta.classes)
    return dataset


def spread(length: int, count: int) -> list[int]:
    """Up to `count` indices spread evenly over range(length): a split stored in sequence order, as
    CamVid's is, would give one scene's frames if taken from the start."""
    return sorted({int(i) for i in np.linspace(0, length - 1, min(count, length)).round()})


def export_fp32(model_path: Path, work: Path, size: tuple[int, int] | None) -> tuple[Path, tuple[int, int]]:
    """The fp32 ONNX file (distill export's own code and parity check, untimed) and its input size."""
    exported = export_onnx(model_path, work / "fp32.onnx", size=size, repeats=0)
    if not exported.passed:
        raise DistillError(model_path, None, "an fp32 ONNX export that matches PyTorch (see distill export)",
                           got=f"<max |diff| {exported.max_abs_diff:.1e}>")
    return exported.path, exported.size


def held_out_images(meta: ModelFile, name: str, root: str | None, size: tuple[int, int]) -> list[np.ndarray]:
    """AGREEMENT_IMAGES val images as the graph reads them, or none where the data set has no val split."""
    try:
        val = load_split(meta, name, root, "val")
    except DistillError:
        return []
    return [graph_input(val[i]["image"], size) for i in spread(len(val), AGREEMENT_IMAGES)]


def graph_input(image: torch.Tensor, size: tuple[int, int]) -> np.ndarray:
    """uint8 (3, H, W) -> float32 (1, 3, h, w) in [0, 1] at the graph's size, resized as distill eval does."""
    x = image[None].float() / 255.0
    if tuple(x.shape[-2:]) != tuple(size):
        x = F.interpolate(x, size=tuple(size), mode="bilinear", align_corners=False, antialias=True)
    return x.numpy().astype(np.float32)


class CalibrationImages:
    """Feeds the calibration images one at a time (the graph is fixed to batch 1); rewind() starts over.

    An onnxruntime CalibrationDataReader by its protocol: that class's __subclasshook__ accepts any
    class with get_next, so this module needs no onnxruntime import to be loaded."""

    def __init__(self, dataset: Any, indices: list[int], size: tuple[int, int]) -> None:
        self.dataset, self.indices, self.size = dataset, indices, size
        self.rewind()

    def get_next(self) -> dict[str, np.ndarray] | None:
        index = next(self._pending, None)
        return None if index is None else {"images": graph_input(self.dataset[index]["image"], self.size)}

    def rewind(self) -> None:
        self._pending = iter(self.indices)


def prepare_graph(fp32_path: Path, out: Path) -> None:
    # quant_pre_process (shape inference plus onnxruntime's basic graph optimisation) first: the
    # TorchScript export routes some Conv weights and biases through Identity nodes, which the
    # quantizer cannot treat as initializers (it warns "Expected bias ... to be an initializer" and
    # leaves those biases in float); the optimiser folds them away, and the inferred shapes let it
    # choose the per-channel axis of every weight.
    from onnxruntime.quantization.shape_inference import quant_pre_process

    with quiet_quantizer():
        quant_pre_process(str(fp32_path), str(out))


def check_nodes(graph: Any, names: list[str]) -> None:
    """Every --keep-fp32 name is a node of the graph that is quantized (the pre-processed fp32 one)."""
    known = [node.name for node in graph.node if node.name]
    for name in names:
        if name not in set(known):
            convs = [node.name for node in graph.node if node.op_type == "Conv" and node.name]
            examples = ", ".join(convs[:2] + convs[-1:]) if convs else ", ".join(known[:3])
            raise DistillError("command line", "--keep-fp32", f"a node name of the fp32 graph, e.g. {examples} "
                               f"({len(known)} named nodes)", got=name, hint=did_you_mean(name, known))


def run_quantizer(prepared: Path, out: Path, reader: CalibrationImages, method: str, exclude: list[str]) -> None:
    from onnxruntime.quantization import CalibrationMethod, QuantFormat, QuantType, quantize_static

    calibrate = {"minmax": CalibrationMethod.MinMax, "percentile": CalibrationMethod.Percentile,
                 "entropy": CalibrationMethod.Entropy}[method]
    # Every calibrator keeps every tensor of every image until it computes the ranges, so memory
    # grows with --images. Not CalibMaxIntermediateOutputs: in onnxruntime 1.32 MinMax drops the
    # collected tensors when that count is reached instead of merging their ranges.
    with quiet_quantizer():
        quantize_static(str(prepared), str(out), reader, quant_format=QuantFormat.QDQ, per_channel=True,
                        activation_type=QuantType.QInt8, weight_type=QuantType.QInt8, nodes_to_exclude=exclude,
                        calibrate_method=calibrate, calibration_providers=["CPUExecutionProvider"])


@contextmanager
def quiet_quantizer() -> Iterator[None]:
    """onnxruntime.quantization logs advice through the root logger (pre-processing hints, per-node
    notes); the report says what was done, so those lines are held back while it runs."""
    previous = logging.root.manager.disable
    logging.disable(logging.WARNING)
    try:
        yield
    finally:
        logging.disable(previous)


def write_metadata(onnx: Any, path: Path, meta: ModelFile, size: tuple[int, int], block: dict[str, Any]) -> None:
    """The fp32 export's metadata (add_metadata) plus `quantization`. quantize_static copies the
    source graph's entries, so they are dropped first, or every key would appear twice."""
    graph = onnx.load(str(path))
    kept = [(p.key, p.value) for p in graph.metadata_props if p.key.startswith("onnx.")]  # onnx's own markers
    del graph.metadata_props[:]
    for key, value in [*kept, ("quantization", json.dumps(block))]:
        entry = graph.metadata_props.add()
        entry.key, entry.value = key, value
    onnx.save(graph, str(path))
    add_metadata(onnx, path, meta, size)
    try:
        onnx.checker.check_model(str(path))
    except onnx.checker.ValidationError as exc:
        raise DistillError(meta.path, None, "an int8 graph that passes onnx.checker",
                           got=f"<{str(exc).strip().splitlines()[0][:200]}>") from exc


def compare_files(ort: Any, fp32_path: Path, int8_path: Path, val: list[np.ndarray], size: tuple[int, int],
                  repeats: int, warmup: int) -> dict[str, Any]:
    """QuantizeReport's comparison fields: argmax agreement on `val` and on seeded random images
    (seeds 0.., drawn as export's parity check draws them), file sizes, side-by-side latency."""
    fp32, int8 = ort_session(ort, fp32_path), ort_session(ort, int8_path)
    noise = [torch.rand(1, 3, *size, generator=torch.Generator().manual_seed(seed)).numpy()
             for seed in range(AGREEMENT_IMAGES)]
    timing, setting = (measure_latency({"fp32": OrtModule(fp32), "int8": OrtModule(int8)}, size, repeats, warmup,
                                       torch.device("cpu")) if repeats > 0 else ({}, None))
    return {"agreement_val": argmax_agreement(fp32, int8, val, size) if val else None,
            "agreement_random": argmax_agreement(fp32, int8, noise, size), "fp32_bytes": fp32_path.stat().st_size,
            "int8_bytes": int8_path.stat().st_size, "fp32": timing.get("fp32"), "int8": timing.get("int8"),
            "ratio": paired_ratio(timing["int8"], timing["fp32"]) if timing else None, "setting": setting}


def argmax_agreement(fp32: Any, int8: Any, inputs: list[np.ndarray], size: tuple[int, int]) -> float:
    """Fraction of pixels whose class (argmax of the logits upsampled to `size`) is the same in both."""
    same = total = 0
    for x in inputs:
        classes = [F.interpolate(torch.from_numpy(s.run(["logits"], {"images": x})[0]), size=tuple(size), mode="bilinear",
                                 align_corners=False).argmax(1) for s in (fp32, int8)]
        same += int((classes[0] == classes[1]).sum())
        total += classes[0].numel()
    return same / total


def quantize_table(report: QuantizeReport) -> Table:
    table = Table(title=f"{report.model_path} as int8 ONNX", header_style="bold", caption_justify="left",
                  caption=f"agreement: fraction of pixels whose class is the same as fp32 ONNX's, on {AGREEMENT_IMAGES} val "
                          f"images and on {AGREEMENT_IMAGES} seeded random images at {report.size[0]}x{report.size[1]}; "
                          f"calibration: {report.method} on {report.images} train images; kept in fp32: "
                          f"{', '.join(report.excluded) or 'none'}")
    for label in ("model", "file", "file MB", "agreement (val)", "agreement (random)", "ms", "ratio"):
        table.add_column(label, justify="left" if label in ("model", "file") else "right",
                         overflow="fold" if label == "file" else "ellipsis")
    timed = report.setting is not None
    val = "-" if report.agreement_val is None else f"{report.agreement_val:.4f}"
    table.add_row("fp32 ONNX", "(temporary)", f"{report.fp32_bytes / 1e6:.2f}", "1", "1",
                  f"{report.fp32.median_ms:.2f}" if timed else "-", "1.00" if timed else "-")
    table.add_row("int8 ONNX", str(report.path), f"{report.int8_bytes / 1e6:.2f}", val, f"{report.agreement_random:.4f}",
                  f"{report.int8.median_ms:.2f}" if timed else "-", f"{report.ratio:.2f}" if timed else "-")
    return table
