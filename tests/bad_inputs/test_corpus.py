"""Every case of the bad-input corpus (cases.py) through the real CLI, in a subprocess.

A case passes when `distill` exits with 2, prints exactly one stderr line `distill: ...` that
names the file, the field and what was expected (the case's regex), shows no traceback, and
leaves the project as it was: no run folder, no output file, a pre-existing file untouched.

The processes of all selected cases start together on a small pool (DISTILL_TEST_JOBS, by
default 2) when the first case runs; each test then checks its own result, so `-k` still runs
only the chosen cases. Each case runs in its own process forked from a server that has imported
the package once (tests/cli_forkserver.py: torch's import was most of the corpus's time);
test_debug_shows_the_traceback still starts `python -m distill.cli`.
"""

from __future__ import annotations

import hashlib
import importlib.util
import os
import re
import subprocess
import sys
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from queue import Queue

import pytest
from cli_forkserver import ForkServer
from helpers import cli_env, run_distill

_spec = importlib.util.spec_from_file_location("bad_input_cases", Path(__file__).with_name("cases.py"))
cases = sys.modules.setdefault("bad_input_cases", importlib.util.module_from_spec(_spec))
_spec.loader.exec_module(cases)  # by path: works under any pytest import mode

JOBS = int(os.environ.get("DISTILL_TEST_JOBS", min(2, os.cpu_count() or 1)))
TIMEOUT_S = 180


def case_env(cwd: Path) -> dict[str, str]:
    return cli_env(PYTHONDONTWRITEBYTECODE="1", HOME=str(cwd), DISTILL_DATA="data", DISTILL_CACHE=str(cwd / ".cache"))


def distill(args: tuple[str, ...], cwd: Path) -> subprocess.CompletedProcess:
    """A new interpreter (`python -m distill.cli`), as a user starts it."""
    return run_distill(*args, cwd=cwd, env=case_env(cwd), timeout=TIMEOUT_S, fresh=True)


def manifest(root: Path) -> dict[str, str]:
    """Every path under root with a hash of its content ('dir' for folders)."""
    out = {}
    for path in sorted(root.rglob("*")):
        rel = path.relative_to(root).as_posix()
        out[rel] = "dir" if path.is_dir() else hashlib.sha256(path.read_bytes()).hexdigest()
    return out


@pytest.fixture(scope="session")
def artifacts(tmp_path_factory) -> dict[str, bytes]:
    """The model files cases refer to, built once in this process (no training: random weights)."""
    import torch

    from distill.cards import CnnCard
    from distill.data.scenes import CLASSES
    from distill.models import build_model, save_model

    folder = tmp_path_factory.mktemp("artifacts")
    card = CnnCard(name="tiny_student", arch="lraspp", backbone="mobilenetv3_small_100", head_channels=8)
    torch.manual_seed(0)
    model = build_model(card, len(CLASSES), list(CLASSES), load_pretrained=False)
    save_model(model, folder / "m.safetensors", {"dataset": "synthetic", "data_options": {"num_images": 8, "size": [48, 64]}})
    torch.save(model.state_dict(), folder / "m.pth")
    data = (folder / "m.safetensors").read_bytes()
    return {"model": data, "truncated": data[: int(len(data) * 0.6)], "pth": (folder / "m.pth").read_bytes()}


def write_project(root: Path, case, artifacts: dict[str, bytes]) -> None:
    for rel, content in {**cases.PROJECT, **case.files}.items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        if isinstance(content, cases.Artifact):
            content = artifacts[content.kind]
        if isinstance(content, bytes):
            path.write_bytes(content)
        else:
            path.write_text(content)


@pytest.fixture(scope="session")
def corpus(request, artifacts, tmp_path_factory):
    """name -> Future of (project, manifest before, result) for every selected case, started at once."""
    selected = [item.callspec.params["case"] for item in request.session.items
                if getattr(item, "callspec", None) and item.originalname == "test_bad_input" and item.module.__name__ == __name__]
    if not selected:
        yield {}
        return
    pool = ThreadPoolExecutor(max_workers=JOBS)
    servers: Queue[ForkServer] = Queue()
    for _ in range(min(JOBS, len(selected))):
        servers.put(ForkServer(cli_env(PYTHONDONTWRITEBYTECODE="1")))
    futures: dict[str, Future] = {}

    def run(case, project: Path):
        before = manifest(project)
        server = servers.get()
        try:
            return project, before, server.run(case.args, project, case_env(project), timeout=TIMEOUT_S)
        finally:
            servers.put(server)

    for case in sorted(selected, key=lambda c: not c.heavy):  # the slow ones first, so the pool ends together
        project = tmp_path_factory.mktemp(case.name)
        write_project(project, case, artifacts)
        futures[case.name] = pool.submit(run, case, project)
    yield futures
    pool.shutdown(wait=True, cancel_futures=True)
    while not servers.empty():
        servers.get().close()


def params() -> list:
    return [pytest.param(case, id=case.name, marks=[pytest.mark.xfail(strict=True, reason=case.xfail)] if case.xfail else [])
            for case in cases.CASES]


@pytest.mark.parametrize("case", params())
def test_bad_input(case, corpus):
    project, before, result = corpus[case.name].result()
    shown = f"stdout:\n{result.stdout[-2000:]}\nstderr:\n{result.stderr[-4000:]}"
    assert "Traceback" not in result.stderr + result.stdout, shown
    assert result.returncode == 2, shown
    lines = result.stderr.rstrip("\n").splitlines()
    assert len(lines) == 1 and lines[0].startswith("distill: "), shown
    assert re.search(case.expected, lines[0][len("distill: "):]), f"{lines[0]!r} does not match {case.expected!r}"
    after = manifest(project)
    changed = sorted(p for p in set(before) | set(after) if before.get(p) != after.get(p))
    unexpected = [p for p in changed if not (case.allowed and re.fullmatch(case.allowed, p))]
    assert not unexpected, f"the command created or changed {unexpected}"
    for path in case.forbidden:
        assert not (project / path).exists(), path


def test_corpus_is_large_and_mostly_light():
    names = [c.name for c in cases.CASES]
    assert len(names) == len(set(names)) and len(names) >= 40
    assert sum(c.heavy for c in cases.CASES) <= 10


def test_debug_shows_the_traceback(tmp_path, artifacts):
    case = next(c for c in cases.CASES if c.name == "unknown_train_key")
    write_project(tmp_path, case, artifacts)
    result = distill(case.args + ("--debug",), tmp_path)
    assert result.returncode != 0
    assert "Traceback" in result.stderr and "train.lrr" in result.stderr.splitlines()[-1]
