"""Tiny finished runs made once per session through the real CLI, shared by the report tests.

Two students of the same architecture trained for 40 steps on 4 synthetic 48x64 images (about
20 s in all on one core): `tiny_kd` (ce + kd, after a 3-step teacher) and `tiny_ce` (ce only).
Forty steps lift val mIoU to about 20 %, far from a model that predicts one class everywhere,
so a deliberately broken copy is a clear regression. Helpers are fixtures, not imports, so the
tests work under any pytest import mode.
"""

from __future__ import annotations

import subprocess
from pathlib import Path

import helpers
import pytest
from helpers import cli_env, recipe, student_card, teacher_card

TEACHER = teacher_card(num_images=4)
STUDENT = student_card()
RECIPE = recipe("tiny_kd", "{iterations: 40, lr: 0.05, eval_every: 40, log_every: 10}", teacher=True, num_images=4)


def run_distill(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    """`distill ARGS` as a user types it, on one thread so a background job is not slowed."""
    return helpers.run_distill(*args, cwd=cwd, env=cli_env(COLUMNS="220"))


@pytest.fixture(scope="session")
def distill():
    return run_distill


@pytest.fixture(scope="session")
def tiny_runs(tmp_path_factory) -> Path:
    """A project folder holding runs/tiny_kd and runs/tiny_ce."""
    project = tmp_path_factory.mktemp("project")
    (project / "teacher.yaml").write_text(TEACHER)
    (project / "student.yaml").write_text(STUDENT)
    (project / "tiny.yaml").write_text(RECIPE)
    for extra in ([], ["name=tiny_ce", "losses=[{name: ce}]"]):
        result = run_distill("run", "tiny.yaml", *extra, cwd=project)
        assert result.returncode == 0, result.stderr
    return project


@pytest.fixture
def comparison():
    """A Comparison of three made-up models, built without loading any (for rendering tests)."""
    from distill.report.compare import Comparison, Entry
    from distill.measure.latency import Latency, Setting

    def entry(name, method, miou, boundary, per_class, params, gflops, samples, file_bytes):
        metrics = {"miou": miou, "boundary_iou": boundary, "trimap_iou": boundary + 1.0, "per_class_iou": per_class}
        return Entry(name, Path(f"runs/{name}/student.safetensors"), method, metrics, "synthetic val (stored)",
                     None, file_bytes, params, gflops, Latency(samples))

    entries = [
        entry("ce", "ce", 60.0, 40.0, {"sky": 90.0, "road": 30.0, "pole": None}, 1_000_000, 0.5, [10.0, 12.0], 4_000_000),
        entry("kd", "ce+kd", 62.5, 41.0, {"sky": 91.0, "road": 34.0, "pole": None}, 1_000_000, 0.5, [11.0, 13.0], 4_000_000),
        entry("big", "ce+cwd", 70.0, 39.0, {"sky": 95.0, "road": 45.0, "pole": 5.0}, 9_000_000, 4.0, [40.0, 50.0], 36_000_000),
    ]
    setting = Setting("cpu", 1, (48, 64), 2, 1)
    return Comparison(entries, 0, (48, 64), setting, "stored metrics", ["sky", "road", "pole"], [])


@pytest.fixture(scope="session")
def html_report(tiny_runs) -> Path:
    """`distill compare` of both runs, re-evaluated on the synthetic val split, as one HTML page."""
    out = tiny_runs / "report.html"
    result = run_distill("compare", "runs/tiny_ce", "runs/tiny_kd", "--data", "synthetic", "--size", "48", "64",
                         "--repeats", "3", "--out", str(out), cwd=tiny_runs)
    assert result.returncode == 0, result.stderr
    return out
