"""`distill quantize`, kept out of distill/cli.py only because that file is at the 300-line limit
(tests/test_layering.py); cli.py registers it on the same app. Parse, call, render, as every command."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer
from rich.console import Console

EXAMPLE = ("Example: distill quantize runs/kd/student.safetensors --data synthetic --images 32 --method minmax\n\n"
           "It writes runs/kd/student.int8.onnx, which distill eval scores like a model file (with --data, --split).")


def quantize(
    model: Annotated[Path, typer.Argument(help="a .safetensors model file", show_default=False)],
    data: Annotated[str, typer.Option(help="data set whose train split calibrates the int8 ranges")] = "synthetic",
    data_root: Annotated[Optional[str], typer.Option(help="data set folder")] = None,
    images: Annotated[int, typer.Option(help="calibration images, spread evenly over the train split")] = 32,
    method: Annotated[str, typer.Option(help="calibration: minmax, percentile or entropy")] = "minmax",
    keep_fp32: Annotated[Optional[list[str]], typer.Option(help="a node name of the fp32 graph to leave unquantized "
                                                                 "(repeat for more)")] = None,
    auto_keep_fp32: Annotated[int, typer.Option(help="also leave the k most sensitive Conv nodes in fp32 (ranked by "
                                                     "the rounding noise of their outputs; the ranking is printed)")] = 0,
    activations: Annotated[str, typer.Option(help="uint8 (onnxruntime's fast x86 path, with or without VNNI) or int8")] = "uint8",
    reduce_range: Annotated[Optional[bool], typer.Option(help="7-bit weights, which the x86 uint8 x int8 kernel without VNNI "
                                                              "needs (int16 sums saturate); default: on unless this CPU has "
                                                              "VNNI. Set it for the CPU the file will run on")] = None,
    evaluate: Annotated[bool, typer.Option(help="score the int8 file on the val split (stored in its sidecar)")] = True,
    size: Annotated[Optional[tuple[int, int]],
                    typer.Option(help="H W of the graph's input (default: the file's eval size, else 360 480)")] = None,
    out: Annotated[Optional[Path], typer.Option(help="the int8 file (default: MODEL with suffix .int8.onnx)")] = None,
) -> None:
    """Post-training int8 quantization: ONNX with QDQ 8-bit activations and per-channel int8 weights.

    The model is exported to fp32 ONNX (checked against PyTorch as distill export does), its
    activation ranges are calibrated on --images training images, and the int8 file is compared
    with the fp32 one on seeded random images: the fraction of pixels whose class agrees, file
    sizes, and batch-1 latency timed side by side (interleaved, same thread count). The int8 file
    is then scored on the val split; FILE.onnx.json beside it keeps those metrics and the model
    file's metadata, so distill compare and distill check take the ONNX file like a model file.
    """
    from distill.commands import quantize_and_report

    from distill.export.cpu_features import resolve_reduce_range
    from distill.export.quantize import QuantizeOptions

    options = QuantizeOptions(method, images, activations, resolve_reduce_range(reduce_range), tuple(keep_fp32 or ()),
                              auto_keep_fp32, evaluate)
    quantize_and_report(model, data, data_root, options, tuple(size) if size else None, out, Console())
