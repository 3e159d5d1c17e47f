"""The `distill` command line: parse, call the library, render.

Every user error is a DistillError, printed as one line with exit code 2 (`--debug` shows the
traceback). Ctrl-C during training finishes the step, saves a checkpoint and exits with 130.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Annotated, Optional

import typer
from rich.console import Console

from distill.cli_support import Format, reflow_help, show_version
from distill.cli_quantize import EXAMPLE as QUANTIZE_EXAMPLE, quantize
from distill.errors import DistillError, from_worker
from distill.processes import is_main_process

app = typer.Typer(
    add_completion=False,
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    help="Distil, prune and measure semantic-segmentation students.\n\nStart with: distill run recipes/kd.yaml",
)
# Under --processes N every process runs this module; only process 0 prints (errors still show on all).
console = Console(quiet=not is_main_process())
err_console = Console(stderr=True)

Overrides = Annotated[Optional[list[str]], typer.Argument(help="dotted overrides, e.g. train.iterations=200 data.batch_size=4")]


@app.command(epilog="Example: distill run recipes/kd.yaml train.iterations=100")
def run(
    recipe: Annotated[Path, typer.Argument(help="recipe YAML")],
    overrides: Overrides = None,
    resume: Annotated[bool, typer.Option(help="continue from the run folder's last checkpoint")] = False,
    overwrite: Annotated[bool, typer.Option(help="replace an existing run folder")] = False,
    out_dir: Annotated[Optional[Path], typer.Option(help="run folder (default runs/<recipe name>)")] = None,
    processes: Annotated[int, typer.Option(help="number of processes (relaunches through accelerate)")] = 1,
    dry_run: Annotated[bool, typer.Option(help="check everything and print the plan (stages, models, reads); write nothing")] = False,
    accept_changes: Annotated[bool, typer.Option(help="with --resume: continue although the recipe changed since the run "
                                                      "started (e.g. more iterations); recorded in changes.jsonl")] = False,
) -> None:
    """Distil a student from a teacher as the recipe says; writes runs/<name>/."""
    from distill.commands import launch_processes, plan_and_report, run_and_report

    if dry_run:
        return plan_and_report(recipe, overrides or [], resume, overwrite, out_dir, console, accept_changes)
    if processes > 1:
        raise typer.Exit(launch_processes(processes))
    run_and_report(recipe, overrides or [], resume, overwrite, out_dir, console, accept_changes)


@app.command(epilog="Example: distill train teachers/synthetic_deeplabv3plus_lite2.yaml --data synthetic")
def train(
    card: Annotated[Path, typer.Argument(help="model card YAML (teachers/ or students/)")],
    overrides: Overrides = None,
    data: Annotated[Optional[str], typer.Option(help="data set name (default: the card's train.data)")] = None,
    data_root: Annotated[Optional[str], typer.Option(help="data set folder")] = None,
    resume: Annotated[bool, typer.Option(help="continue from the last checkpoint")] = False,
    overwrite: Annotated[bool, typer.Option(help="replace an existing run folder")] = False,
    out_dir: Annotated[Optional[Path], typer.Option(help="run folder (default runs/<card name>[-<data>])")] = None,
) -> None:
    """Train a model from labels alone (a teacher, or the student-only baseline)."""
    from distill.commands import train_and_report

    train_and_report(card, data, data_root, overrides or [], resume, overwrite, out_dir, console)


@app.command(name="eval", epilog="Example: distill eval runs/kd/student.safetensors --data synthetic --split val\n\n"
                                  "A foreign torch state dict: "
                                  "distill eval MODEL.pth --allow-pickle --card students/lraspp_mobilenetv3_small.yaml")
def eval_(
    model: Annotated[Optional[Path], typer.Argument(help="a .safetensors model file, or an .onnx file from export/quantize")] = None,
    data: Annotated[str, typer.Option(help="data set name")] = "synthetic",
    data_root: Annotated[Optional[str], typer.Option(help="data set folder")] = None,
    split: Annotated[str, typer.Option(help="val or test")] = "val",
    predictions: Annotated[Optional[Path], typer.Option(help="score a folder of PNG label maps instead of a model")] = None,
    json_out: Annotated[Optional[Path], typer.Option("--json", help="also write the metrics as JSON")] = None,
    allow_pickle: Annotated[bool, typer.Option("--allow-pickle", help="load a torch .pth state dict (weights_only=True; "
                                                                      "needs --card)")] = False,
    card: Annotated[Optional[Path], typer.Option(help="model card that builds a .pth file's architecture")] = None,
    label_input: Annotated[bool, typer.Option(help="a model that reads the label (a LAD teacher) gets it; "
                                                   "--no-label-input: zeros instead")] = True,
    scales: Annotated[Optional[str], typer.Option(help="multi-scale inference: comma-separated input scales, e.g. "
                                                       "0.75,1,1.25 (mean softmax; replaces the card's inference)")] = None,
    flip: Annotated[bool, typer.Option("--flip", help="also predict each scale mirrored and average")] = False,
) -> None:
    """mIoU, pixel accuracy, boundary and trimap IoU, per-class IoU of a model file or prediction folder."""
    from distill.commands import eval_and_report

    if (model is None) == (predictions is None):
        raise DistillError("command line", "MODEL / --predictions", "exactly one of a model file or --predictions DIR")
    inference = None
    if scales is not None or flip:
        try:
            factors = [float(v) for v in scales.split(",")] if scales else [1.0]
        except ValueError:
            raise DistillError("command line", "--scales", "comma-separated numbers, e.g. 0.75,1,1.25", got=scales) from None
        inference = {"scales": factors, "flip": flip}
    eval_and_report(model, predictions, data, data_root, split, json_out, console, card, allow_pickle, label_input, inference)


@app.command(epilog="Example: distill recipes")
def recipes(
    copy: Annotated[Optional[tuple[str, Path]], typer.Option(help="NAME DEST: copy a shipped recipe (base merged in) to edit",
                                                            metavar="NAME DEST")] = None,
) -> None:
    """The recipes that ship, as a table (losses, teacher, student, data, iterations); --copy one to edit."""
    from distill.commands import project_folder
    from distill.report.recipes import copy_recipe, recipes_table

    if copy is not None:
        dest = copy_recipe(project_folder("recipes"), copy[0], copy[1])
        console.print(f"copied to {dest} (base merged in; card paths are relative to the working directory)", highlight=False)
        return
    console.print(recipes_table(project_folder("recipes")))


@app.command()
def cards() -> None:
    """List the teacher and student model cards that ship, one line each."""
    from distill.commands import list_yaml

    list_yaml("teachers", console)
    list_yaml("students", console)


@app.command(epilog="Example: distill env --json")
def env(as_json: Annotated[bool, typer.Option("--json", help="print JSON instead of the Markdown block")] = False) -> None:
    """Versions, device, threads and the accelerate config: a Markdown block to paste into a bug report."""
    from distill.report.environment import describe_environment, environment_markdown

    facts = describe_environment()
    if as_json:
        console.print_json(json.dumps(facts))
    else:
        print(environment_markdown(facts))


@app.callback()
def options(version: Annotated[bool, typer.Option("--version", callback=show_version, is_eager=True,
                                                  help="print the version and exit")] = False) -> None:
    """Distil, prune and measure semantic-segmentation students."""


@app.command(epilog="Example: distill compare runs/student_only runs/kd runs/bpkd --format html --out report.html")
def compare(
    runs: Annotated[list[Path], typer.Argument(help="run folders or .safetensors model files", show_default=False)],
    baseline: Annotated[Optional[Path], typer.Option(help="the row Δ mIoU is taken against (default: the first)")] = None,
    format: Annotated[Optional[Format], typer.Option(help="table (terminal), md, json or html; default: --out's suffix")] = None,
    out: Annotated[Optional[Path], typer.Option(help="write the report here (md, json or a self-contained html page)")] = None,
    data: Annotated[Optional[str], typer.Option(help="re-evaluate every model on this data set (default: stored)")] = None,
    data_root: Annotated[Optional[str], typer.Option(help="data set folder")] = None,
    split: Annotated[str, typer.Option(help="split to re-evaluate on")] = "val",
    size: Annotated[Optional[tuple[int, int]],
                    typer.Option(help="H W of the GFLOPs/latency input (default: the baseline's eval size, else 360 480)")] = None,
    repeats: Annotated[int, typer.Option(help="timed runs per model after warm-up, interleaved; 0 skips latency")] = 20,
    group: Annotated[bool, typer.Option("--group/--no-group",
                                        help="one row (mean, min–max) for runs whose recipes differ only in seed")] = True,
    per_seed: Annotated[bool, typer.Option("--per-seed", help="also list each seed of a grouped row (terminal and "
                                                              "Markdown; JSON and HTML always do)")] = False,
) -> None:
    """Compare runs side by side: mIoU and its change, boundary and trimap IoU, params, GFLOPs, latency, file size.

    Metrics come from the files (metrics.json, or the model file's metadata) unless --data is given.
    GFLOPs are torch.utils.flop_counter's total (2 FLOPs per multiply-add). Latency is batch 1 at
    the stated size, median and p90, measured round by round across all models so machine load
    affects them alike; the device and thread count are printed with it. Runs whose recorded
    recipes differ only in train.seed (and data.subset_seed) are one row: the mean over the seeds,
    with min–max for the accuracy columns; Δ mIoU and the plots use the means.
    """
    from distill.commands import choose_format
    from distill.report.compare_command import compare_and_report

    compare_and_report(runs, baseline, choose_format(format.value if format else None, out), out, data, data_root,
                       split, tuple(size) if size else None, repeats, console, group, per_seed)


@app.command(epilog="Example: distill check runs/kd/student.safetensors --baseline ci/baseline_tiny.json --data synthetic "
                    "--max-miou-drop 0.5 --max-latency-increase 10%")
def check(
    model: Annotated[Path, typer.Argument(help="the candidate: a .safetensors file or a run folder", show_default=False)],
    baseline: Annotated[Path, typer.Option(help="baseline JSON (written by --write-baseline)", show_default=False)],
    max_miou_drop: Annotated[float, typer.Option(help="allowed mIoU drop, in points")] = 0.5,
    max_latency_increase: Annotated[str, typer.Option(help="allowed slow-down against the baseline model, e.g. 10%")] = "10%",
    max_params: Annotated[Optional[str], typer.Option(help="parameter limit, e.g. 2500000 or 2.5M")] = None,
    data: Annotated[Optional[str], typer.Option(help="re-evaluate on this data set")] = None,
    data_root: Annotated[Optional[str], typer.Option(help="data set folder")] = None,
    split: Annotated[str, typer.Option(help="split to evaluate on")] = "val",
    stored: Annotated[bool, typer.Option("--stored", help="use the metrics stored in the model file instead of --data")] = False,
    write_baseline: Annotated[bool, typer.Option("--write-baseline", help="measure MODEL and write --baseline from it")] = False,
    repeats: Annotated[int, typer.Option(help="timed runs per model for the latency ratio")] = 20,
) -> None:
    """Regression gate: exit 0 when MODEL is as good as the baseline, 1 on a regression, 2 on a usage error.

    mIoU is re-evaluated (--data) or read from the model file (--stored) and must not drop by more
    than --max-miou-drop points. Latency is never compared with a time recorded on another machine:
    when the baseline's model file is at hand (its path and sha256 are in the baseline JSON), both
    models are timed side by side in this run, interleaved, and their ratio must stay within
    --max-latency-increase; otherwise the latency criterion is reported as skipped.
    """
    from distill.commands import check_and_report

    raise typer.Exit(check_and_report(model, baseline, max_miou_drop, max_latency_increase, max_params, data, data_root,
                                      split, stored, write_baseline, repeats, console))


@app.command(epilog="Example: distill export runs/kd/student.safetensors --format onnx --dynamic-size --out kd.onnx")
def export(
    model: Annotated[Path, typer.Argument(help="a .safetensors model file", show_default=False)],
    format: Annotated[str, typer.Option(help="onnx, or fp16 (the model file in half precision, for zoo/)")] = "onnx",
    opset: Annotated[int, typer.Option(help="ONNX opset (11 to 20)")] = 17,
    dynamic_size: Annotated[bool, typer.Option("--dynamic-size", help="dynamic batch, height and width "
                                                                      "(checked at a second size too)")] = False,
    size: Annotated[Optional[tuple[int, int]],
                    typer.Option(help="H W of the example input (default: the file's eval size, else 360 480)")] = None,
    out: Annotated[Optional[Path], typer.Option(help="the ONNX file (default: MODEL with suffix .onnx)")] = None,
) -> None:
    """Export a model file to ONNX (images in [0, 1] -> logits at the head's stride) and check it.

    The file is run with onnxruntime (CPU) on seeded random images and its logits compared with
    PyTorch's: exit 1 when the largest difference exceeds 1e-3 x max(1, max |logit|) (the file is
    kept). Both are then timed side by side, batch 1, interleaved, and the ratio is printed.
    """
    from distill.commands import export_and_report

    raise typer.Exit(export_and_report(model, format, opset, dynamic_size, tuple(size) if size else None, out, console))


@app.command(epilog="Example: distill prune runs/kd/student.safetensors --ratio 0.5 --out runs/kd/pruned.safetensors")
def prune(
    model: Annotated[Path, typer.Argument(help="a distill model file (.safetensors)", show_default=False)],
    ratio: Annotated[float, typer.Option(help="fraction of each layer group's channels to remove (0-1)")] = 0.5,
    importance: Annotated[str, typer.Option(help="magnitude (L1 of filters) or group_norm (L2 over the group)")] = "group_norm",
    global_pruning: Annotated[bool, typer.Option("--global", help="rank channels across layers instead of per layer")] = False,
    steps: Annotated[Optional[int], typer.Option(help="prune in this many equal steps (default 1, or 10 with a target)")] = None,
    target_latency_ratio: Annotated[Optional[float], typer.Option(help="stop at the first step whose batch-1 latency / unpruned is at most this")] = None,
    target_gflops_ratio: Annotated[Optional[float], typer.Option(help="stop at the first step whose GFLOPs / unpruned is at most this")] = None,
    size: Annotated[Optional[tuple[int, int]], typer.Option(help="H W for GFLOPs and latency (default: the model's eval size, else 360 480)")] = None,
    out: Annotated[Optional[Path], typer.Option(help="output file (default: MODEL with a .pruned.safetensors suffix)")] = None,
) -> None:
    """Prune a trained model's channels with torch-pruning, without fine-tuning, and save it pickle-free.

    Every classifier stays whole. The output records its changed channel counts in its metadata, so
    `distill eval`, `compare` and `export` rebuild it from the file alone. To recover accuracy,
    fine-tune it: a recipe with `student_init: OUT` (or a `prune:` block) and a KD loss.
    Taylor importance needs training data and is available in recipes only.
    """
    from distill.commands import prune_and_report

    prune_and_report(model, ratio, importance, global_pruning, steps, target_latency_ratio, target_gflops_ratio,
                     tuple(size) if size else None, out, console)


app.command(epilog=QUANTIZE_EXAMPLE)(quantize)  # defined in distill/cli_quantize.py


reflow_help(app)  # one line per docstring paragraph, wrapped by rich to the terminal


def main() -> None:
    debug = "--debug" in sys.argv[1:]
    if debug:
        sys.argv.remove("--debug")
    try:
        app()
    except DistillError as exc:
        if debug:
            raise
        err_console.print(f"distill: {exc}", markup=False, highlight=False, soft_wrap=True)
        sys.exit(2)
    except RuntimeError as exc:  # a DistillError from a data-loader worker arrives as a RuntimeError
        line = from_worker(exc)
        if debug or line is None:
            raise
        err_console.print(f"distill: {line}", markup=False, highlight=False, soft_wrap=True)
        sys.exit(2)
    except KeyboardInterrupt:
        err_console.print("distill: interrupted")
        sys.exit(130)


if __name__ == "__main__":
    main()
