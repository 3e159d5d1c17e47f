"""What each CLI command does, kept apart from argument parsing so tests can call it.

Heavy modules (torch, timm, accelerate) are imported inside the commands, after the cheap checks,
so a typo in a recipe is answered before seconds of imports.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import yaml
from rich.console import Console

from distill.errors import DistillError


def run_and_report(recipe: Path, overrides: list[str], resume: bool, overwrite: bool, out_dir: Path | None,
                   console: Console, accept_changes: bool = False) -> None:
    from distill.recipe import load_recipe

    _train(load_recipe(recipe, overrides), resume, overwrite, out_dir, console, accept_changes)


def plan_and_report(recipe: Path, overrides: list[str], resume: bool, overwrite: bool, out_dir: Path | None,
                    console: Console, accept_changes: bool = False) -> None:
    from distill.recipe import load_recipe
    from distill.stages import RunOptions
    from distill.stages.dryrun import dry_run

    options = RunOptions(resume=resume, overwrite=overwrite, run_dir=out_dir, accept_changes=accept_changes)
    dry_run(load_recipe(recipe, overrides), options, console)


def train_and_report(card: Path, data: str | None, data_root: str | None, overrides: list[str], resume: bool,
                     overwrite: bool, out_dir: Path | None, console: Console) -> None:
    from distill.recipe import recipe_from_card

    loaded = recipe_from_card(card, data, data_root, overrides)
    _train(loaded, resume, overwrite, out_dir, console)
    checkpoint = loaded.student_card.checkpoint
    if checkpoint and data in (None, loaded.recipe.data.name):  # a teacher card: fill its checkpoint
        from distill.io import atomic_copy

        run_dir = out_dir or Path(loaded.recipe.output_dir) / loaded.recipe.name
        atomic_copy(run_dir / "student.safetensors", checkpoint)
        console.print(f"saved to the card's checkpoint {checkpoint}")


def _train(loaded, resume: bool, overwrite: bool, out_dir: Path | None, console: Console, accept_changes: bool = False) -> None:
    from distill.engine.loop import Interrupted
    from distill.stages import RunOptions, run_recipe
    from distill.report.summary import metrics_table

    try:
        summary = run_recipe(loaded, RunOptions(resume=resume, overwrite=overwrite, run_dir=out_dir, accept_changes=accept_changes))
    except Interrupted as stop:
        Console(stderr=True).print(f"distill: {stop}", soft_wrap=True, highlight=False)
        raise SystemExit(130) from None
    if not summary.is_main_process:
        return
    trained = ({"model": "int8 ONNX (quantize.json)"} if loaded.recipe.quantize_only
               else {"iterations": loaded.recipe.train.iterations})
    extra = {"processes": summary.processes, "split": loaded.recipe.data.val_split, **trained,
             "wall time": f"{summary.wall_time_s:.0f} s", "params": f"{summary.params / 1e6:.2f} M",
             "run folder": str(summary.run_dir)}
    console.print(metrics_table(f"{loaded.recipe.name}: student on {loaded.recipe.data.name}", summary.metrics, extra))


def eval_and_report(model: Path | None, predictions: Path | None, data: str, data_root: str | None, split: str,
                    json_out: Path | None, console: Console, card: Path | None = None, allow_pickle: bool = False,
                    label_input: bool = True, inference: dict | None = None) -> None:
    from distill.engine.scoring import score_model_file, score_prediction_folder
    from distill.io import atomic_write_text
    from distill.report.summary import metrics_table, per_class_table

    if model is not None and model.suffix == ".onnx":
        if card is not None or allow_pickle or inference is not None:
            raise DistillError("command line", "MODEL", "a model file for --card, --allow-pickle, --scales and --flip "
                               "(an ONNX file holds one fixed graph and its own metadata)", got=str(model))
        from distill.export.runtime import score_onnx_file

        metrics = score_onnx_file(model, data, data_root, split)
    elif model is not None:
        metrics = score_model_file(model, data, data_root, split, card=card, allow_pickle=allow_pickle, label_input=label_input,
                                   inference=inference)
    else:
        metrics = score_prediction_folder(predictions, data, data_root, split)
    console.print(metrics_table(f"{model or predictions} on {data} {split}", metrics))
    if "label_input" in metrics:
        console.print(f"[bold]label input:[/] {metrics['label_input']}. This model reads the label as an input channel "
                      "(a label-assisted teacher): its mIoU is not an image-only model's. "
                      + ("--no-label-input zeroes the channel." if label_input else ""), soft_wrap=True, highlight=False)
    if "inference" in metrics:
        views = len(metrics["inference"]["scales"]) * (2 if metrics["inference"]["flip"] else 1)
        console.print(f"[bold]inference:[/] mean softmax over {views} views (scales {metrics['inference']['scales']}"
                      f"{', flipped and not' if metrics['inference']['flip'] else ''}): {views} forwards per image.",
                      soft_wrap=True, highlight=False)
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
            data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
        except (yaml.YAMLError, UnicodeDecodeError):  # listed without a description; `distill run` says why
            data = {}
        text = data.get("description", "") if isinstance(data, dict) else ""
        first = text.strip().splitlines()[0] if text.strip() else ""
        console.print(f"[bold]{path.relative_to(folder.parent)}[/]  {first}", highlight=False)


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


REPORT_SUFFIXES = {".md": "md", ".markdown": "md", ".json": "json", ".html": "html", ".htm": "html"}


def choose_format(fmt: str | None, out: Path | None) -> str:
    """--format wins; else the --out suffix decides; else a terminal table."""
    if fmt is None:
        if out is None:
            return "table"
        if out.suffix.lower() not in REPORT_SUFFIXES:
            got = out.suffix or "<no suffix>"
            raise DistillError(out, "--out", "a .md, .json or .html file (or pass --format)", got=got)
        return REPORT_SUFFIXES[out.suffix.lower()]
    if fmt == "table" and out is not None:
        raise DistillError("command line", "--format", "md, json or html with --out (table prints to the terminal)", got=fmt)
    return fmt


def check_and_report(model: Path, baseline: Path, max_miou_drop: float, max_latency_increase: str,
                     max_params: str | None, data: str | None, data_root: str | None, split: str, stored: bool,
                     write: bool, repeats: int, console: Console) -> int:
    """The exit code: 0 when the model passes (or the baseline was written), 1 on a regression."""
    from distill.report.check import Limits, check_table, parse_count, parse_percent, run_check, write_baseline
    from distill.report.compare import DataChoice

    if max_miou_drop < 0:
        raise DistillError("command line", "--max-miou-drop", "a number >= 0 (mIoU points)", got=max_miou_drop)
    limits = Limits(max_miou_drop, parse_percent(max_latency_increase, "--max-latency-increase"),
                    parse_count(max_params, "--max-params") if max_params is not None else None)
    choice = DataChoice(data, data_root, split) if data else None
    if write:
        record = write_baseline(model, baseline, choice, stored)
        facts = {k: record[k] for k in ("evaluation", "metrics", "params", "gflops", "file_bytes", "input_size")}
        console.print_json(json.dumps({"model": record["model"], **facts}))
        console.print(f"wrote baseline {baseline}", highlight=False)
        return 0
    result = run_check(model, baseline, limits, choice, stored, repeats)
    verdict = "[green]pass[/]" if result.passed else "[bold red]regression[/]"
    console.print(check_table(f"{model} against {baseline}", result.criteria, result.setting))
    console.print(f"check: {verdict}")
    return 0 if result.passed else 1


def export_and_report(model: Path, fmt: str, opset: int, dynamic_size: bool, size: tuple[int, int] | None,
                      out: Path | None, console: Console) -> int:
    """The exit code: 0 when the exported file matches PyTorch, 1 when it does not (the file is kept)."""
    if fmt.lower() == "fp16":
        from distill.export.half import export_fp16

        path, digest, size = export_fp16(model, out)
        console.print(f"wrote {path} ({size / 1e6:.2f} MB, sha256 {digest}); record the figures of distill eval {path}",
                      highlight=False)
        return 0
    if fmt.lower() != "onnx":
        raise DistillError("command line", "--format", "onnx or fp16", got=fmt)
    from distill.export.onnx import export_onnx, export_table

    report = export_onnx(model, out or model.with_suffix(".onnx"), opset, dynamic_size, size)
    console.print(export_table(report))
    console.print(report.describe_setting(), highlight=False)
    if not report.passed:
        worst = report.worst
        Console(stderr=True).print(
            f"distill: {report.path}: parity: expected max |diff| <= {worst.limit:.1e} against PyTorch at "
            f"{worst.size[0]}x{worst.size[1]}, got {worst.max_abs_diff:.1e} (the file is kept for inspection)",
            markup=False, highlight=False, soft_wrap=True)
        return 1
    console.print(f"wrote {report.path}", highlight=False)
    return 0


def quantize_and_report(model: Path, data: str, data_root: str | None, options: Any, size: tuple[int, int] | None,
                        out: Path | None, console: Console) -> None:
    from distill.export.quantize import quantize_onnx
    from distill.export.quantize_report import print_report

    report = quantize_onnx(model, out, data, options, size, data_root=data_root)
    print_report(report, console)


def prune_table(report: Any, title: str) -> Any:
    """Params, GFLOPs (and latency, when timed) before and after pruning."""
    from rich.table import Table

    before, after = report.before, report.after
    rows = [("params", f"{before.params / 1e6:.2f} M", f"{after.params / 1e6:.2f} M", f"{after.params / before.params:.2f}x"),
            ("GFLOPs", f"{before.gflops:.2f}", f"{after.gflops:.2f}", f"{after.gflops / before.gflops:.2f}x")]
    if after.latency_ratio is not None:
        rows.append(("batch-1 latency", "1.00", f"{after.latency_ratio:.2f}", f"{after.latency_ratio:.2f}x"))
    table = Table(title=title)
    for column in ("", "unpruned", "pruned", "ratio"):
        table.add_column(column, justify="left" if not column else "right")
    for row in rows:
        table.add_row(*row)
    return table


def prune_and_report(model: Path, ratio: float, importance: str, global_pruning: bool, steps: int | None,
                     target_latency_ratio: float | None, target_gflops_ratio: float | None,
                     size: tuple[int, int] | None, out: Path | None, console: Console) -> None:
    from pydantic import ValidationError

    from distill.io import read_model_file
    from distill.models.build import model_from_file, save_model
    from distill.prune.channels import prune_model
    from distill.specs import PruneSpec
    from distill.yamlfile import validation_error

    if importance == "taylor":
        raise DistillError("command line", "--importance", "magnitude or group_norm (taylor needs training data: "
                           "use a recipe's prune: block)", got=importance)
    fields = {"ratio": ratio, "importance": importance, "global_pruning": global_pruning, "steps": steps,
              "target_latency_ratio": target_latency_ratio, "target_gflops_ratio": target_gflops_ratio}
    try:
        spec = PruneSpec.model_validate(fields)
    except ValidationError as exc:
        error = validation_error(exc, PruneSpec, lambda loc: ("command line", None))
        flag = "--" + str(error.field).replace("_pruning", "").replace("_", "-")
        raise DistillError("command line", flag, error.expected, got=error.got) from None
    meta, state = read_model_file(model)
    student = model_from_file(meta, state).eval()
    size = size or tuple(meta.info.get("eval_size") or (360, 480))
    report = prune_model(student, spec, size, file="command line", progress=console.print)
    out = out or model.with_name(model.name.removesuffix(".safetensors") + ".pruned.safetensors")
    info = {k: v for k, v in meta.info.items() if k not in ("metrics", "versions")}  # its metrics no longer hold
    info["prune"] = {**report.as_dict(), "source": str(model), "importance": importance, "global": global_pruning}
    save_model(student, out, info)
    from distill.model_card import write_model_card

    write_model_card(out, student.card.model_dump(mode="json"), info,
                     {"params": report.after.params, "gflops": report.after.gflops, "gflops_size": size})
    console.print(prune_table(report, f"{model} pruned at {size[0]}x{size[1]}"))
    if report.target_met is False:
        console.print(f"[yellow]target not met at ratio {ratio}[/]: raise --ratio to prune further")
    console.print(f"saved to {out} (not fine-tuned: evaluate it, or fine-tune it with a recipe's student_init)")
