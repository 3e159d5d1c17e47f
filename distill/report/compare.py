"""Side-by-side comparison of finished runs and model files: what was gained and what it costs.

Everything comes from the files a run leaves (`metrics.json`, `student.safetensors`): nothing is
re-evaluated unless data is named, so comparing ten runs takes seconds. Params, GFLOPs and
latency are measured here, on one machine, at one input size, for every model alike.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from distill.errors import DistillError
from distill.measure.flops import count_gflops, count_params
from distill.measure.latency import DEFAULT_SIZE, Latency, Setting, measure_latency

HEADLINE = ("miou", "pixel_acc", "boundary_iou", "trimap_iou")

if TYPE_CHECKING:
    from distill.io import ModelFile
    from distill.models import SegmentationModel
    from distill.report.samples import SampleGrid

Loaded = tuple["Entry", "SegmentationModel", "ModelFile"]


@dataclass(frozen=True)
class DataChoice:
    """Which split to re-evaluate on (`--data --data-root --split`)."""

    name: str
    root: str | None
    split: str = "val"

    def describe(self) -> str:
        return f"{self.name} {self.split}"


@dataclass
class Entry:
    """One compared model: what its files say, plus what was measured here."""

    name: str
    model_path: Path
    method: str  # the run's loss names, e.g. "ce+kd"
    metrics: dict[str, Any]  # HEADLINE keys, and per_class_iou when known
    evaluated_on: str  # e.g. "synthetic val (stored)"
    eval_size: tuple[int, int] | None
    file_bytes: int
    params: int | None = None
    gflops: float | None = None
    latency: Latency | None = None
    seeds: list[int | str] = field(default_factory=list)  # train.seed, when the run folder records it
    members: list[Entry] = field(default_factory=list)  # the seeds a grouped row averages (distill.report.groups)


@dataclass
class Comparison:
    entries: list[Entry]
    baseline: int  # index into entries
    size: tuple[int, int]  # the input size of GFLOPs and latency
    setting: Setting | None  # how latency was measured; None when it was not (--repeats 0)
    evaluated: str  # "stored metrics" or "re-evaluated on <data> <split>"
    classes: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    samples: SampleGrid | None = None  # pictures, when data was given


def model_file_of(path: Path) -> Path:
    """A run folder's student.safetensors, or the model file itself."""
    if path.is_dir():
        model = path / "student.safetensors"
        if not model.is_file():
            raise DistillError(path, None, "a finished run folder (with student.safetensors)",
                               got="<no student.safetensors>")
        return model
    if path.suffix not in (".safetensors", ".onnx"):
        got = path.suffix if path.exists() else "<missing>"
        raise DistillError(path, None, "a run folder, a .safetensors model file or an .onnx file from distill "
                           "export / quantize", got=got)
    return path


def load_entry(path: Path) -> Loaded:
    """(Entry, model, model file) for a run folder or model file; metrics.json is preferred for its per-class IoU."""
    from distill.models import load_model_file
    from distill.report.onnx_entry import is_onnx, load_onnx_entry

    if is_onnx(path):
        return load_onnx_entry(path)
    model_file = model_file_of(path)
    model, meta = load_model_file(model_file)
    info = meta.info
    record = dict(info.get("metrics") or {})
    where = (info.get("dataset"), info.get("split"))
    metrics_json = path / "metrics.json" if path.is_dir() else None
    if metrics_json is not None and metrics_json.is_file():
        try:
            record = json.loads(metrics_json.read_text())
        except json.JSONDecodeError:
            raise DistillError(metrics_json, None, "a JSON object of metrics", got="<unreadable>") from None
        where = (record.get("dataset", where[0]), record.get("split", where[1]))
    name = path.name if path.is_dir() else (model_file.parent.name if model_file.stem == "student" else model_file.stem)
    losses = info.get("losses") or []
    size = info.get("eval_size")
    entry = Entry(name=name, model_path=model_file, method="+".join(losses) if losses else "-",
                  metrics=record, evaluated_on=" ".join(str(w) for w in where if w) + " (stored)",
                  eval_size=tuple(size) if size else None, file_bytes=model_file.stat().st_size)
    return entry, model, meta


