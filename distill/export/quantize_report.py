"""How an int8 file compares with the fp32 one it came from: argmax agreement on val and seeded
random images, file sizes, batch-1 latency side by side; and the table `distill quantize` prints."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import torch
import torch.nn.functional as F
from rich.console import Console
from rich.table import Table

from distill.export.calibration import AGREEMENT_IMAGES
from distill.export.onnx import OrtModule, ort_session
from distill.export.sidecar import sidecar_path
from distill.measure.latency import measure_latency, paired_ratio
from distill.models.base import class_map

if TYPE_CHECKING:
    from distill.export.quantize import QuantizeReport



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
        classes = [class_map(F.interpolate(torch.from_numpy(s.run(["logits"], {"images": x})[0]), size=tuple(size),
                                           mode="bilinear", align_corners=False)) for s in (fp32, int8)]
        same += int((classes[0] == classes[1]).sum())
        total += classes[0].numel()
    return same / total


def quantize_table(report: QuantizeReport) -> Table:
    table = Table(title=f"{report.model_path} as int8 ONNX", header_style="bold", caption_justify="left",
                  caption=f"agreement: fraction of pixels whose class is the same as fp32 ONNX's, on {AGREEMENT_IMAGES} val "
                          f"images and on {AGREEMENT_IMAGES} seeded random images at {report.size[0]}x{report.size[1]}; "
                          f"calibration: {report.method} on {report.images} train images; kept in fp32: "
                          f"{', '.join(report.excluded) or 'none'}")
    for label in ("model", "file", "file MB", "val mIoU", "agreement (val)", "agreement (random)", "ms", "ratio"):
        table.add_column(label, justify="left" if label in ("model", "file") else "right",
                         overflow="fold" if label == "file" else "ellipsis")
    timed = report.setting is not None
    val = "-" if report.agreement_val is None else f"{report.agreement_val:.4f}"
    table.add_row("fp32 ONNX", "(temporary)", f"{report.fp32_bytes / 1e6:.2f}", miou(report.source_metrics), "1", "1",
                  f"{report.fp32.median_ms:.2f}" if timed else "-", "1.00" if timed else "-")
    table.add_row("int8 ONNX", str(report.path), f"{report.int8_bytes / 1e6:.2f}", miou(report.metrics), val,
                  f"{report.agreement_random:.4f}",
                  f"{report.int8.median_ms:.2f}" if timed else "-", f"{report.ratio:.2f}" if timed else "-")
    return table


def miou(metrics: dict[str, Any] | None) -> str:
    return "-" if not metrics or metrics.get("miou") is None else f"{metrics['miou']:.2f}"


def print_report(report: QuantizeReport, console: Console) -> None:
    """What `distill quantize` prints: the side-by-side table, the sensitivity ranking when nodes were
    chosen by it, how latency was measured, and where the files are."""
    console.print(quantize_table(report))
    if report.sensitivity:
        from distill.export.sensitivity import sensitivity_table

        console.print(sensitivity_table(report.sensitivity))
    console.print(report.describe_setting(), highlight=False)
    console.print(f"wrote {report.path} and {sidecar_path(report.path)}; the fp32 figure is the model file's stored "
                  "val mIoU", highlight=False)
