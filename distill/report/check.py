"""A regression gate for CI: is this model still as accurate, as small and as fast as the baseline?

The baseline is a small JSON file (metrics, params, GFLOPs, file size, input size and the path
and sha256 of the baseline's model file). Accuracy and size are compared with the recorded
numbers. Latency is not: a time measured on another machine, or under another load, says
nothing about this one. When the baseline's model file is at hand (and unchanged), both models
are timed side by side, interleaved, and their ratio is compared; otherwise the latency
criterion is reported as skipped rather than compared against a stale absolute time.
"""

from __future__ import annotations

import json
import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from rich.table import Table

from distill.errors import DistillError
from distill.io import atomic_write_text, library_versions, read_format_json, sha256_of
from distill.report.compare import DEFAULT_SIZE, HEADLINE, DataChoice, model_file_of, score_any
from distill.report.onnx_entry import check_input_size, is_onnx, load_onnx_entry
from distill.measure.flops import count_gflops, count_params
from distill.measure.latency import measure_latency, paired_ratio

FORMAT = "distill-baseline/1"
NEEDED = ("model", "evaluation", "metrics", "params", "gflops", "file_bytes", "input_size")


@dataclass(frozen=True)
class Limits:
    max_miou_drop: float = 0.5  # mIoU points (the metrics are in %)
    max_latency_increase: float = 0.10  # fraction: 0.10 allows the candidate to be 10 % slower
    max_params: int | None = None


@dataclass
class Criterion:
    name: str
    value: str
    baseline: str
    limit: str
    verdict: str  # "pass", "FAIL", "info" or "skipped (why)"


def parse_percent(text: str, field: str) -> float:
    """'10%' or '10' -> 0.10."""
    match = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*%?\s*", str(text))
    if not match:
        raise DistillError("command line", field, "a percentage such as 10%", got=text)
    return float(match.group(1)) / 100.0


def parse_count(text: str, field: str) -> int:
    """'2500000', '2.5M' or '800k' -> an integer."""
    match = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*([kKmM]?)\s*", str(text))
    if not match:
        raise DistillError("command line", field, "a count such as 2500000, 2.5M or 800k", got=text)
    scale = {"": 1, "k": 1e3, "m": 1e6}[match.group(2).lower()]
    return int(round(float(match.group(1)) * scale))


def measure(path: Path, data: DataChoice | None, stored: bool, size: tuple[int, int] | None = None):
    """(facts about the model as a baseline records them, the model) with metrics stored or re-evaluated."""
    if stored == (data is not None):
        raise DistillError("command line", "--data / --stored", "exactly one of --data NAME (re-evaluate) or --stored")
    model_file = model_file_of(path)
    model, meta, counted = load_any(model_file)
    if stored:
        metrics = meta.info.get("metrics") or {}
        if "miou" not in metrics:
            raise DistillError(model_file, "metadata.info.metrics", "stored metrics (or pass --data to evaluate)",
                               got="<none>")
        evaluation = {"dataset": meta.info.get("dataset"), "split": meta.info.get("split"), "source": "stored"}
    else:
        metrics = score_any(model_file, data)
        evaluation = {"dataset": data.name, "split": data.split, "source": "re-evaluated"}
    eval_size = meta.info.get("eval_size")
    size = tuple(size or eval_size or DEFAULT_SIZE)
    if counted is not None:
        check_input_size(counted, size)
    params, gflops = (counted.params, counted.gflops) if counted else (count_params(model), count_gflops(model, size))
    facts = {"model": {"path": str(model_file), "sha256": sha256_of(model_file)}, "evaluation": evaluation,
             "metrics": {k: metrics.get(k) for k in HEADLINE}, "params": params,
             "gflops": round(gflops, 6), "file_bytes": model_file.stat().st_size, "input_size": list(size)}
    return facts, model


def load_any(path: Path):
    """(model, ModelFile, None) for a model file; (onnxruntime model, its sidecar as a ModelFile, its
    Entry, which carries the params and GFLOPs counted on its source) for an ONNX file."""
    from distill.models import load_model_file

    if is_onnx(path):
        entry, model, meta = load_onnx_entry(path)
        return model, meta, entry
    model, meta = load_model_file(path)
    return model, meta, None


def write_baseline(model: Path, baseline: Path, data: DataChoice | None, stored: bool) -> dict[str, Any]:
    """Measure `model` and write the baseline JSON; the model path is stored relative to the JSON's folder."""
    facts, _ = measure(model, data, stored)
    target = Path(os.path.relpath(Path(facts["model"]["path"]).resolve(), baseline.resolve().parent))
    facts["model"]["path"] = target.as_posix()
    record = {"format": FORMAT, **facts, "written_with": library_versions()}
    atomic_write_text(baseline, json.dumps(record, indent=2) + "\n")
    return record


