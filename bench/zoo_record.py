"""Record a zoo/ file in zoo/index.json: its sha256, the card it belongs to, the val and test figures
that `distill eval` wrote (--val/--test JSON files) and the 8-image val slice mIoU that
tests/test_zoo.py re-evaluates. Writes index.json atomically.

    python bench/zoo_record.py zoo/X.safetensors --card teachers/X.yaml --val val.json --test test.json
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

KEYS = ("miou", "pixel_acc", "boundary_iou", "trimap_iou")


def slice_miou(path: Path, root: str, images: int) -> float:
    from accelerate import Accelerator

    from distill.data import build_dataset
    from distill.engine.evaluate import evaluate
    from distill.models import load_model_file

    model, _ = load_model_file(path)
    dataset = build_dataset("camvid", root, "val")
    part = torch.utils.data.Subset(dataset, range(images))
    return evaluate(model.eval(), part, list(dataset.classes), Accelerator(cpu=True))["miou"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("file", type=Path)
    parser.add_argument("--card", required=True)
    parser.add_argument("--val", type=Path, required=True)
    parser.add_argument("--test", type=Path, required=True)
    parser.add_argument("--root", default="../shared/data/camvid")
    parser.add_argument("--images", type=int, default=8)
    args = parser.parse_args()
    index_path = args.file.parent / "index.json"
    index = json.loads(index_path.read_text()) if index_path.is_file() else {}
    figures = {split: {k: round(json.loads(p.read_text())[k], 2) for k in KEYS} for split, p in (("val", args.val), ("test", args.test))}
    index[args.file.name] = {
        "sha256": hashlib.sha256(args.file.read_bytes()).hexdigest(),
        "card": args.card,
        "dtype": "float16",
        **figures,
        "slice": {"dataset": "camvid", "root": args.root, "split": "val", "images": args.images,
                  "miou": round(slice_miou(args.file, args.root, args.images), 4)},
    }
    tmp = index_path.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(index, indent=2) + "\n")
    os.replace(tmp, index_path)
    print(json.dumps(index[args.file.name], indent=2))


if __name__ == "__main__":
    main()
