"""The training loop through the CLI: Ctrl-C finishes the step, saves and exits 130; --resume
finishes the run; a resumed deterministic run ends with exactly the weights of an uninterrupted one.

The student is an FCN head (it has dropout, so the restored RNG state matters) on a tiny
mobilenet; 8 synthetic images in batches of 4 make 2 batches per epoch, so a checkpoint at an
odd step sits in the middle of an epoch (accelerate's skip_first_batches path).
"""

from __future__ import annotations

import json
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from safetensors.torch import load_file

STUDENT = """\
name: tiny_fcn
arch: fcn
backbone: mobilenetv3_small_100
head_channels: 8
"""
RECIPE = """\
name: det
student: student.yaml
data: {name: synthetic, crop_size: [48, 64], batch_size: 4, workers: 0, options: {num_images: 8, size: [48, 64]}}
losses:
  - {name: ce}
train: {iterations: 5, lr: 0.02, log_every: 1, checkpoint_every: 3, keep_checkpoints: 2, deterministic: true}
"""
ENV = {"PATH": "/usr/bin:/bin", "OMP_NUM_THREADS": "1", "COLUMNS": "200", "PYTHONDONTWRITEBYTECODE": "1"}


def command(*args: str) -> list[str]:
    return [sys.executable, "-m", "distill.cli", *args]


def distill(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run(command(*args), cwd=cwd, capture_output=True, text=True, env=ENV, timeout=600)


@pytest.fixture()
def project(tmp_path: Path) -> Path:
    (tmp_path / "student.yaml").write_text(STUDENT)
    (tmp_path / "det.yaml").write_text(RECIPE)
    return tmp_path


def assert_same_weights(a: Path, b: Path) -> None:
    """Bit-for-bit equality of every tensor (no tolerance)."""
    wa, wb = load_file(str(a)), load_file(str(b))
    assert wa.keys() == wb.keys()
    differ = [k for k in wa if not (wa[k] == wb[k]).all()]
    assert not differ, f"{len(differ)} tensors differ, e.g. {differ[0]}"


def logged_steps(run: Path) -> list[int]:
    path = run / "log.jsonl"
    if not path.is_file():
        return []
    return [r["step"] for r in map(json.loads, path.read_text().splitlines()) if "eval" not in r]


def full_wall(run: Path) -> float:
    return json.loads((run / "metrics.json").read_text())["wall_time_s"]


@pytest.mark.slow
def test_resume_from_a_mid_epoch_checkpoint_ends_with_identical_weights(project):
    full = distill("run", "det.yaml", "--out-dir", "full", cwd=project)
    assert full.returncode == 0, full.stderr
    assert sorted(p.name for p in (project / "full/checkpoints").iterdir()) == ["step_0000003", "step_0000005"]
    # The same run stopped after step 3: its folder as it was then, resumed in a fresh process.
    shutil.copytree(project / "full", project / "cut")
    for name in ("checkpoints/step_0000005", "student.safetensors", "metrics.json"):
        target = project / "cut" / name
        shutil.rmtree(target) if target.is_dir() else target.unlink()
    # the first session's training time, as its checkpoint recorded it (made large to be told apart)
    marker = project / "cut/checkpoints/step_0000003/state.json"
    assert json.loads(marker.read_text())["train_s"] > 0
    marker.write_text(json.dumps({**json.loads(marker.read_text()), "train_s": 1000.0}))
    resumed = distill("run", "det.yaml", "--out-dir", "cut", "--resume", cwd=project)
    assert resumed.returncode == 0, resumed.stderr
    assert "resuming from cut/checkpoints/step_0000003 (step 3)" in resumed.stdout
    assert_same_weights(project / "full/student.safetensors", project / "cut/student.safetensors")
    assert logged_steps(project / "cut") == [1, 2, 3, 4, 5]  # the copied log's 4 and 5 dropped on resume, then logged again
    # wall time and the log's elapsed_s count both sessions
    log = [json.loads(line) for line in (project / "cut/log.jsonl").read_text().splitlines()]
    assert [r for r in log if r.get("step") == 4 and "eval" not in r][-1]["elapsed_s"] > 1000  # the resumed step 4
    assert 1000 < json.loads((project / "cut/metrics.json").read_text())["wall_time_s"] < 1000 + full_wall(project / "full") + 60


@pytest.mark.slow
def test_ctrl_c_saves_exits_130_and_resume_matches_an_uninterrupted_run(project):
    overrides = ["train.iterations=200", "train.checkpoint_every=0"]
    proc = subprocess.Popen(command("run", "det.yaml", *overrides, "--out-dir", "cut"), cwd=project, env=ENV,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 300
    while len(logged_steps(project / "cut")) < 3 and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.05)
    proc.send_signal(signal.SIGINT)  # the main process only, as a terminal's Ctrl-C would reach it
    out, err = proc.communicate(timeout=300)
    assert proc.returncode == 130, err
    step = logged_steps(project / "cut")[-1]
    assert 3 <= step < 200
    assert f"interrupted after step {step}" in err and "--resume" in err
    saved = project / f"cut/checkpoints/step_{step:07d}"
    assert json.loads((saved / "state.json").read_text())["step"] == step
    assert not list((project / "cut/checkpoints").glob("*.tmp"))
    assert not (project / "cut/student.safetensors").exists()

    resumed = distill("run", "det.yaml", *overrides, "--out-dir", "cut", "--resume", cwd=project)
    assert resumed.returncode == 0, resumed.stderr
    assert f"resuming from cut/checkpoints/step_{step:07d} (step {step})" in resumed.stdout
    assert logged_steps(project / "cut")[-1] == 200
    full = distill("run", "det.yaml", *overrides, "--out-dir", "full", cwd=project)
    assert full.returncode == 0, full.stderr
    assert_same_weights(project / "full/student.safetensors", project / "cut/student.safetensors")


def test_resume_from_the_final_checkpoint_evaluates_and_writes_the_run(project):
    """A run stopped after its last checkpoint but before student.safetensors / metrics.json."""
    full = distill("run", "det.yaml", "train.iterations=2", "train.checkpoint_every=0", "--out-dir", "full", cwd=project)
    assert full.returncode == 0, full.stderr
    written = json.loads((project / "full/metrics.json").read_text())
    for name in ("student.safetensors", "metrics.json"):
        (project / "full" / name).unlink()
    resumed = distill("run", "det.yaml", "train.iterations=2", "train.checkpoint_every=0", "--out-dir", "full", "--resume", cwd=project)
    assert resumed.returncode == 0, resumed.stderr
    again = json.loads((project / "full/metrics.json").read_text())
    assert again["miou"] == written["miou"] and again["boundary_iou"] == written["boundary_iou"]
    assert (project / "full/student.safetensors").is_file()
