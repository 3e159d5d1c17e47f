"""What each CLI command does, kept apart from argument parsing so tests can call it."""

from __future__ import annotations

import json
import os
import platform
import subprocess
import sys
from pathlib import Path
from typing import Any

import yaml
from rich.console import Console

from distill.errors import DistillError
from distill.io import atomic_write_text


def run_and_report(recipe: Path, overrides: list[str], resume: bool, overwrite: bool, out_dir: Path | None,
                   console: Console) -> None:
    from distill.recipe import load_recipe

    _train(load_recipe(recipe, overrides), resume, overwrite, out_dir, console)


def train_and_report(card: Path, data: str | None, data_root: str | None, overrides: list[str], resume: bool,
                     overwrite: bool, out_dir: Path | None, console: Console) -> None:
    from distill.recipe import recipe_from_card

    loaded = recipe_from_card(card, data, data_root, overrides)
    _train(loaded, resume, overwrite, out_dir, console)
    checkpoint = loaded.student_card.checkpoint
    if checkpoint and data in (None, loaded.recipe.data.name):  # a teacher card: fill its checkpoint
        from distill.io import atomic_path

        run_dir = out_dir or Path(loaded.recipe.output_dir) / loaded.recipe.name
        with atomic_path(checkpoint) as tmp:
            tmp.write_bytes((run_dir / "student.safetensors").read_bytes())
        console.print(f"saved to the card's checkpoint {checkpoint}")


def _train(loaded, resume: bool, overwrite: bool, out_dir: Path | None, console: Console) -> None:
    from distill.engine.loop import Interrupted
    from distill.engine.runner import RunOptions, run_recipe
    from distill.report.summary import metrics_table

    try:
        summary = run_recipe(loaded, RunOptions(resume=resume, overwrite=overwrite, run_dir=out_dir))
    except Interrupted as stop:
        Console(stderr=True).print(f"distill: {stop}", soft_wrap=True, highlight=False)
        raise SystemExit(130) from None
    if not summary.is_main_process:
        return
    extra = {"processes": summary.processes, "split": loaded.recipe.data.val_split, "iterations": loaded.recipe.train.iterations,
             "wall time": f"{summary.wall_time_s:.0f} s", "params": f"{summary.params / 1e6:.2f} M",
             "run folder": str(summary.run_dir)}
    console.print(metrics_table(f"{loaded.recipe.name}: student on {loaded.recipe.data.name}", summary.metrics, extra))


def eval_and_report(model: Path | None, predictions: Path | None, data: str, data_root: str | None, split: str,
                    json_out: Path | None, console: Console) -> None:
    from distill.engine.scoring import score_model_file, score_prediction_folder
    from distill.report.summary import metrics_table, per_class_table

    if model is not None:
        metrics = score_model_file(model, data, data_root, split)
    else:
        metrics = score_prediction_folder(predictions, data, data_root, split)
    console.print(metrics_table(f"{model or predictions} on {data} {split}", metrics))
    console.print(per_class_table(metrics))
    if json_out is not None:
        atomic_write_text(json_out, json.dumps(metrics, indent=2))


def project_folder(name: str) -> Path:
    """recipes/, teachers/, students/: in the working directory, else beside the installed package."""
    here = Path(name)
    return here if here.is_dir() else Path(__file__).resolve().parents[1] / name


def list_yaml(kind: str, console: Console) -> None:
    folder = project_folder(kind)
    for path in sorted(folder.rglob("*.yaml")):
        try:
            data = yaml.safe_load(path.read_text()) or {}
        except yaml.YAMLError:
            data = {}
        text = data.get("description", "") if isinstance(data, dict) else ""
        first = text.strip().splitlines()[0] if text.strip() else ""
        console.print(f"[bold]{path.relative_to(folder.parent)}[/]  {first}", highlight=False)


def describe_environment() -> dict[str, Any]:
    import torch

    from distill.io import library_versions

    return {**library_versions(), "platform": platform.platform(), "cuda": torch.cuda.is_available(),
            "devices": torch.cuda.device_count(), "threads": torch.get_num_threads(), "cpus": os.cpu_count()}


def launch_processes(n: int) -> int:
    """Re-run this command under `accelerate launch` with n processes (CPU: gloo; GPU: NCCL)."""
    import torch

    args = [a for a in sys.argv[1:] if not a.startswith("--processes")]
    if "--processes" in sys.argv:
        i = sys.argv.index("--processes")
        args = sys.argv[1:i] + sys.argv[i + 2:]
    launch = [sys.executable, "-m", "accelerate.commands.launch", "--num_processes", str(n), "--num_machines", "1",
              "--mixed_precision", "no", "--dynamo_backend", "no"]
    if torch.cuda.is_available() and torch.cuda.device_count() < n:
        raise DistillError("command line", "--processes", f"at most {torch.cuda.device_count()} (the GPUs here)", got=n)
    # --multi_gpu selects accelerate's torchrun launcher; without CUDA the run uses gloo on the CPU
    launch += ["--multi_gpu"]
    return subprocess.call(launch + ["-m", "distill.cli", *args])
