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
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from distill.errors import DistillError, did_you_mean
from distill.export.onnx import add_metadata, export_onnx, require_runtime
from distill.export.calibration import CalibrationImages, held_out_images, load_split, spread
from distill.export.quantize_report import compare_files
from distill.export.sidecar import read_sidecar, write_sidecar
from distill.io import ModelFile, atomic_path, read_model_file
from distill.measure.latency import Latency, Setting
from distill.model_card import write_model_card

METHODS = ("minmax", "percentile", "entropy")
ACTIVATIONS = ("uint8", "int8")
SENSITIVITY_IMAGES = 8  # images the per-layer ranking runs on (it holds every tensor of every image)


@dataclass(frozen=True)
class QuantizeOptions:
    """How the int8 graph is made (the recipe's `quantize:` block and `distill quantize`'s flags).

    uint8 activations with int8 weights (U8S8) is the default because it is what onnxruntime's x86
    kernels are fastest at: on a 2-core AVX2 EPYC, the CamVid Lite0 student at 360x480 ran 0.61x
    the fp32 ONNX time with U8S8 and 0.92x with S8S8; on an AVX512_VNNI EPYC (2026-12-07, one
    thread) 0.44x with U8S8 and 0.94x with S8S8. `reduce_range` stores weights in 7 bits
    ([-64, 64]): without VNNI the U8S8 kernel sums pairs of u8*s8 products in int16 (VPMADDUBSW),
    which can saturate with full-range weights; there it cost nothing in time and raised agreement
    with fp32 (0.950 vs 0.930 on random images). With VNNI nothing saturates and full-range
    weights keep more precision (67.46 vs 66.69 val mIoU, fp32 67.39), so callers pass
    `cpu_features.resolve_reduce_range("auto")` by default.
    """

    method: str = "minmax"  # calibration: minmax, percentile or entropy
    images: int = 32  # calibration images, spread evenly over the train split
    activations: str = "uint8"
    reduce_range: bool = True
    keep_fp32: tuple[str, ...] = ()  # node names of the pre-processed fp32 graph left unquantized
    auto_keep_fp32: int = 0  # also keep the k most sensitive Conv nodes (distill.export.sensitivity)
    evaluate: bool = True  # score the int8 file on the val split and store the metrics in its sidecar

    def block(self, images: int, dataset: str, excluded: list[str]) -> dict[str, Any]:
        """The `quantization` entry of the file's metadata and sidecar: what was done."""
        weights = "int8 per-channel weights" + (" in 7 bits (reduce_range)" if self.reduce_range else "")
        return {"method": self.method, "images": images, "split": "train", "dataset": dataset,
                "activations": self.activations, "reduce_range": self.reduce_range, "excluded_nodes": excluded,
                "auto_excluded": self.auto_keep_fp32, "format": f"QDQ, {self.activations} activations, {weights}"}


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
    metrics: dict[str, Any] | None = None  # the int8 file on the val split (options.evaluate)
    source_metrics: dict[str, Any] | None = None  # what the model file stores (its val split)
    sensitivity: list[Any] = field(default_factory=list)  # NodeError, most sensitive first (auto_keep_fp32)

    def describe_setting(self) -> str:
        if self.setting is None:
            return "latency not measured"
        return (f"{self.setting.describe()}; fp32 and int8 ONNX (onnxruntime CPUExecutionProvider, "
                f"{self.setting.threads} intra-op thread(s)) alternate each round; ratio = median of int8 / fp32")


def quantize_onnx(model_path: str | Path, out_path: str | Path | None = None, calibration: str = "synthetic",
                  options: QuantizeOptions = QuantizeOptions(), size: tuple[int, int] | None = None, *,
                  data_root: str | None = None, repeats: int = 20, warmup: int = 3) -> QuantizeReport:
    """Write an int8 QDQ ONNX file of a model file, calibrated on `options.images` images of
    `calibration`'s train split (spread evenly over it), with its sidecar (distill.export.sidecar),
    and compare it with the fp32 export.

    `size` (H, W) defaults as in export_onnx (the file's eval size, else 360x480). `out_path`
    defaults to MODEL.int8.onnx. `repeats=0` skips the timing.
    """
    model_path = Path(model_path)
    out_path = Path(out_path) if out_path is not None else model_path.with_suffix(".int8.onnx")
    check_quantize_options(options, model_path, out_path)
    onnx, ort = require_runtime()
    meta, _ = read_model_file(model_path)  # the existing one-line errors for a file that is not a model file
    train = load_split(meta, calibration, data_root, "train")
    indices = spread(len(train), options.images)
    with tempfile.TemporaryDirectory(prefix="distill-quantize-") as work:
        fp32_path, size = export_fp32(model_path, Path(work), size)
        prepared = Path(work) / "prepared.onnx"
        prepare_graph(fp32_path, prepared)
        check_nodes(onnx.load(str(prepared)).graph, list(options.keep_fp32))
        reader = CalibrationImages(train, indices, size)
        excluded, ranked = choose_excluded(prepared, Path(work), reader, options)
        block = options.block(len(indices), calibration, excluded)
        with atomic_path(out_path) as tmp:
            run_quantizer(prepared, tmp, reader, options, excluded)
            check_quantized(onnx, tmp, model_path, excluded)
            write_metadata(onnx, tmp, meta, size, block)
        write_model_card(out_path, meta.card, meta.info, {"format": f"ONNX int8 {block['format']}, {options.method} "
                                                          f"calibration on {len(indices)} {calibration} train images",
                                                          "onnx": True})
        comparison = compare_files(ort, fp32_path, out_path, held_out_images(meta, calibration, data_root, size), size,
                                   repeats, warmup)
        fp32_side = read_sidecar(fp32_path)  # the export counted the source model: the int8 graph runs the same convs
    metrics = score_on_val(out_path, meta, calibration, data_root) if options.evaluate else None
    write_sidecar(out_path, meta, size, metrics, (fp32_side["params"], fp32_side["gflops"]), quantization=block)
    return QuantizeReport(out_path, model_path, options.method, len(indices), excluded, tuple(size), **comparison,
                          metrics=metrics, source_metrics=meta.info.get("metrics"), sensitivity=ranked)


