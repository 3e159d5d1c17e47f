"""One process and two (Accelerate, gloo on the CPU) train the same recipe the same way.

data.batch_size is the global batch (split_batches): two processes each take half of the same
8 images a single process takes, each computes its half's mean loss, and DDP averages the
gradients, which is the whole batch's mean. The models use GroupNorm (tinyconv `norm: group`):
BatchNorm statistics are per process on a CPU (SyncBatchNorm needs a GPU), which is a real
difference between the two runs and not what this test is about. Teacher training (its card's
`train:` block) runs in each project under the same process count, so it is compared too.

What remains between the runs is the order of floating-point sums (a gradient all-reduce against
one backward over 8 images): about 1e-6 relative per step. Tolerances: 1e-4 relative on every
logged loss term of every step, 0.05 on the final mIoU.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from helpers import run_distill

pytestmark = pytest.mark.slow

DATA = "{name: synthetic, crop_size: [48, 64], batch_size: 8, workers: 0, options: {num_images: 16, size: [48, 64]}}"
TEACHER = f"""family: tinyconv
name: tiny_gn_teacher
widths: [16, 32]
norm: group
checkpoint: ckpt/teacher.safetensors
train:
  data: {DATA}
  train: {{iterations: 6, lr: 0.01, log_every: 1}}
"""
STUDENT = "family: tinyconv\nname: tiny_gn_student\nwidths: [8, 16]\nnorm: group\n"
RECIPE = f"""name: two_processes
teacher: teacher.yaml
student: student.yaml
data: {DATA}
losses:
  - {{name: ce}}
  - {{name: kd, tau: 2.0}}
train: {{iterations: 12, lr: 0.01, log_every: 1}}
"""


def project(root: Path) -> Path:
    root.mkdir()
    for name, text in (("teacher.yaml", TEACHER), ("student.yaml", STUDENT), ("recipe.yaml", RECIPE)):
        (root / name).write_text(text)
    return root


def losses(run: Path) -> list[dict[str, float]]:
    records = [json.loads(line) for line in (run / "log.jsonl").read_text().splitlines()]
    return [{k: v for k, v in r.items() if k not in ("step", "lr", "elapsed_s")} for r in records if "eval" not in r]


@pytest.fixture(scope="module")
def runs(tmp_path_factory) -> dict[int, Path]:
    out = {}
    for n in (1, 2):
        folder = project(tmp_path_factory.mktemp("procs") / f"p{n}")
        result = run_distill("run", "recipe.yaml", "--processes", str(n), cwd=folder, fresh=n > 1)
        # distill's own one-line errors (any process) first: the launcher's traceback buries them
        errors = [line for line in result.stderr.splitlines() if "distill:" in line]
        assert result.returncode == 0, "\n".join(errors) + "\n" + result.stderr[-2000:]
        assert (result.stdout + result.stderr).count("teacher main saved to") == 1  # printed by process 0 only
        out[n] = folder / "runs/two_processes"
    return out


def test_each_step_logs_the_same_losses(runs):
    one, two = losses(runs[1]), losses(runs[2])
    assert len(one) == len(two) == 12 and set(one[0]) == {"ce", "kd", "loss"}
    for step, (a, b) in enumerate(zip(one, two), start=1):
        for term in a:
            assert b[term] == pytest.approx(a[term], rel=1e-4), (step, term)
    assert one[-1]["loss"] < one[0]["loss"]  # it trained: agreement of two stalled runs would prove little


def test_teacher_and_student_end_equal(runs):
    for run_dir in ("teacher-main", "."):
        one = json.loads((runs[1] / run_dir / "metrics.json").read_text())
        two = json.loads((runs[2] / run_dir / "metrics.json").read_text())
        assert one["num_pixels"] == two["num_pixels"]  # every val image scored once in both
        assert two["miou"] == pytest.approx(one["miou"], abs=0.05), run_dir


def test_batch_that_does_not_split_is_refused(tmp_path):
    folder = project(tmp_path / "odd")
    (folder / "recipe.yaml").write_text(RECIPE.replace("batch_size: 8", "batch_size: 7"))
    result = run_distill("run", "recipe.yaml", "--processes", "2", cwd=folder, fresh=True)
    assert result.returncode != 0
    assert "data.batch_size: expected a multiple of the 2 processes" in result.stderr
    assert not (folder / "runs").exists()
