"""`distill run --dry-run` (pre-flight), `distill --version` and `distill env`, through the real CLI."""

from __future__ import annotations

import hashlib
from pathlib import Path

from helpers import recipe, run_distill, student_card, teacher_card

from distill import __version__


def snapshot(folder: Path) -> dict[str, str]:
    return {str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest() for p in folder.rglob("*") if p.is_file()}


def project(tmp_path: Path) -> Path:
    (tmp_path / "student.yaml").write_text(student_card())
    (tmp_path / "teacher.yaml").write_text(teacher_card())
    (tmp_path / "kd.yaml").write_text(recipe("tiny_kd", "{iterations: 4, lr: 0.01}", teacher=True))
    return tmp_path


def test_dry_run_plans_the_stages_and_writes_nothing(tmp_path):
    folder = project(tmp_path)
    before = snapshot(folder)
    result = run_distill("run", "kd.yaml", "--dry-run", "teacher.train.iterations=50", cwd=folder)
    assert result.returncode == 0, result.stderr[-2000:]
    out = " ".join(result.stdout.split())
    assert "1. train_teacher main: ckpt/tiny_teacher.safetensors is missing, will be trained first (50 iterations" in out
    assert "s/step, measured here" in out and "2. distill: ce + kd, 4 iterations" in out
    assert "student@labeled: logits; main@labeled: logits" in out  # what kd reads
    assert "tiny_student" not in out or "student.yaml" in out
    assert "teachers:" in out and "main: teacher.yaml" in out  # the resolved recipe
    assert "dry run: nothing was written" in out
    assert snapshot(folder) == before and not (folder / "runs").exists() and not (folder / "ckpt").exists()


def test_dry_run_refuses_what_a_run_would_refuse(tmp_path):
    folder = project(tmp_path)
    (folder / "runs/tiny_kd").mkdir(parents=True)
    (folder / "runs/tiny_kd/log.jsonl").write_text("{}\n")
    result = run_distill("run", "kd.yaml", "--dry-run", cwd=folder)
    assert result.returncode == 2
    assert result.stderr.strip() == ("distill: runs/tiny_kd: output folder: expected a new folder, or --resume / --overwrite, "
                                     "got <exists>")


def test_version_and_environment_block(tmp_path):
    version = run_distill("--version", cwd=tmp_path)
    assert version.returncode == 0 and version.stdout.strip() == f"distill {__version__}"
    env = run_distill("env", cwd=tmp_path)
    assert env.returncode == 0, env.stderr
    assert env.stdout.startswith("### distill environment\n")
    for key in ("| accelerate | ", "| torch-pruning | ", "| onnxruntime | ", "| threads | ", "accelerate config:"):
        assert key in env.stdout, key


def test_recipes_table_reads_at_80_columns_and_hides_bases():
    from helpers import cli_env

    root = Path(__file__).resolve().parents[1]
    result = run_distill("recipes", cwd=root, env=cli_env(COLUMNS="80"))
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert max(len(line) for line in lines) <= 80 and "…" not in result.stdout
    assert "_base" not in result.stdout
    header = next(line for line in lines if "recipe" in line and "losses" in line)
    assert all(column in header for column in ("teacher", "student", "data", "iters"))
    wide = run_distill("recipes", cwd=root, env=cli_env(COLUMNS="200")).stdout
    row = next(line for line in wide.splitlines() if "recipes/camvid/kd.yaml" in line)
    assert all(cell in row for cell in ("ce + kd", "camvid_deeplabv3plus_lite2", "lraspp_lite0", "camvid", "400"))


def test_recipes_copy_writes_a_standalone_recipe_that_loads(tmp_path, monkeypatch):
    root = Path(__file__).resolve().parents[1]
    monkeypatch.chdir(root)  # card paths in recipes are relative to the working directory
    dest = tmp_path / "my_kd.yaml"
    result = run_distill("recipes", "--copy", "camvid/kd", str(dest), cwd=root)
    assert result.returncode == 0, result.stderr
    text = dest.read_text()
    assert "base:" not in text and "Copied from" in text
    from distill.recipe import load_recipe

    original, copied = load_recipe(root / "recipes/camvid/kd.yaml"), load_recipe(dest)
    assert copied.recipe.fingerprint() == original.recipe.fingerprint()
    again = run_distill("recipes", "--copy", "camvid/kd", str(dest), cwd=root)
    assert again.returncode == 2 and "expected a path that does not exist yet" in again.stderr
    assert run_distill("recipes", "--copy", "camvid/kdd", str(tmp_path / "x.yaml"), cwd=root).returncode == 2


def test_the_teacher_estimate_counts_each_forward_a_step_runs():
    """LAD's teacher trains on two noised paths (two forwards a step), a plain recipe on one."""
    from distill.recipe import load_recipe
    from distill.stages.dryrun import student_forwards
    from distill.stages.teacher import teacher_recipe

    root = Path(__file__).resolve().parents[1]
    lad = load_recipe(root / "recipes/lad.yaml")
    assert student_forwards(teacher_recipe(lad, "main")) == 2
    assert student_forwards(load_recipe(root / "recipes/kd.yaml")) == 1


def test_a_loaded_machine_is_named_in_the_estimate(monkeypatch):
    from distill.stages import dryrun

    monkeypatch.setattr(dryrun.os, "cpu_count", lambda: 2)
    monkeypatch.setattr(dryrun.os, "getloadavg", lambda: (3.8, 3.0, 2.0))
    assert dryrun.load_note() == "; load average 3.8 on 2 cores: other work is running, so this overestimates"
    monkeypatch.setattr(dryrun.os, "getloadavg", lambda: (0.4, 0.3, 0.2))
    assert dryrun.load_note() == ""