def unique_names(entries: list[Entry]) -> None:
    seen: dict[str, int] = {}
    for entry in entries:
        seen[entry.name] = seen.get(entry.name, 0) + 1
        if seen[entry.name] > 1:
            entry.name = f"{entry.name}#{seen[entry.name]}"


def order_with_baseline(paths: list[Path], baseline: Path | None) -> tuple[list[Path], int]:
    """The baseline is one of the arguments (default: the first) or is added in front of them."""
    if not paths:
        raise DistillError("command line", "RUN_OR_MODEL", "at least one run folder or model file")
    if baseline is None:
        return list(paths), 0
    for i, path in enumerate(paths):
        if path.resolve() == baseline.resolve() or model_file_of(path).resolve() == model_file_of(baseline).resolve():
            return list(paths), i
    return [baseline, *paths], 0


def build_comparison(paths: list[Path], baseline: Path | None = None, size: tuple[int, int] | None = None,
                     repeats: int = 20, data: DataChoice | None = None, sample_count: int = 4,
                     group: bool = True) -> Comparison:
    """Load every model, measure params/GFLOPs/latency alike, and re-evaluate when data is given;
    with `group`, runs of one recipe that differ only in seed become one row (distill.report.groups)."""
    from distill.report.groups import group_seeds

    if repeats < 0:
        raise DistillError("command line", "--repeats", "0 (no latency) or a positive count", got=repeats)
    if size is not None and min(size) < 1:
        raise DistillError("command line", "--size", "a positive height and width", got=list(size))
    ordered, base = order_with_baseline(paths, baseline)
    loaded = [load_entry(p) for p in ordered]
    entries, models = [e for e, _, _ in loaded], [m for _, m, _ in loaded]
    unique_names(entries)
    size = tuple(size) if size else (entries[base].eval_size or DEFAULT_SIZE)
    measure_counts(entries, models, size)
    samples = None
    if data is not None:
        for entry in entries:
            entry.metrics = score_any(entry.model_path, data)
            entry.evaluated_on = data.describe()
        from distill.report.samples import collect_samples

        samples = collect_samples([m for _, _, m in loaded], models, [e.name for e in entries], data, sample_count)
    setting = None
    if repeats > 0:
        latencies, setting = measure_latency({e.name: m for e, m in zip(entries, models)}, size, repeats)
        for entry in entries:
            entry.latency = latencies[entry.name]
    evaluated = f"re-evaluated on {data.describe()}" if data else "stored metrics"
    notes = notes_on(entries)
    if group:
        entries, base, grouping_notes = group_seeds(entries, base)
        notes += grouping_notes
    return Comparison(entries, base, size, setting, evaluated, class_names(loaded), notes, samples)


def measure_counts(entries: list[Entry], models: list[Any], size: tuple[int, int]) -> None:
    """Params and GFLOPs at `size`; an ONNX entry keeps its sidecar's (counted on its source model)."""
    from distill.report.onnx_entry import check_input_size, is_onnx

    for entry, model in zip(entries, models):
        if is_onnx(entry.model_path):
            check_input_size(entry, size)
        else:
            entry.params, entry.gflops = count_params(model), count_gflops(model, size)


def score_any(path: Path, data: DataChoice) -> dict[str, Any]:
    """A model file's or an ONNX file's metrics on `data`."""
    from distill.engine.scoring import score_model_file
    from distill.report.onnx_entry import is_onnx

    if is_onnx(path):
        from distill.export.runtime import score_onnx_file

        return score_onnx_file(path, data.name, data.root, data.split, show_progress=False)
    return score_model_file(path, data.name, data.root, data.split)


def class_names(loaded: list[Loaded]) -> list[str]:
    names: list[str] = []
    for _, _, meta in loaded:
        names += [c for c in meta.classes if c not in names]
    return names


def notes_on(entries: list[Entry]) -> list[str]:
    notes = []
    sources = {e.evaluated_on for e in entries}
    if len(sources) > 1:
        listing = "; ".join(f"{e.name}: {e.evaluated_on}" for e in entries)
        notes.append(f"metrics come from different data, so mIoU columns are not comparable ({listing})")
    missing = [e.name for e in entries if "miou" not in e.metrics]
    if missing:
        notes.append(f"no stored metrics for {', '.join(missing)} (pass --data to evaluate)")
    return notes
