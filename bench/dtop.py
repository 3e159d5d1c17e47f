"""What DToP's token exits buy: ViT files with and without exits, side by side in one run.

With one file, its unpruned copy (p0 1.0, same weights) is the reference and --p0 may name
several thresholds for the pruned copies; with several files, the first is the reference (e.g. a
control fine-tuned with p0 1.0) and each runs at its own card's p0. For each
image of the split (batch 1, at the first file's eval size or the image's own) every model
predicts once, the order rotating every image, so machine load drifts over all alike; a latency
ratio is the median over images of that model's time / the reference's on the same image.
Executed GFLOPs are counted with torch.utils.flop_counter on each real forward, the fraction of
tokens that exit at each auxiliary head read from the model after it, mIoU from each model's
confusion matrix over the split. --json keeps every figure.

    python bench/dtop.py runs/dtop/student.safetensors
    python bench/dtop.py runs/dtop/student.safetensors --p0 0.9 0.95   # one file at two thresholds
    python bench/dtop.py runs/v2/dtop_unpruned_s0/student.safetensors runs/v2/dtop_s0/student.safetensors \
        runs/v2/dtop_p095_s0/student.safetensors --data camvid --data-root ../shared/data/camvid --split test
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
            stats = models[name].dynamic_stats()
            exits[name].append([stats[key][0] for key in sorted(stats) if key.startswith("exit_fraction_head")])
    return {"metrics": {n: metrics[n].compute()["miou"] for n in names}, "times": times, "flops": flops, "exits": exits,
            "count": count}


def short(path: Path) -> str:
    """A run's file by its run folder's name (runs/v2/dtop_s0/student.safetensors: dtop_s0)."""
    return path.parent.name if path.name == "student.safetensors" else path.stem


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("models", type=Path, nargs="+", help="distill model files of the vit family; the first is the reference")
    parser.add_argument("--p0", type=float, nargs="+", help="with one file: the pruned copies' thresholds (default: the file's)")
    parser.add_argument("--data", help="data set (default: the first file's)")
    parser.add_argument("--data-root")
    parser.add_argument("--split", default="val")
    parser.add_argument("--images", type=int, help="only the first N images")
    parser.add_argument("--options", type=json.loads, help='data set options as JSON, e.g. \'{"size": [384, 512]}\'')
    parser.add_argument("--json", type=Path, help="write every figure (per model: mIoU, GFLOPs, exits per head, latency) here")
    args = parser.parse_args()
    torch.manual_seed(0)
    device = pick_device()
    first, meta = load_model_file(args.models[0])
    if len(args.models) == 1:
        first.card = first.card.model_copy(update={"p0": 1.0})
        models = {"unpruned copy (p0 1)": first}
        for p0 in args.p0 or [None]:
            pruned, _ = load_model_file(args.models[0])
            if p0 is not None:
                pruned.card = pruned.card.model_copy(update={"p0": p0})
            models[f"{short(args.models[0])} (p0 {pruned.card.p0:g}, k {pruned.card.k})"] = pruned
    else:
        if args.p0 is not None:
            parser.error("--p0 applies to a single file; with several, each runs at its own card's p0")
        loaded = [first] + [load_model_file(path)[0] for path in args.models[1:]]
        models = {f"{i}. {short(path)} (p0 {model.card.p0:g})": model   # numbered: the same file may come twice
                  for i, (path, model) in enumerate(zip(args.models, loaded), 1)}
    models = {name: model.to(device).eval() for name, model in models.items()}
    data = args.data or meta.info.get("dataset", "synthetic")
    options = args.options if args.options is not None else (meta.info.get("data_options") if data == meta.info.get("dataset") else None)
    dataset = build_dataset(data, args.data_root, args.split, options)
    eval_size = meta.info.get("eval_size")
    with torch.inference_mode():
        result = measure(models, dataset, tuple(eval_size) if eval_size else None, args.images, device)
    setting = (f"{data} {args.split}, {result['count']} images, batch 1, {device.type}, "
               f"{torch.get_num_threads()} thread(s)")
    summary = report(result, list(models), setting)
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps({"setting": setting, "eval_size": eval_size, "models": summary}, indent=2) + "\n")


def report(result: dict, names: list[str], setting: str) -> list[dict]:
    """Print the table and return its rows; ratios are against names[0]."""
    base = names[0]
    heads = len(result["exits"][base][0])
    rows = []
    for name in names:
        per_head = [statistics.mean(image[i] for image in result["exits"][name]) for i in range(heads)]
        gflops = statistics.mean(result["flops"][name])
        rows.append({"model": name, "miou": round(result["metrics"][name], 4), "gflops": round(gflops, 4),
                     "gflops_ratio": round(gflops / statistics.mean(result["flops"][base]), 4),
                     "exit_fraction_per_head": [round(f, 4) for f in per_head],
                     "latency_ms_median": round(result["times"][name].median_ms, 3),
                     "latency_ratio": round(paired_ratio(result["times"][name], result["times"][base]), 4)})
    table = Table(title=f"DToP side by side: {setting}", header_style="bold")
    for column in ("model", "mIoU %", "Δ mIoU", "executed GFLOPs (mean)", "GFLOPs ratio",
                   *(f"exit at head {i} %" for i in range(heads)), "latency ms (median)", "latency ratio"):
        table.add_column(column, justify="left" if column == "model" else "right", no_wrap=column == "model")
    for row in rows:
        table.add_row(row["model"], f"{row['miou']:.2f}", f"{row['miou'] - rows[0]['miou']:+.2f}", f"{row['gflops']:.4f}",
                      f"{row['gflops_ratio']:.3f}", *(f"{100 * f:.1f}" for f in row["exit_fraction_per_head"]),
                      f"{row['latency_ms_median']:.2f}", f"{row['latency_ratio']:.3f}")
    console = Console(width=max(Console().width, 150))  # a log file gets the whole table
    console.print(table)
    console.print(f"ratios: each model / {base} (latency: median over images of the paired times)")
    return rows


if __name__ == "__main__":
    main()
