"""A model card (Hugging Face form: YAML front matter, then Markdown) beside every model file.

`student.safetensors` gets `README.md` in its run folder; any other file (a pruned copy, an
exported `.onnx`) gets `<file name>.README.md` beside it. The card says what a user needs to run
the file elsewhere: classes in order, input normalisation and size, the metrics with their split
and resolution, params and GFLOPs, the recipe and how to reproduce it.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from distill.io import atomic_write_text


def card_path(model_path: Path) -> Path:
    return model_path.with_name("README.md") if model_path.name == "student.safetensors" else model_path.with_name(model_path.name + ".README.md")


def front_matter(card: dict[str, Any], info: dict[str, Any]) -> dict[str, Any]:
    metrics = info.get("metrics") or {}
    dataset = info.get("dataset")
    results = [{"type": name, "value": round(float(metrics[name]), 2), "name": f"{name} ({info.get('split', 'val')})"}
               for name in ("miou", "boundary_iou", "trimap_iou") if name in metrics]
    matter: dict[str, Any] = {"library_name": "distill", "pipeline_tag": "image-segmentation",
                              "tags": ["semantic-segmentation", "knowledge-distillation", card.get("family", "cnn")]}
    if info.get("prune"):
        matter["tags"].append("pruned")
    if dataset:
        matter["datasets"] = [dataset]
    if results:
        matter["model-index"] = [{"name": card.get("name", "model"), "results": [
            {"task": {"type": "image-segmentation"}, "dataset": {"name": dataset or "unknown", "split": info.get("split", "val")},
             "metrics": results}]}]
    return matter


def body(model_path: Path, card: dict[str, Any], info: dict[str, Any], facts: dict[str, Any]) -> list[str]:
    classes = card.get("classes") or []
    metrics = info.get("metrics") or {}
    size = info.get("eval_size") or "native label resolution"
    arch = ", ".join(f"{k} {card[k]}" for k in ("arch", "backbone", "output_stride", "head_channels", "widths") if k in card)
    lines = [f"# {card.get('name', model_path.stem)}", "", card.get("description") or "", "",
             f"File: `{model_path.name}` ({facts.get('format', 'distill safetensors')}). Family `{card.get('family', 'cnn')}`: {arch}.", "",
             "## Input", "", f"- RGB in [0, 1], normalised inside the model with mean {list(card.get('input_mean', []))} "
             f"and std {list(card.get('input_std', []))}" + (" (inside the ONNX graph too; its metadata repeats classes and normalisation)" if facts.get("onnx") else ""),
             f"- input: `{(card.get('input') or {}).get('name', 'image')}`; evaluated at {size}", "",
             "## Classes (output channel order)", ""] + [f"{i}. {name}" for i, name in enumerate(classes)]
    lines += ["", "## Metrics", "", f"On {info.get('dataset', '?')} {info.get('split', 'val')} at {size}:", ""]
    lines += [f"- {name}: {float(metrics[name]):.2f}" for name in ("miou", "pixel_acc", "boundary_iou", "trimap_iou") if name in metrics]
    lines += ["", "## Cost", "", f"- params: {facts['params'] / 1e6:.2f} M" if "params" in facts else "- params: see `distill compare`",
              f"- GFLOPs: {facts['gflops']:.2f} at {facts['gflops_size'][0]}x{facts['gflops_size'][1]}" if "gflops" in facts else "",
              "- batch-1 latency: measured side by side by `distill compare` on the machine that runs it"]
    return lines


def reproduce(info: dict[str, Any], recipe_text: str | None) -> list[str]:
    lines = ["", "## How it was made", "", f"Recipe `{info.get('recipe', '?')}` (hash {info.get('recipe_hash', '?')}), seed "
             f"{info.get('seed', '?')}, {info.get('iterations', '?')} iterations; teachers: {info.get('teachers') or 'none'}."]
    if recipe_text:
        lines += ["", "```yaml", recipe_text.rstrip(), "```"]
    return lines + ["", "Reproduce: `distill run <that recipe>`; check: `distill eval " + "<this file> --data "
                    f"{info.get('dataset', 'DATA')} --split {info.get('split', 'val')}`."]


def write_model_card(model_path: Path, card: dict[str, Any], info: dict[str, Any], facts: dict[str, Any] | None = None,
                     recipe_text: str | None = None) -> Path:
    facts = facts or {}
    text = "---\n" + yaml.safe_dump(front_matter(card, info), sort_keys=False) + "---\n\n"
    text += "\n".join(body(model_path, card, info, facts) + reproduce(info, recipe_text)) + "\n"
    target = card_path(model_path)
    atomic_write_text(target, text)
    return target
