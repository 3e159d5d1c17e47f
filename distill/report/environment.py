"""`distill env`: what a bug report needs to know about the machine and the libraries."""

from __future__ import annotations

import os
import platform
from pathlib import Path
from typing import Any


def describe_environment() -> dict[str, Any]:
    import importlib.metadata as metadata

    import torch

    from distill.io import library_versions

    versions = {}
    for package in ("accelerate", "torch-pruning", "torchvision", "safetensors", "onnx", "onnxruntime", "pydantic"):
        try:
            versions[package] = metadata.version(package)
        except metadata.PackageNotFoundError:
            versions[package] = "not installed"
    return {**library_versions(), **versions, "platform": platform.platform(), "cuda": torch.cuda.is_available(),
            "devices": torch.cuda.device_count(), "threads": torch.get_num_threads(), "cpus": os.cpu_count(),
            "accelerate config": accelerate_config()}


def accelerate_config() -> str:
    """The default accelerate config file's text, or a note that there is none (then one process)."""
    from accelerate.commands.config import default_config_file

    path = Path(default_config_file)
    return path.read_text(encoding="utf-8", errors="replace").strip() if path.is_file() else f"none ({path} does not exist)"


def environment_markdown(facts: dict[str, Any]) -> str:
    config = facts.pop("accelerate config")
    lines = ["### distill environment", "", "| | |", "|---|---|"] + [f"| {k} | {v} |" for k, v in facts.items()]
    return "\n".join(lines + ["", "accelerate config:", "", "```yaml", config, "```"])
