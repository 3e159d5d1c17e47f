"""The `quantize` stage: int8 ONNX files of the run's student, after `distill` (or of student_init
alone), as the recipe's `quantize:` block says.

PTQ writes student.int8.onnx (distill.export.quantize: calibrated static QDQ through onnxruntime).
With quantize.qat.iterations, QAT follows: the fp32 student with fake-quantized convolutions
(distill.export.qat) is fine-tuned with the recipe's losses, against the recipe's fp32 teacher or
the fp32 student itself (qat.teacher), in qat/ (checkpoints there: --resume continues); its float
weights are saved as student.qat.safetensors and quantized the same way into student.qat.int8.onnx.
quantize.json records both files' figures (val mIoU, agreement with fp32, sizes, latency ratios).
"""

from __future__ import annotations

import copy
import json
import time
from dataclasses import asdict, replace
from pathlib import Path
from typing import Any

from accelerate.utils import set_seed

from distill.engine.loop import Distillation
from distill.errors import DistillError
from distill.export.cpu_features import resolve_reduce_range
from distill.io import atomic_write_text
from distill.models import load_model_file, save_model
from distill.processes import processes
from distill.specs import QuantizeSpec
from distill.stages.base import STAGES, RunContext, RunSummary, Stage
from distill.stages.distill import build_trainer
from distill.stages.rundir import QUANTIZED
from distill.stages.setup import build_losses, make_accelerator
from distill.stages.teacher_cache import prepare_caches

SENSITIVITY_ROWS = 10  # most sensitive tensors kept in quantize.json
INT8, QAT_MODEL, QAT_INT8 = "student.int8.onnx", "student.qat.safetensors", "student.qat.int8.onnx"


@STAGES.register("quantize")
class Quantize(Stage):
    name = "quantize"

    def describe(self, loaded: Any) -> str:
        spec = loaded.recipe.quantize
        qat = f", then QAT {spec.qat.iterations} iterations (teacher: {spec.qat.teacher})" if spec.qat.iterations else ""
        return f"quantize: int8 PTQ ({spec.method} on {spec.calibration_images} images, {spec.activations} activations){qat}"

    def check(self, ctx: RunContext) -> None:
        from distill.export.onnx import require_runtime

        require_runtime()
        if processes() > 1:
            raise DistillError(ctx.loaded.path, "quantize", "a single process (calibration and timing run once): "
                               "train with --processes N, then quantize with a quantize-only recipe", got=f"<{processes()} processes>")
        if ctx.loaded.recipe.quantize_only:
            init = Path(ctx.loaded.recipe.student_init)
            if not init.is_file():
                raise DistillError(ctx.loaded.path, "student_init", "an existing model file to quantize", got=str(init))

    def run(self, ctx: RunContext) -> None:
        started, spec = time.perf_counter(), ctx.loaded.recipe.quantize
        trained = ctx.run_dir / "student.safetensors"
        source = trained if ctx.summary is not None else Path(ctx.loaded.recipe.student_init)
        ctx.prepare()
        ptq = quantize_file(ctx, source, ctx.run_dir / INT8, spec, spec.keep_fp32, spec.auto_keep_fp32)
        record: dict[str, Any] = {"source": str(source), "ptq": ptq}
        if spec.qat.iterations:
            qat_model = run_qat(ctx, source, spec, ptq)
            record["qat"] = quantize_file(ctx, qat_model, ctx.run_dir / QAT_INT8, spec, ptq["excluded"], 0)
        final = record.get("qat", ptq)
        wall = time.perf_counter() - started
        record.update(metrics=final["metrics"], wall_time_s=round(wall, 1), params=final["params"])
        atomic_write_text(ctx.run_dir / QUANTIZED, json.dumps(record, indent=2, default=str) + "\n")
        ctx.console.print(f"[bold]quantize[/] {final['path']}: val mIoU {fmt(final['metrics'])}, "
                          f"int8/fp32 ONNX latency {fmt_ratio(final['ratio'])}; figures in {ctx.run_dir / QUANTIZED}")
        if ctx.summary is None:  # a quantize-only recipe: the int8 file is the run's result
            ctx.summary = RunSummary(ctx.run_dir, final["metrics"] or {}, wall, final["params"])


