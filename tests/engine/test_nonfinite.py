"""The NaN guard: a non-finite loss term stops the run naming the step, the term and the last good
checkpoint, or (nan_policy: skip) skips the step and counts up to max_skipped.

The NaN comes from real input, not a test hook: lr = 1e30 makes the first SGD update blow the
weights up, so step 1 is finite and step 2's cross-entropy is NaN, on every machine.
"""

from __future__ import annotations

from functools import partial
from pathlib import Path

import pytest
import torch
from helpers import cli_env, recipe, run_distill, student_card

from distill.engine.nonfinite import NonFiniteLoss, first_bad_term

STUDENT = student_card()
RECIPE = recipe("tiny", "{iterations: 6, lr: 1.0e+30, log_every: 100}")
distill = partial(run_distill, env=cli_env(PYTHONDONTWRITEBYTECODE="1"), timeout=600)


@pytest.fixture()
def project(tmp_path: Path) -> Path:
    (tmp_path / "student.yaml").write_text(STUDENT)
    (tmp_path / "tiny.yaml").write_text(RECIPE)
    return tmp_path


def test_first_bad_term_names_the_first_non_finite_one():
    terms = {"ce": torch.tensor(1.0, requires_grad=True), "kd": torch.tensor(float("inf")), "cwd": torch.tensor(float("nan"))}
    assert first_bad_term(terms) == ("kd", float("inf"))
    assert first_bad_term({"ce": torch.tensor(0.5)}) is None


def test_message_names_step_term_and_checkpoint():
    error = NonFiniteLoss(12, "kd", float("nan"), "runs/x/checkpoints/step_0000010", run_dir="runs/x")
    assert str(error) == ("runs/x: step 12: losses.kd: expected a finite loss, got <nan> "
                          "(last good checkpoint: runs/x/checkpoints/step_0000010)")


@pytest.mark.slow
def test_nan_stops_the_run_naming_step_term_and_last_good_checkpoint(project):
    result = distill("run", "tiny.yaml", "train.checkpoint_every=1", cwd=project)
    assert result.returncode == 2, result.stderr
    assert result.stderr.splitlines() == [
        "distill: runs/tiny: step 2: losses.ce: expected a finite loss, got <nan> "
        "(last good checkpoint: runs/tiny/checkpoints/step_0000001)"]
    assert (project / "runs/tiny/checkpoints/step_0000001/state.json").is_file()
    assert not (project / "runs/tiny/student.safetensors").exists()


@pytest.mark.slow
def test_skip_policy_skips_and_counts_up_to_max_skipped(project):
    result = distill("run", "tiny.yaml", "train.nan_policy=skip", "train.max_skipped=3", cwd=project)
    assert result.returncode == 2, result.stderr
    skipped = [line for line in result.stdout.splitlines() if "step skipped" in line]
    assert skipped == [f"step 2: non-finite ce; step skipped ({n} so far)" for n in (1, 2, 3)]
    assert result.stderr.splitlines() == [
        "distill: runs/tiny: step 2: losses.ce: expected a finite loss, got <nan> (no checkpoint was written yet)"]
