"""ONNX Runtime sessions timed alone, against the same sessions interleaved with torch, in one run.

`distill compare` times every file's `predict` in interleaved rounds. For an ONNX file that is the
session run plus upsampling and argmax in torch; and a session run right after a torch run shares
the cores with torch's OpenMP threads, which keep spinning for a while after each parallel region.
This script separates the two: the bare session runs alone (fp32, then int8, then alternating),
then interleaved with the torch model's predict, and the torch predict alone. Ratios within one
block are side by side; compare blocks only on a quiet machine.

    python bench/ort_vs_torch.py zoo/camvid_lightplus_lite0_v2_so1.safetensors fp32.onnx student.int8.onnx --threads 2
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from distill.export.onnx import ort_session, require_runtime
from distill.models import load_model_file
from distill.models.inference import for_inference


def milliseconds(run) -> float:
    start = time.perf_counter()
    run()
    return (time.perf_counter() - start) * 1000.0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("model", type=Path, help="the .safetensors model file")
    parser.add_argument("fp32", type=Path, help="its fp32 ONNX export")
    parser.add_argument("int8", type=Path, help="its int8 ONNX file")
    parser.add_argument("--size", type=int, nargs=2, default=[360, 480], metavar=("H", "W"))
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=25)
    parser.add_argument("--warmup", type=int, default=3)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)  # ort_session gives the sessions as many intra-op threads
    _, ort = require_runtime()
    model, _ = load_model_file(args.model)
    model = for_inference(model.float())
    image = torch.rand(1, 3, *args.size, generator=torch.Generator().manual_seed(0))
    feed = {"images": image.numpy()}
    fp32, int8 = ort_session(ort, args.fp32), ort_session(ort, args.int8)
    runs = {"fp32 ONNX": lambda: fp32.run(["logits"], feed), "int8 ONNX": lambda: int8.run(["logits"], feed),
            "torch predict": lambda: model.predict(image)}

    def block(names: list[str]) -> dict[str, float]:
        samples: dict[str, list[float]] = {name: [] for name in names}
        for _ in range(args.warmup + args.repeats):
            for name in names:
                samples[name].append(milliseconds(runs[name]))
        return {name: statistics.median(v[args.warmup:]) for name, v in samples.items()}

    print(f"batch 1, {args.size[0]}x{args.size[1]}, {args.threads} thread(s), median of {args.repeats} runs after {args.warmup}")
    with torch.inference_mode():
        for names in (["fp32 ONNX"], ["int8 ONNX"], ["fp32 ONNX", "int8 ONNX"], ["torch predict", "fp32 ONNX", "int8 ONNX"],
                      ["torch predict"]):
            medians = block(names)
            ratio = f"  int8/fp32 {medians['int8 ONNX'] / medians['fp32 ONNX']:.2f}" if len(names) > 1 else ""
            print(f"{' then '.join(names):45s} " + "  ".join(f"{n} {m:.1f} ms" for n, m in medians.items()) + ratio)


if __name__ == "__main__":
    main()
