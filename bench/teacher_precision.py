"""What train.teacher_precision=bf16 changes for one teacher: its forward time against fp32, and
how far its predictions move (pixels whose class changes, mIoU of each), side by side in one run.

Both precisions run on the same images in alternation (channels-last, as training runs teachers),
so machine load affects them alike; times are medians over the batches. Defaults: the CamVid v2
Lite2 teacher from zoo/ on the first 24 val images at the native 360x480, batches of 4.

    python bench/teacher_precision.py [MODEL_FILE] [--split val] [--images 24] [--batch 4]
"""

from __future__ import annotations

import argparse
import statistics
import time
from pathlib import Path

import torch

from distill.data.build import build_dataset
from distill.engine.evaluate import predict_batch
from distill.metrics.segmetrics import SegMetrics
from distill.models.build import load_model_file

ROOT = Path(__file__).resolve().parents[1]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("model", nargs="?", default=str(ROOT / "zoo/camvid_deeplabv3plus_lite2_v2.safetensors"))
    parser.add_argument("--data-root", default=str(ROOT / "../shared/data/camvid"))
    parser.add_argument("--split", default="val")
    parser.add_argument("--images", type=int, default=24)
    parser.add_argument("--batch", type=int, default=4)
    args = parser.parse_args()
    print(f"bf16 instructions (oneDNN): {torch.ops.mkldnn._is_mkldnn_bf16_supported()}; threads {torch.get_num_threads()}")
    model, _ = load_model_file(args.model)
    model = model.eval().float().to(memory_format=torch.channels_last)
    dataset = build_dataset("camvid", args.data_root, args.split)
    metrics = {p: SegMetrics(model.num_classes) for p in ("fp32", "bf16")}
    times: dict[str, list[float]] = {"fp32": [], "bf16": []}
    changed = total = 0
    n = min(args.images, len(dataset))
    for start in range(0, n, args.batch):
        samples = [dataset[i] for i in range(start, min(start + args.batch, n))]
        images = torch.stack([s["image"] for s in samples]).contiguous(memory_format=torch.channels_last)
        labels = torch.stack([s["label"] for s in samples])
        maps = {}
        for precision in ("fp32", "bf16") if start % 2 == 0 else ("bf16", "fp32"):
            begin = time.perf_counter()
            with torch.inference_mode(), torch.autocast("cpu", dtype=torch.bfloat16, enabled=precision == "bf16"):
                maps[precision] = predict_batch(model, images, tuple(labels.shape[-2:]), None)
            times[precision].append(time.perf_counter() - begin)
            metrics[precision].update(maps[precision], labels)
        changed += int((maps["fp32"] != maps["bf16"]).sum())
        total += maps["fp32"].numel()
    fp32, bf16 = statistics.median(times["fp32"]), statistics.median(times["bf16"])
    print(f"{args.model}: {n} {args.split} images, batch {args.batch}")
    print(f"forward + argmax per batch: fp32 {fp32:.3f} s, bf16 {bf16:.3f} s, fp32/bf16 {fp32 / bf16:.2f}x")
    print(f"pixels whose class differs: {100 * changed / total:.3f}%")
    for precision, m in metrics.items():
        print(f"{precision} mIoU {m.compute()['miou']:.2f}")


if __name__ == "__main__":
    main()
