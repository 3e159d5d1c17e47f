"""distill/data/layout.py: confinement of list entries, default roots and nested root lookup."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from distill.data.layout import default_root, locate_root, read_list_lines, resolve_inside
from distill.errors import DistillError


@pytest.mark.parametrize("entry", ["../x.png", "a/../../x.png", "/etc/passwd", "a/b/../../../x"])
def test_entries_leaving_root_are_refused(tmp_path, entry):
    with pytest.raises(DistillError, match=rf"list\.txt:4: expected a path inside {tmp_path}"):
        resolve_inside(tmp_path, entry, tmp_path / "list.txt", 4)


def test_entries_inside_root_resolve(tmp_path):
    assert resolve_inside(tmp_path, "a/./b/../c.png", tmp_path / "l.txt", 1) == tmp_path / "a" / "c.png"


def test_symlinked_folders_inside_root_are_allowed(tmp_path):
    (tmp_path / "elsewhere").mkdir()
    (tmp_path / "root").mkdir()
    os.symlink(tmp_path / "elsewhere", tmp_path / "root" / "images")
    assert resolve_inside(tmp_path / "root", "images/x.png", tmp_path / "l.txt", 1) == tmp_path / "root/images/x.png"


def test_default_root_follows_distill_data(monkeypatch):
    monkeypatch.delenv("DISTILL_DATA", raising=False)
    assert default_root("camvid") == Path("data/camvid")
    monkeypatch.setenv("DISTILL_DATA", "/mnt/sets")
    assert default_root("camvid") == Path("/mnt/sets/camvid")


def test_locate_root_finds_nested_folder_and_reports_where_it_looked(tmp_path):
    (tmp_path / "inner" / "marker").mkdir(parents=True)
    is_layout = lambda p: (p / "marker").is_dir()  # noqa: E731
    assert locate_root(tmp_path, "x", ["inner"], is_layout, "a marker/", "get it") == tmp_path / "inner"
    with pytest.raises(DistillError, match=rf"looked in {tmp_path}/other, {tmp_path}/other/inner\) \(get it; set data\.root"):
        locate_root(tmp_path / "other", "x", ["inner"], is_layout, "a marker/", "get it")


def test_list_lines_skip_blanks_and_comments(tmp_path):
    path = tmp_path / "l.txt"
    path.write_text("# header\n\na b\n  c  \n")
    assert read_list_lines(path) == [(3, ["a", "b"]), (4, ["c"])]
