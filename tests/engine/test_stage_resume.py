"""Resuming runs through the real CLI: a multi-stage run killed in its second stage continues
without retraining the first; a finished run resumed with its own recipe trains nothing; resumed
with another recipe it is refused, naming the fields, and nothing in the folder changes.

The models are tinyconv (no backbone) on 8 synthetic images, so a step takes milliseconds.
"""

from __future__ import annotations

import hashlib
import json
import signal
import subprocess
import time
from pathlib import Path

import pytest
from helpers import cli_env, distill_command, run_distill, synthetic_data

TRAIN_BLOCK = f"train:\n  data: {synthetic_data(8)}\n  train: {{iterations: 5, lr: 0.05}}\n"


def write_project(tmp_path: Path, iterations: int) -> None:
    (tmp_path / "teacher.yaml").write_text(f"family: tinyconv\nname: t\nwidths: [8, 16]\ncheckpoint: t.safetensors\n{TRAIN_BLOCK}")
    (tmp_path / "student.yaml").write_text("family: tinyconv\nname: s\nwidths: [8]\n")
    (tmp_path / "kd.yaml").write_text(
        f"name: kd\nteacher: teacher.yaml\nstudent: student.yaml\ndata: {synthetic_data(8)}\n"
        "losses:\n  - {name: ce}\n  - {name: kd}\n"
        f"train: {{iterations: {iterations}, lr: 0.01, log_every: 1, checkpoint_every: 5}}\n")


def digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def folder_state(folder: Path) -> dict[str, tuple[str, int]]:
    return {str(p.relative_to(folder)): (digest(p), p.stat().st_mtime_ns) for p in sorted(folder.rglob("*")) if p.is_file()}


def wait_for_step(log: Path, step: int, process: subprocess.Popen, timeout: float = 300) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and process.poll() is None:
        if log.is_file() and any(json.loads(line).get("step", 0) >= step for line in log.read_text().splitlines() if line.strip()):
            return
        time.sleep(0.02)
    raise AssertionError(f"{log} never reached step {step} (exit {process.poll()})")


