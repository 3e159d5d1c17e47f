"""`distill ARGS` in a fresh process that does not pay for importing torch again.

Every `distill` subprocess spends about 5 s of CPU importing torch, torchvision and timm before it
reads its first argument; the bad-input corpus runs 80-odd of them, so most of its time was imports.
A server (this file run as a script) imports the package once, without running a tensor operation
(so no thread pool exists yet, and forking is safe), then forks one child per request. The child
takes the request's environment, folder and argument list, sends its stdout and stderr to files and
runs the same `main()` that `python -m distill.cli` runs; its exit status comes back as the
returncode. Each case still runs in its own process, starting from the same freshly imported state,
so nothing one case does can reach another.

Protocol: one JSON object per line on stdin ({"args", "cwd", "env", "out", "err"}), one line back
on stdout with the returncode once the child has exited.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import tempfile
import threading
from pathlib import Path

PRELOAD = ("torch", "torchvision", "timm", "safetensors.torch", "yaml", "pydantic", "rich", "typer",
           "distill.cli", "distill.recipe", "distill.models", "distill.stages", "distill.data")


def _serve() -> None:
    import importlib

    for name in PRELOAD:
        try:
            importlib.import_module(name)
        except ImportError:
            pass
    sys.stdout.write("ready\n")
    sys.stdout.flush()
    for line in sys.stdin:
        request = json.loads(line)
        pid = os.fork()
        if pid == 0:
            _child(request)
        _, status = os.waitpid(pid, 0)
        sys.stdout.write(f"{os.waitstatus_to_exitcode(status)}\n")
        sys.stdout.flush()


def _child(request: dict) -> None:
    """Runs in the forked process and never returns."""
    code = 1
    try:
        os.environ.clear()
        os.environ.update(request["env"])
        os.chdir(request["cwd"])
        for fd, path in ((1, request["out"]), (2, request["err"])):
            target = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
            os.dup2(target, fd)
            os.close(target)
        sys.stdin = open(os.devnull)
        signal.alarm(int(request.get("timeout", 0)))  # a case that hangs dies by SIGALRM, status -14
        sys.argv = [str(Path(sys.modules["distill.cli"].__file__)), *request["args"]]
        from distill.cli import main

        try:
            main()
            code = 0
        except SystemExit as exc:
            code = exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
            if not isinstance(exc.code, (int, type(None))):
                print(exc.code, file=sys.stderr)
        except BaseException:  # what an uncaught exception does to a real interpreter: traceback, status 1
            import traceback

            traceback.print_exc()
            code = 1
    finally:
        for stream in (sys.stdout, sys.stderr):
            try:
                stream.flush()
            except Exception:
                pass
        os._exit(code)


class ForkServer:
    """A running server; `run` is safe from many threads (one request at a time per server)."""

    def __init__(self, env: dict[str, str]):
        self._lock = threading.Lock()
        self._proc = subprocess.Popen([sys.executable, __file__], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                      text=True, env=env, cwd=Path(__file__).parent)
        ready = self._proc.stdout.readline()
        if ready.strip() != "ready":
            raise RuntimeError(f"the distill fork server did not start (said {ready!r})")

    def run(self, args: tuple[str, ...], cwd: Path, env: dict[str, str], timeout: int = 0) -> subprocess.CompletedProcess:
        out, err = (Path(tempfile.mkstemp(prefix="distill-cli-", suffix=f".{name}")[1]) for name in ("stdout", "stderr"))
        request = {"args": list(args), "cwd": str(cwd), "env": env, "out": str(out), "err": str(err),
                   "timeout": timeout}
        with self._lock:
            self._proc.stdin.write(json.dumps(request) + "\n")
            self._proc.stdin.flush()
            code = int(self._proc.stdout.readline())
        result = subprocess.CompletedProcess(list(args), code, out.read_text(errors="replace"), err.read_text(errors="replace"))
        out.unlink()
        err.unlink()
        return result

    def close(self) -> None:
        self._proc.stdin.close()
        self._proc.wait(timeout=30)


if __name__ == "__main__":
    _serve()