def choose_excluded(prepared: Path, work: Path, reader: CalibrationImages, options: QuantizeOptions) -> tuple[list[str], list[Any]]:
    """The nodes left in float: the named ones, plus with auto_keep_fp32 = k the k Conv nodes whose
    outputs lose most to rounding in a first full int8 pass (and that ranking, for the report)."""
    excluded = list(options.keep_fp32)
    if options.auto_keep_fp32 == 0:
        return excluded, []
    from distill.export.sensitivity import layer_sensitivity, most_sensitive

    probe = work / "probe.int8.onnx"
    run_quantizer(prepared, probe, reader, options, excluded)
    reader.rewind()
    # Every intermediate tensor of both graphs is held for every image: with 32 images at 360x480
    # the CamVid Lite0 student's ranking was killed for memory on a 24 GiB machine (16 went
    # through), so it runs on SENSITIVITY_IMAGES of the calibration images, spread over them.
    subset = [reader.indices[i] for i in spread(len(reader.indices), SENSITIVITY_IMAGES)]
    probe_images = CalibrationImages(reader.dataset, subset, reader.size)
    ranked = layer_sensitivity(prepared, probe, probe_images)
    reader.rewind()
    chosen = [n for n in most_sensitive(ranked, options.auto_keep_fp32 + len(excluded)) if n not in excluded]
    return excluded + chosen[: options.auto_keep_fp32], ranked


def score_on_val(path: Path, meta: ModelFile, name: str, root: str | None) -> dict[str, Any] | None:
    """The int8 file's metrics on the val split of its calibration data (what its sidecar stores and
    compare shows), or None where that data set has no val split here."""
    from distill.export.runtime import score_onnx_file

    try:
        load_split(meta, name, root, "val")
    except DistillError:
        return None
    return score_onnx_file(path, name, root, "val", show_progress=False)


def check_quantize_options(options: QuantizeOptions, model_path: Path, out_path: Path) -> None:
    if options.method not in METHODS:
        raise DistillError("command line", "--method", f"one of {', '.join(METHODS)}", got=options.method,
                           hint=did_you_mean(options.method, METHODS))
    if options.activations not in ACTIVATIONS:
        raise DistillError("command line", "--activations", f"one of {', '.join(ACTIVATIONS)}", got=options.activations)
    if options.images < 1:
        raise DistillError("command line", "--images", "at least 1 calibration image", got=options.images)
    if options.auto_keep_fp32 < 0:
        raise DistillError("command line", "--auto-keep-fp32", "a count >= 0 of nodes to keep in fp32",
                           got=options.auto_keep_fp32)
    if out_path.resolve() == model_path.resolve():
        raise DistillError("command line", "--out", "a path other than the model file", got=str(out_path))


def export_fp32(model_path: Path, work: Path, size: tuple[int, int] | None) -> tuple[Path, tuple[int, int]]:
    """The fp32 ONNX file (distill export's own code and parity check, untimed) and its input size."""
    exported = export_onnx(model_path, work / "fp32.onnx", size=size, repeats=0)
    if not exported.passed:
        raise DistillError(model_path, None, "an fp32 ONNX export that matches PyTorch (see distill export)",
                           got=f"<max |diff| {exported.max_abs_diff:.1e}>")
    return exported.path, exported.size


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


def run_quantizer(prepared: Path, out: Path, reader: CalibrationImages, options: QuantizeOptions,
                  exclude: list[str]) -> None:
    from onnxruntime.quantization import CalibrationMethod, QuantFormat, QuantType, quantize_static

    calibrate = {"minmax": CalibrationMethod.MinMax, "percentile": CalibrationMethod.Percentile,
                 "entropy": CalibrationMethod.Entropy}[options.method]
    activations = {"uint8": QuantType.QUInt8, "int8": QuantType.QInt8}[options.activations]
    # Every calibrator keeps every tensor of every image until it computes the ranges, so memory
    # grows with --images. Not CalibMaxIntermediateOutputs: in onnxruntime 1.32 MinMax drops the
    # collected tensors when that count is reached instead of merging their ranges.
    with quiet_quantizer():
        quantize_static(str(prepared), str(out), reader, quant_format=QuantFormat.QDQ, per_channel=True,
                        activation_type=activations, weight_type=QuantType.QInt8, nodes_to_exclude=exclude,
                        reduce_range=options.reduce_range, calibrate_method=calibrate,
                        calibration_providers=["CPUExecutionProvider"])


def check_quantized(onnx: Any, path: Path, model_path: Path, excluded: list[str]) -> None:
    """A graph in which nothing was quantized (every Conv kept in fp32, or no op onnxruntime
    quantizes) is refused rather than shipped as an "int8" file that is float throughout."""
    graph = onnx.load(str(path)).graph
    if not any(node.op_type == "QuantizeLinear" for node in graph.node):
        field = "--keep-fp32" if excluded else None
        raise DistillError(model_path if field is None else "command line", field,
                           "a graph with at least one node onnxruntime quantizes (Conv, MatMul, ...) left in int8",
                           got=f"<no node quantized; {len(excluded)} kept in fp32>")


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