def quantize_file(ctx: RunContext, source: Path, out: Path, spec: QuantizeSpec, keep: list[str], auto: int) -> dict[str, Any]:
    """PTQ of one model file; the figures quantize.json keeps."""
    from distill.export.quantize import QuantizeOptions, quantize_onnx
    from distill.export.sidecar import read_sidecar

    options = QuantizeOptions(spec.method, spec.calibration_images, spec.activations, resolve_reduce_range(spec.reduce_range), tuple(keep), auto)
    data = ctx.loaded.recipe.data
    size = spec.size or data.eval_size
    ctx.console.print(f"[bold]quantize[/] {source} -> {out} ({options.method} calibration on {options.images} images)")
    report = quantize_onnx(source, out, data.name, options, tuple(size) if size else None, data_root=data.root,
                           repeats=spec.latency_repeats)
    ctx.console.print(f"[bold]quantize[/] {report.path}: val mIoU {fmt(report.metrics)} (fp32 {fmt(report.source_metrics)}), "
                      f"agreement with fp32 {report.agreement_val or float('nan'):.4f}, {report.int8_bytes / 1e6:.2f} MB, "
                      f"int8/fp32 ONNX latency {fmt_ratio(report.ratio)}")
    return {"path": str(report.path), "metrics": report.metrics, "source_metrics": report.source_metrics,
            "excluded": report.excluded, "agreement_val": report.agreement_val, "agreement_random": report.agreement_random,
            "fp32_bytes": report.fp32_bytes, "int8_bytes": report.int8_bytes, "ratio": report.ratio,
            "fp32_ms": report.fp32.median_ms if report.fp32 else None, "int8_ms": report.int8.median_ms if report.int8 else None,
            "size": list(report.size), "latency": report.describe_setting(), "params": read_sidecar(report.path)["params"],
            "sensitivity": [asdict(e) for e in report.sensitivity[:SENSITIVITY_ROWS]]}  # with auto_keep_fp32


def run_qat(ctx: RunContext, source: Path, spec: QuantizeSpec, ptq: dict[str, Any]) -> Path:
    """Fine-tune the fake-quantized student with the recipe's losses in qat/; its float weights, saved."""
    from distill.export.qat import attach_fake_quant, conv_modules_of_nodes, detach_fake_quant

    out = ctx.run_dir / QAT_MODEL
    if out.is_file():
        ctx.console.print(f"[bold]quantize[/] QAT already done: {out}")
        return out
    qctx, teachers = qat_context(ctx, spec)
    accelerator = make_accelerator(qctx.loaded.recipe.train, qctx.run_dir)
    set_seed(qctx.loaded.recipe.train.seed, device_specific=True)
    student, meta = load_model_file(source)
    if spec.qat.teacher == "student":  # the fp32 student, frozen, as the teacher named main
        teachers["main"] = copy.deepcopy(student).eval().requires_grad_(False)
    kept = conv_modules_of_nodes(student, Path(ptq["path"]), ptq["excluded"])
    state = attach_fake_quant(student, spec.activations, resolve_reduce_range(spec.reduce_range), skip=frozenset(kept))
    model = Distillation(student, build_losses(qctx.loaded, student, teachers))
    caches = prepare_caches(qctx.loaded, ctx.data, accelerator, teachers, ctx.console)
    qctx.run_dir.mkdir(exist_ok=True)
    trainer = build_trainer(qctx, accelerator, model, teachers, caches)
    metrics = trainer.fit(resume=(qctx.run_dir / "checkpoints").is_dir())
    student = accelerator.unwrap_model(trainer.model).student
    detach_fake_quant(state)
    qat = {"iterations": spec.qat.iterations, "lr": spec.qat.lr, "teacher": spec.qat.teacher, "source": str(source),
           "fake_quant_val": {k: metrics.get(k) for k in ("miou", "boundary_iou", "trimap_iou")}}
    if accelerator.is_main_process:
        save_model(student, out, {**meta.info, "qat": qat, "note": "float weights after QAT: quantize it (PTQ) to use"})
    accelerator.wait_for_everyone()
    return out


def qat_context(ctx: RunContext, spec: QuantizeSpec) -> tuple[RunContext, dict[str, Any]]:
    """The run context QAT trains in: the recipe with the QAT schedule (and without the teacher
    cache when the student teaches itself), writing under qat/; and the teachers it reads."""
    recipe = ctx.loaded.recipe
    qat_train = recipe.train.model_copy(update={
        "iterations": spec.qat.iterations, "lr": spec.qat.lr, "warmup_iters": spec.qat.warmup_iters, "eval_every": 0,
        "checkpoint_every": min(recipe.train.checkpoint_every or spec.qat.iterations, spec.qat.iterations)})
    update: dict[str, Any] = {"train": qat_train}
    if spec.qat.teacher == "student":
        update["teacher_cache"] = None
    loaded = replace(ctx.loaded, recipe=recipe.model_copy(update=update))
    teachers = dict(ctx.teachers()) if spec.qat.teacher == "recipe" else {}
    return replace(ctx, loaded=loaded, run_dir=ctx.run_dir / "qat"), teachers


def fmt(metrics: dict[str, Any] | None) -> str:
    return "-" if not metrics else f"{metrics['miou']:.2f}"


def fmt_ratio(ratio: float | None) -> str:
    return "not timed" if ratio is None else f"{ratio:.2f}x"
