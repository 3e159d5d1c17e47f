"""What DToP's token exits buy: the same ViT file with and without exits, side by side in one run.

For each image of the split (batch 1, at the file's eval size or the image's own), the unpruned
copy (p0 1.0) and the file's model (or --p0) predict one after the other, the order alternating
every image, so machine load drifts over both alike; the latency ratio is the median over images
of pruned / unpruned time. Executed GFLOPs are counted with torch.utils.flop_counter on each real
forward, mIoU from each model's confusion matrix over the split.

    python bench/dtop.py runs/dtop/student.safetensors
    python bench/dtop.py runs/dtop/student.safetensors --options '{"size": [384, 512], "num_images": 12}'
    OMP_NUM_THREADS=1 python bench/dtop.py ...   # on a machine shared with other jobs (2 threads there time the contention)
    python bench/dtop.py runs/camvid_dtop/student.safetensors --data camvid --data-root ../shared/data/camvid --images 50
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
import sys
from functools import partial
from pathlib import Path

import torch
from torch.utils.flop_counter import FlopCounterMode

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from rich.console import Console
from rich.table import Table

from distill.data import build_dataset
from distill.engine.evaluate import predict_batch
from distill.measure.latency import Latency, paired_ratio, pick_device, time_once
from distill.metrics import SegMetrics
from distill.models import load_model_file


def measure(models: dict, dataset, eval_size, limit: int | None, device) -> dict:
    names = list(models)
    metrics = {n: SegMetrics(len(dataset.classes), list(dataset.classes), device=device) for n in names}
    times, flops = {n: Latency() for n in names}, {n: [] for n in names}
    exits = {n: [] for n in names}
    count = min(len(dataset), limit or len(dataset))
    for i in range(count):
        sample = dataset[i]
        image, label = sample["image"][None].to(device), sample["label"][None].to(device)
        for j in range(len(names)):
            name = names[(i + j) % len(names)]
            run = partial(predict_batch, models[name], image, tuple(label.shape[-2:]), eval_size, label)
            times[name].samples_ms.append(time_once(run, device, time.perf_counter))
            counter = FlopCounterMode(display=False)
            with counter:
                pred = run()
            flops[name].append(counter.get_total_flops() / 1e9)
            metrics[name].update(pred, label)
            exits[name].append(1.0 - models[name].dynamic_stats()["final_fraction"][0])
    return {"metrics": {n: metrics[n].compute()["miou"] for n in names}, "times": times, "flops": flops, "exits": exits,
            "count": count}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("model", type=Path, help="a distill model file of the vit family")
    parser.add_argument("--p0", type=float, help="the pruned copy's threshold (default: the file's)")
    parser.add_argument("--data", help="data set (default: the file's)")
    parser.add_argument("--data-root")
    parser.add_argument("--split", default="val")
    parser.add_argument("--images", type=int, help="only the first N images")
    parser.add_argument("--options", type=json.loads, help='data set options as JSON, e.g. \'{"size": [384, 512]}\'')
    args = parser.parse_args()
    torch.manual_seed(0)
    pruned, meta = load_model_file(args.model)
    unpruned, _ = load_model_file(args.model)
    if args.p0 is not None:
        pruned.card = pruned.card.model_copy(update={"p0": args.p0})
    unpruned.card = unpruned.card.model_copy(update={"p0": 1.0})
    data = args.data or meta.info.get("dataset", "synthetic")
    options = args.options if args.options is not None else (meta.info.get("data_options") if data == meta.info.get("dataset") else None)
    dataset = build_dataset(data, args.data_root, args.split, options)
    device = pick_device()
    models = {"unpruned (p0 1.0)": unpruned.to(device).eval(), f"pruned (p0 {pruned.card.p0:g}, k {pruned.card.k})": pruned.to(device).eval()}
    eval_size = meta.info.get("eval_size")
    with torch.inference_mode():
        result = measure(models, dataset, tuple(eval_size) if eval_size else None, args.images, device)
    report(result, list(models), f"{data} {args.split}, {result['count']} images, batch 1, {device.type}, "
           f"{torch.get_num_threads()} thread(s)")


def report(result: dict, names: list[str], setting: str) -> None:
    table = Table(title=f"DToP side by side: {setting}", header_style="bold")
    for column in ("model", "mIoU %", "executed GFLOPs (mean)", "tokens exited %", "latency ms (median)"):
        table.add_column(column, justify="left" if column == "model" else "right")
    for name in names:
        table.add_row(name, f"{result['metrics'][name]:.2f}", f"{statistics.mean(result['flops'][name]):.4f}",
                      f"{100 * statistics.mean(result['exits'][name]):.1f}", f"{result['times'][name].median_ms:.2f}")
    console = Console()
    console.print(table)
    base, pruned = names
    gflops = statistics.mean(result["flops"][pruned]) / statistics.mean(result["flops"][base])
    latency = paired_ratio(result["times"][pruned], result["times"][base])
    console.print(f"pruned / unpruned: GFLOPs ratio {gflops:.3f}, batch-1 latency ratio {latency:.3f} "
                  f"(median over images of the paired times), mIoU {result['metrics'][pruned] - result['metrics'][base]:+.2f}")


if __name__ == "__main__":
    main()
