"""Checkpoints: a kill at any moment, a full disk or a failed write never costs the last good one."""

from __future__ import annotations

import errno
import json
import shutil
import signal
import subprocess
import time
from collections import namedtuple
from pathlib import Path

import pytest
from helpers import cli_env, distill_command, recipe, run_distill, student_card

from distill.engine.checkpoint import MARKER, Checkpoints
from distill.errors import DistillError

STUDENT = student_card()
RECIPE = recipe("tiny", "{iterations: 200, log_every: 1, checkpoint_every: 2}")
ENV = cli_env(PYTHONDONTWRITEBYTECODE="1")
Usage = namedtuple("Usage", "total used free")


class FakeAccelerator:
    """Just what Checkpoints uses; save_state writes one file, or fails half-way like a full disk."""

    is_main_process = True

    def __init__(self, fail: BaseException | None = None) -> None:
        self.fail = fail

    def wait_for_everyone(self) -> None:
        pass

    def save_state(self, folder: str) -> None:
        Path(folder).mkdir(parents=True, exist_ok=True)
        (Path(folder) / "model.safetensors").write_bytes(b"half a file" if self.fail else b"weights")
        if self.fail:
            raise self.fail


def test_a_failed_write_keeps_the_last_checkpoint(tmp_path):
    checkpoints = Checkpoints(tmp_path / "checkpoints")
    good = checkpoints.save(FakeAccelerator(), 2, {"skipped": 0}, state_bytes=10)
    full_disk = OSError(errno.ENOSPC, "No space left on device")
    with pytest.raises(DistillError, match=r"checkpoints/step_0000004: expected a complete checkpoint write .*"
                                           r"No space left on device") as info:
        checkpoints.save(FakeAccelerator(fail=full_disk), 4, {"skipped": 0}, state_bytes=10)
    assert "\n" not in str(info.value)
    assert checkpoints.latest() == good and (good / "model.safetensors").read_bytes() == b"weights"
    assert [p.name for p in (tmp_path / "checkpoints").iterdir()] == ["step_0000002"]  # no step_4.tmp left


class SlowPeerAccelerator(FakeAccelerator):
    """Process 0 of two: at each barrier, the other process writes its RNG state file into the last
    folder save_state was given, as Accelerate's save_state does on every process (the file is
    written only if the folder still exists, which is what failed in CI when process 0 renamed it first)."""

    def __init__(self) -> None:
        super().__init__()
        self.folder: Path | None = None
        self.peer_wrote = False

    def save_state(self, folder: str) -> None:
        super().save_state(folder)
        self.folder = Path(folder)

    def wait_for_everyone(self) -> None:
        if self.folder is not None and self.folder.is_dir() and not self.peer_wrote:
            (self.folder / "random_states_1.pkl").write_bytes(b"rng")
            self.peer_wrote = True


def test_the_rename_waits_for_every_process_to_finish_writing(tmp_path):
    path = Checkpoints(tmp_path / "checkpoints").save(SlowPeerAccelerator(), 2, {})
    assert (path / "random_states_1.pkl").read_bytes() == b"rng"


def test_torch_save_failures_are_reported_too(tmp_path):
    checkpoints = Checkpoints(tmp_path / "checkpoints")
    with pytest.raises(DistillError, match=r"RuntimeError: \[enforce fail at inline_container\.cc"):
        checkpoints.save(FakeAccelerator(fail=RuntimeError("[enforce fail at inline_container.cc:672] . unexpected pos")), 2, {})
    assert checkpoints.latest() is None


def test_free_space_is_checked_before_writing(tmp_path, monkeypatch):
    checkpoints = Checkpoints(tmp_path / "checkpoints")
    good = checkpoints.save(FakeAccelerator(), 2, {}, state_bytes=1000)
    monkeypatch.setattr(shutil, "disk_usage", lambda path: Usage(10 << 30, 10 << 30, 2000))
    # 3 x 1000 bytes of model state are wanted: weights, optimizer moments, slack
    with pytest.raises(DistillError, match=r"checkpoints: free disk space: expected at least 2\.9 KiB free .*got <2\.0 KiB free>"):
        checkpoints.save(FakeAccelerator(), 4, {}, state_bytes=1000)
    assert checkpoints.complete() == [good]


def test_incomplete_folders_are_ignored(tmp_path):
    folder = tmp_path / "checkpoints"
    for name, marker in (("step_0000002", True), ("step_0000004", False), ("step_0000006.tmp", True)):
        (folder / name).mkdir(parents=True)
        if marker:
            (folder / name / MARKER).write_text(json.dumps({"step": int(name[5:12])}))
    assert Checkpoints(folder).latest() == folder / "step_0000002"


@pytest.mark.slow
def test_kill_9_mid_run_leaves_complete_checkpoints_and_resume_works(tmp_path):
    (tmp_path / "student.yaml").write_text(STUDENT)
    (tmp_path / "tiny.yaml").write_text(RECIPE)
    run = tmp_path / "runs/tiny"
    proc = subprocess.Popen(distill_command("run", "tiny.yaml"), cwd=tmp_path, env=ENV,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 300
    while proc.poll() is None and time.monotonic() < deadline:
        log = run / "log.jsonl"
        if log.is_file() and len(log.read_text().splitlines()) >= 9:  # past 4 checkpoint saves
            break
        time.sleep(0.01)
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=60)
    assert proc.returncode == -signal.SIGKILL
    folders = [p for p in (run / "checkpoints").iterdir() if not p.name.endswith(".tmp")]
    assert folders and all((p / MARKER).is_file() for p in folders), folders
    resumed = run_distill("run", "tiny.yaml", "--resume", cwd=tmp_path, env=ENV, timeout=600)
    assert resumed.returncode == 0, resumed.stderr
    assert "resuming from runs/tiny/checkpoints/step_" in resumed.stdout
    assert (run / "student.safetensors").is_file()


def test_resuming_drops_the_log_records_past_the_checkpoint(tmp_path):
    """A run killed at step 5 with its checkpoint at 3 logged steps 4 and 5, which it trains again:
    the log keeps steps 1-3 (and the eval at 3), and a line the kill cut short goes too."""
    from distill.engine.runlog import trim_log

    log = tmp_path / "log.jsonl"
    records = [{"step": s, "loss": 1.0 / s} for s in range(1, 6)] + [{"step": 3, "eval": {"miou": 1.0}}]
    log.write_text("".join(json.dumps(r) + "\n" for r in records) + '{"step": 6, "lo')
    trim_log(log, 3)
    kept = [json.loads(line) for line in log.read_text().splitlines()]
    assert [r["step"] for r in kept] == [1, 2, 3, 3] and "eval" in kept[-1]