@pytest.mark.slow  # a real CLI run, killed and resumed: about 15-35 s; CI runs it with -m slow
def test_a_run_killed_in_its_distill_stage_resumes_without_retraining_its_teacher(tmp_path):
    write_project(tmp_path, iterations=400)
    run = tmp_path / "run"
    process = subprocess.Popen(distill_command("run", "kd.yaml", "--out-dir", str(run)), cwd=tmp_path, env=cli_env(),
                               stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    try:
        wait_for_step(run / "log.jsonl", 6, process)  # the distill stage's log: the teacher stage is done
    finally:
        process.send_signal(signal.SIGKILL)
        process.wait()
    teacher = {name: (digest(tmp_path / name), (tmp_path / name).stat().st_mtime_ns) for name in ("t.safetensors",)}
    teacher_run = folder_state(run / "teacher-main")
    assert "metrics.json" in teacher_run and not (run / "metrics.json").exists()

    again = run_distill("run", "kd.yaml", "--out-dir", str(run), "--resume", cwd=tmp_path)
    assert again.returncode == 0, again.stderr[-2000:]
    said = again.stdout + again.stderr
    assert "training it first" not in said and "resuming from" in said
    assert {name: (digest(tmp_path / name), (tmp_path / name).stat().st_mtime_ns) for name in teacher} == teacher
    assert folder_state(run / "teacher-main") == teacher_run
    assert json.loads((run / "metrics.json").read_text())["iterations"] == 400
    steps = [json.loads(line)["step"] for line in (run / "log.jsonl").read_text().splitlines() if "eval" not in line]
    assert steps[-1] == 400 and min(steps) == 1  # one log across the kill: the resumed part continues it


def test_a_finished_run_resumed_with_its_recipe_trains_nothing(tmp_path):
    write_project(tmp_path, iterations=4)
    first = run_distill("run", "kd.yaml", "--out-dir", "run", cwd=tmp_path)
    assert first.returncode == 0, first.stderr[-2000:]
    before = folder_state(tmp_path / "run")
    again = run_distill("run", "kd.yaml", "--out-dir", "run", "--resume", cwd=tmp_path)
    assert again.returncode == 0, again.stderr[-2000:]
    assert "already finished with this recipe: nothing to train" in (again.stdout + again.stderr).replace("\n", " ")
    assert folder_state(tmp_path / "run") == before


def test_a_finished_run_resumed_with_another_recipe_is_refused_naming_the_fields(tmp_path):
    write_project(tmp_path, iterations=4)
    assert run_distill("run", "kd.yaml", "--out-dir", "run", cwd=tmp_path).returncode == 0
    before = folder_state(tmp_path / "run")
    changed = run_distill("run", "kd.yaml", "--out-dir", "run", "--resume", "train.iterations=8", "train.lr=0.5", cwd=tmp_path)
    assert changed.returncode == 2
    lines = changed.stderr.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in changed.stderr
    assert lines[0] == ("distill: run/recipe.resolved.yaml: train.iterations, train.lr: expected 4, 0.01 as recorded in this "
                        "run folder (--resume needs the same recipe; --accept-changes continues with the new one; --overwrite "
                        "starts again), got [8, 0.5]")
    assert folder_state(tmp_path / "run") == before


@pytest.mark.slow  # two real CLI runs, about 10-20 s; CI runs it with -m slow
def test_only_the_newest_checkpoint_is_kept_by_default(tmp_path):
    write_project(tmp_path, iterations=12)
    result = run_distill("run", "kd.yaml", "--out-dir", "run", "train.checkpoint_every=2", cwd=tmp_path)
    assert result.returncode == 0, result.stderr[-2000:]
    assert sorted(p.name for p in (tmp_path / "run/checkpoints").iterdir()) == ["step_0000012"]
    kept = run_distill("run", "kd.yaml", "--out-dir", "run2", "train.checkpoint_every=2", "train.keep_checkpoints=3", cwd=tmp_path)
    assert kept.returncode == 0, kept.stderr[-2000:]
    assert sorted(p.name for p in (tmp_path / "run2/checkpoints").iterdir()) == ["step_0000008", "step_0000010", "step_0000012"]


def test_tensorboard_tracker_logs_losses_lr_and_eval_metrics(tmp_path):
    event_accumulator = pytest.importorskip("tensorboard.backend.event_processing.event_accumulator")
    write_project(tmp_path, iterations=4)
    result = run_distill("run", "kd.yaml", "--out-dir", "run", "train.log_with=[tensorboard]", "train.eval_every=2", cwd=tmp_path)
    assert result.returncode == 0, result.stderr[-2000:]
    events = sorted((tmp_path / "run").rglob("events.out.tfevents.*"))
    assert events, "no tensorboard event file in the run folder"
    scalars: dict[str, list[tuple[int, float]]] = {}
    for event in events:
        acc = event_accumulator.EventAccumulator(str(event.parent))
        acc.Reload()
        for tag in acc.Tags()["scalars"]:
            scalars[tag] = [(e.step, e.value) for e in acc.Scalars(tag)]
    log = [json.loads(line) for line in (tmp_path / "run/log.jsonl").read_text().splitlines()]
    assert [s for s, _ in scalars["loss"]] == [r["step"] for r in log if "loss" in r]
    assert scalars["kd"][-1][1] == pytest.approx(next(r["kd"] for r in reversed(log) if "kd" in r), rel=1e-6)
    assert "lr" in scalars and [s for s, _ in scalars["eval/miou"]] == [2, 4]
    final = json.loads((tmp_path / "run/metrics.json").read_text())["miou"]
    assert scalars["eval/miou"][-1][1] == pytest.approx(final, rel=1e-5)
