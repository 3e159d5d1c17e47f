"""`distill prune` and the recipe `prune:` stage as a user runs them: real subprocesses, tiny models."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path

import pytest
from helpers import recipe, run_distill, student_card
from prune_helpers import file_info, params, subprocess_env, tiny_model

from distill.data.scenes import CLASSES as SYNTHETIC_CLASSES
from distill.models import load_model_file, save_model

DATA_OPTIONS = {"num_images": 4, "size": [48, 64]}
STUDENT = student_card(head_channels=16)
RECIPE = recipe("tiny_prune", "{iterations: 3, lr: 0.01, checkpoint_every: 1, keep_checkpoints: 2, log_every: 1}")


def distill(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    return run_distill(*args, cwd=cwd, env=subprocess_env())


def one_line(result: subprocess.CompletedProcess) -> str:
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr[-2000:]
    return lines[0]


@pytest.fixture()
def model_file(tmp_path: Path) -> Path:
    """A tiny (untrained) model for the synthetic data set, as `distill train` would have saved it."""
    path = tmp_path / "model.safetensors"
    model = tiny_model(classes=list(SYNTHETIC_CLASSES)).eval()
    save_model(model, path, {"dataset": "synthetic", "data_options": DATA_OPTIONS, "metrics": {"miou": 1.0}})
    return path


def test_prune_command_prunes_saves_and_the_file_evaluates(tmp_path, model_file):
    out = tmp_path / "pruned.safetensors"
    result = distill("prune", str(model_file), "--ratio", "0.5", "--size", "64", "64", "--out", str(out), cwd=tmp_path)
    assert result.returncode == 0, result.stderr[-2000:]
    rows = {m.group(1): float(m.group(2)) for m in re.finditer(r"(params|GFLOPs)\s.*?(\d+\.\d\d)x", result.stdout)}
    assert set(rows) == {"params", "GFLOPs"}, result.stdout
    assert 0.15 < rows["params"] < 0.5 and rows["GFLOPs"] < 0.5  # measured 0.26x and 0.28x
    assert f"saved to {out}" in result.stdout.replace("\n", "")

    info = file_info(out)
    assert info["layer_shapes"] and "metrics" not in info  # the unpruned model's metrics no longer hold
    assert info["prune"]["source"] == str(model_file) and info["prune"]["importance"] == "group_norm"
    assert info["prune"]["after"]["params"] / info["prune"]["before"]["params"] == pytest.approx(rows["params"], abs=0.005)
    assert info["data_options"] == DATA_OPTIONS

    scored = distill("eval", str(out), "--data", "synthetic", "--split", "val", "--json", "eval.json", cwd=tmp_path)
    assert scored.returncode == 0, scored.stderr[-2000:]
    metrics = json.loads((tmp_path / "eval.json").read_text())
    assert 0 <= metrics["miou"] <= 100 and metrics["num_pixels"] == 4 * 48 * 64  # the stored data options were used


@pytest.mark.parametrize(("args", "flag"), [(["--ratio", "1.5"], "--ratio"), (["--importance", "taylor"], "--importance"),
                                            (["--importance", "l1"], "--importance")])
def test_prune_command_usage_errors_are_one_line(tmp_path, model_file, args, flag):
    result = distill("prune", str(model_file), *args, "--out", str(tmp_path / "out.safetensors"), cwd=tmp_path)
    assert result.returncode == 2
    line = one_line(result)
    assert line.startswith("distill: command line: ") and flag in line
    assert not (tmp_path / "out.safetensors").exists()


def write_project(tmp_path: Path, extra: str) -> None:
    (tmp_path / "student.yaml").write_text(STUDENT)
    (tmp_path / "prune.yaml").write_text(RECIPE + extra)


@pytest.mark.slow  # real CLI runs (prune, distill, resume), about 15-35 s; CI runs it with -m slow
def test_recipe_prune_stage_runs_and_resumes_with_the_pruned_student(tmp_path):
    write_project(tmp_path, "prune: {ratio: 0.5}\n")
    run = tmp_path / "run"
    first = distill("run", "prune.yaml", "--out-dir", str(run), cwd=tmp_path)
    assert first.returncode == 0, first.stderr[-2000:]
    assert "prune step 1/1" in first.stdout + first.stderr
    unpruned = params(tiny_model(classes=list(SYNTHETIC_CLASSES)))
    pruned_model, pruned_meta = load_model_file(run / "pruned_student.safetensors")
    student, student_meta = load_model_file(run / "student.safetensors")
    assert params(pruned_model) == params(student) < unpruned
    assert pruned_meta.info["layer_shapes"] == student_meta.info["layer_shapes"]
    metrics = json.loads((run / "metrics.json").read_text())
    assert metrics["params"] == params(student)
    assert metrics["prune"]["after"]["params"] == params(student) and metrics["prune"]["before"]["params"] == unpruned
    assert student_meta.info["prune"] == metrics["prune"]

    checkpoints = sorted((run / "checkpoints").glob("step_*"), key=lambda p: int(p.name.split("_")[1]))
    assert [int(p.name.split("_")[1]) for p in checkpoints] == [2, 3]  # checkpoint_every 1, the last two kept
    shutil.rmtree(checkpoints[-1])
    (run / "student.safetensors").unlink()
    (run / "metrics.json").unlink()
    again = distill("run", "prune.yaml", "--out-dir", str(run), "--resume", cwd=tmp_path)
    assert again.returncode == 0, again.stderr[-2000:]
    said = (again.stdout + again.stderr).replace("\n", "")
    assert "resuming with the pruned student" in said and "resuming from" in said
    assert "prune step" not in said  # not pruned a second time
    resumed, resumed_meta = load_model_file(run / "student.safetensors")
    assert resumed_meta.info["layer_shapes"] == student_meta.info["layer_shapes"]
    assert params(resumed) == params(student)
    assert json.loads((run / "metrics.json").read_text())["prune"] == metrics["prune"]

    # The same run folder resumed under other prune settings is refused, naming the field (the run
    # folder's recorded recipe catches it, before the pruned file's own record of its settings).
    write_project(tmp_path, "prune: {ratio: 0.25}\n")
    changed = distill("run", "prune.yaml", "--out-dir", str(run), "--resume", cwd=tmp_path)
    assert changed.returncode == 2
    assert re.search(r"run/recipe\.resolved\.yaml: prune\.ratio: expected 0\.5 as recorded in this run folder "
                     r"\(--resume needs the same recipe; --accept-changes continues with the new one; --overwrite starts again\), got 0\.25", one_line(changed)), one_line(changed)


def test_student_init_of_another_backbone_is_refused(tmp_path):
    other = tmp_path / "other.safetensors"
    save_model(tiny_model(backbone="mobilenetv3_large_100", classes=list(SYNTHETIC_CLASSES)), other, {})
    write_project(tmp_path, f"student_init: {other}\n")
    result = distill("run", "prune.yaml", cwd=tmp_path)
    assert result.returncode == 2
    line = one_line(result)
    assert "student_init" in line and "backbone" in line and "mobilenetv3_large_100" in line
    assert not (tmp_path / "runs").exists()


def test_missing_student_init_is_refused(tmp_path):
    write_project(tmp_path, "student_init: nowhere.safetensors\n")
    result = distill("run", "prune.yaml", cwd=tmp_path)
    assert result.returncode == 2
    line = one_line(result)
    assert "student_init" in line and "nowhere.safetensors" in line