def read_baseline(path: Path) -> dict[str, Any]:
    return read_format_json(path, FORMAT, NEEDED, "a baseline JSON (write one with --write-baseline)", "--write-baseline")


def baseline_model(record: dict[str, Any], baseline: Path) -> tuple[Path | None, str]:
    """The baseline's model file when it exists and is unchanged, else (None, why not)."""
    path = Path(record["model"].get("path", ""))
    path = path if path.is_absolute() else baseline.resolve().parent / path
    if not path.is_file():
        return None, "skipped (baseline model not available)"
    if sha256_of(path) != record["model"].get("sha256"):
        return None, "skipped (baseline model file changed since the baseline was written)"
    return path, ""


@dataclass
class CheckResult:
    criteria: list[Criterion]
    setting: str  # how latency was measured, or why not

    @property
    def passed(self) -> bool:
        return all(c.verdict != "FAIL" for c in self.criteria)


def run_check(model: Path, baseline: Path, limits: Limits, data: DataChoice | None, stored: bool,
              repeats: int = 20) -> CheckResult:
    """Every criterion with its verdict; the model passes when none says FAIL."""
    record = read_baseline(baseline)
    if repeats < 1:
        raise DistillError("command line", "--repeats", "a positive count", got=repeats)
    size = tuple(record["input_size"])
    facts, candidate = measure(model, data, stored, size)
    same_data(record["evaluation"], facts["evaluation"], baseline)
    base_m, new_m = record["metrics"], facts["metrics"]
    floor = base_m["miou"] - limits.max_miou_drop
    limit = f">= {floor:.2f} (drop <= {limits.max_miou_drop:g})"
    verdict = "pass" if new_m["miou"] >= floor - 1e-9 else "FAIL"
    rows = [Criterion("mIoU %", f"{new_m['miou']:.2f}", f"{base_m['miou']:.2f}", limit, verdict)]
    latency, setting = latency_criterion(record, baseline, candidate, size, limits, repeats)
    rows.append(latency)
    limit = "-" if limits.max_params is None else f"<= {limits.max_params:,}"
    verdict = "info" if limits.max_params is None else ("pass" if facts["params"] <= limits.max_params else "FAIL")
    rows.append(Criterion("params", f"{facts['params']:,}", f"{record['params']:,}", limit, verdict))
    rows.append(Criterion("boundary IoU %", fmt(new_m.get("boundary_iou")), fmt(base_m.get("boundary_iou")), "-", "info"))
    rows.append(Criterion(f"GFLOPs at {size[0]}x{size[1]}", f"{facts['gflops']:.3f}", f"{record['gflops']:.3f}", "-",
                          "info"))
    return CheckResult(rows, setting)


def fmt(value: float | None) -> str:
    return "-" if value is None else f"{value:.2f}"


def same_data(recorded: dict[str, Any], now: dict[str, Any], baseline: Path) -> None:
    """Metrics from different data sets or splits cannot be compared: a usage error, not a regression."""
    a, b = (recorded.get("dataset"), recorded.get("split")), (now.get("dataset"), now.get("split"))
    if a != b:
        raise DistillError(baseline, "evaluation", f"a check on the baseline's data ({a[0]} {a[1]})", got=f"{b[0]} {b[1]}")


def latency_criterion(record, baseline: Path, candidate, size, limits: Limits, repeats: int) -> tuple[Criterion, str]:
    """Candidate and baseline model timed side by side (interleaved) on this machine, as a ratio."""
    name, limit = "latency (ratio to baseline)", f"<= {1 + limits.max_latency_increase:.2f}x"
    path, why = baseline_model(record, baseline)
    if path is None:
        return Criterion(name, "-", "-", limit, why), f"latency {why}"
    reference, _, _ = load_any(path)
    times, setting = measure_latency({"candidate": candidate, "baseline": reference}, size, repeats)
    ratio = paired_ratio(times["candidate"], times["baseline"])
    verdict = "pass" if ratio <= 1 + limits.max_latency_increase else "FAIL"
    row = Criterion(name, f"{ratio:.3f}x ({times['candidate'].median_ms:.2f} ms)",
                    f"1.000x ({times['baseline'].median_ms:.2f} ms)", limit, verdict)
    return row, (f"latency: {setting.describe()}; ratio = median over rounds of candidate / baseline time "
                 "in the same round (both models measured in this run)")


def check_table(title: str, criteria: list[Criterion], caption: str | None = None) -> Table:
    table = Table(title=title, caption=caption, header_style="bold", caption_justify="left")
    for label in ("criterion", "value", "baseline", "limit", "verdict"):
        table.add_column(label, justify="left" if label in ("criterion", "verdict") else "right")
    style = {"pass": "green", "FAIL": "bold red"}
    for c in criteria:
        verdict = f"[{style[c.verdict]}]{c.verdict}[/]" if c.verdict in style else f"[dim]{c.verdict}[/]"
        table.add_row(c.name, c.value, c.baseline, c.limit, verdict)
    return table
