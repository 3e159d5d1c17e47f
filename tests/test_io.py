"""distill/io.py: atomic writes that fail as one line and keep the old file, the free-space check,
and foreign torch state dicts loaded only with weights_only=True."""

from __future__ import annotations

import errno
import os
import shutil
import sys
from collections import namedtuple
from pathlib import Path

import pytest
import torch
from safetensors import SafetensorError

import distill.io
from distill.errors import DistillError
from distill.io import atomic_save_tensors, atomic_write_text, read_model_file, read_torch_state_dict

Usage = namedtuple("Usage", "total used free")
FULL_DISK = OSError(errno.ENOSPC, "No space left on device")


def write_good_file(path: Path) -> bytes:
    atomic_save_tensors({"w": torch.ones(4)}, path, {"format": "test"})
    return path.read_bytes()


@pytest.mark.parametrize("error", [FULL_DISK, SafetensorError("Error while serializing: I/O error: No space left on device (os error 28)")],
                         ids=["OSError", "SafetensorError"])
def test_a_full_disk_mid_write_is_one_line_and_keeps_the_old_file(tmp_path, monkeypatch, error):
    path = tmp_path / "m.safetensors"
    before = write_good_file(path)

    def half_write(tensors, filename, metadata=None):
        Path(filename).write_bytes(b"\x00" * 10)  # what a full disk leaves behind
        raise error

    monkeypatch.setattr(distill.io, "save_file", half_write)
    with pytest.raises(DistillError, match=r"m\.safetensors: expected a complete write \(free disk space, permissions\), "
                                           r"got <.*No space left on device.*>") as info:
        atomic_save_tensors({"w": torch.zeros(4)}, path, {})
    assert "\n" not in str(info.value)
    assert path.read_bytes() == before
    assert os.listdir(tmp_path) == ["m.safetensors"]  # the temporary file is gone


def fail_fsync(fd: int) -> None:
    raise FULL_DISK  # fsync is where a delayed-allocation file system reports a full disk


def test_a_failed_flush_of_a_text_file_keeps_the_old_file(tmp_path, monkeypatch):
    path = tmp_path / "metrics.json"
    path.write_text("old")
    monkeypatch.setattr(distill.io.os, "fsync", fail_fsync)
    with pytest.raises(DistillError, match=r"metrics\.json: expected a complete write .*No space left on device"):
        atomic_write_text(path, "new")
    assert path.read_text() == "old" and os.listdir(tmp_path) == ["metrics.json"]


def test_free_space_is_checked_before_a_model_file_is_written(tmp_path, monkeypatch):
    path = tmp_path / "m.safetensors"
    before = write_good_file(path)
    monkeypatch.setattr(shutil, "disk_usage", lambda p: Usage(1 << 40, 1 << 40, 1 << 20))
    with pytest.raises(DistillError, match=rf"^{tmp_path}: free disk space: expected at least 5\.0 MiB free for the next file, "
                                           r"got <1\.0 MiB free>$"):
        atomic_save_tensors({"w": torch.zeros(1 << 20)}, path, {})  # 4 MiB of float32 + 1 MiB for metadata
    assert path.read_bytes() == before


def test_a_path_under_a_regular_file_is_one_line(tmp_path):
    (tmp_path / "somefile").write_text("x")
    with pytest.raises(DistillError, match=r"somefile/out\.json: expected a writable file, got <.*somefile is not a folder>"):
        atomic_write_text(tmp_path / "somefile/out.json", "{}")


def test_the_cli_reports_a_full_disk_as_one_line(tmp_path, monkeypatch, capsys):
    """In-process through cli.main: `distill eval --predictions ... --json` on a disk that fills up."""
    import numpy as np
    from PIL import Image

    from distill import cli

    for folder in ("fd/images/val", "fd/masks/val", "preds"):
        (tmp_path / folder).mkdir(parents=True)
    Image.fromarray(np.zeros((8, 8, 3), np.uint8)).save(tmp_path / "fd/images/val/a.png")
    Image.fromarray(np.zeros((8, 8), np.uint8)).save(tmp_path / "fd/masks/val/a.png")
    Image.fromarray(np.zeros((8, 8), np.uint8)).save(tmp_path / "preds/a.png")
    (tmp_path / "fd/classes.txt").write_text("road\ncar\n")
    (tmp_path / "m.json").write_text("old metrics")
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(distill.io.os, "fsync", fail_fsync)
    monkeypatch.setattr(sys, "argv", ["distill", "eval", "--predictions", "preds", "--data", "folder", "--data-root", "fd",
                                      "--json", "m.json"])
    with pytest.raises(SystemExit) as exit_info:
        cli.main()
    assert exit_info.value.code == 2
    assert capsys.readouterr().err.splitlines() == [
        "distill: m.json: expected a complete write (free disk space, permissions), got <[Errno 28] No space left on device>"]
    assert (tmp_path / "m.json").read_text() == "old metrics"
    assert not list(tmp_path.glob(".m.json.*"))


def test_a_pickle_file_is_refused_without_the_flag(tmp_path):
    path = tmp_path / "m.pth"
    torch.save({"w": torch.ones(2)}, path)
    with pytest.raises(DistillError, match=r"m\.pth: expected a \.safetensors model file \(a torch state dict loads only with "
                                           r"--allow-pickle --card CARD\.yaml\), got '\.pth'"):
        read_model_file(path)


def test_state_dicts_load_with_weights_only(tmp_path):
    torch.save({"state_dict": {"w": torch.arange(3.0)}}, tmp_path / "wrapped.pth")
    assert read_torch_state_dict(tmp_path / "wrapped.pth")["w"].tolist() == [0.0, 1.0, 2.0]
    torch.save([torch.ones(1)], tmp_path / "list.pth")
    with pytest.raises(DistillError, match=r"list\.pth: expected a mapping of parameter names to tensors, got <list>"):
        read_torch_state_dict(tmp_path / "list.pth")


def test_a_pickle_that_runs_code_is_refused_and_runs_nothing(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "evil.pth").write_bytes(b"cposix\nmkdir\n(S'pwned'\ntR.")  # os.mkdir('pwned') when unpickled
    with pytest.raises(DistillError, match=r"evil\.pth: expected a torch state dict that loads with weights_only=True, "
                                           r"got <UnpicklingError: refused global posix\.mkdir>"):
        read_torch_state_dict(tmp_path / "evil.pth")
    assert not (tmp_path / "pwned").exists()


def test_written_files_get_the_umask_mode_not_mkstemps_0600(tmp_path):
    old = os.umask(0o022)
    try:
        write_good_file(tmp_path / "model.safetensors")
        atomic_write_text(tmp_path / "metrics.json", "{}")
    finally:
        os.umask(old)
    assert (tmp_path / "model.safetensors").stat().st_mode & 0o777 == 0o644
    assert (tmp_path / "metrics.json").stat().st_mode & 0o777 == 0o644
