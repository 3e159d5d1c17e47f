"""What many test folders share: the tiny model cards and recipes, and `distill` run as a user types it.

Importable as `helpers` from any test (tests/conftest.py puts this folder on sys.path, under any
pytest import mode). The cards and recipes are text, so a test can write them into its project
folder, edit them with str.replace, and rely on their line numbers in error messages.

Every model is a mobilenetv3_small_100 with no pretrained weights fetched; every data set is the
synthetic one at 48x64, in batches of 4, without workers.
"""

from __future__ import annotations

import subprocess
import sys
from os import PathLike
from pathlib import Path

BACKBONE = "mobilenetv3_small_100"


def synthetic_data(num_images: int = 8) -> str:
    """A recipe's `data:` value (a YAML flow mapping): `num_images` synthetic 48x64 images."""
    return ("{name: synthetic, crop_size: [48, 64], batch_size: 4, workers: 0, "
            f"options: {{num_images: {num_images}, size: [48, 64]}}}}")


def student_card(head_channels: int = 8) -> str:
    """The tiny student card (an LR-ASPP head), as its student.yaml."""
    return f"name: tiny_student\narch: lraspp\nbackbone: {BACKBONE}\nhead_channels: {head_channels}\n"


def teacher_card(head_channels: int = 8, checkpoint: str | PathLike = "ckpt/tiny_teacher.safetensors",
                 num_images: int = 8, train: bool = True) -> str:
    """The tiny teacher card (an FCN head), as its teacher.yaml. With `train`, a missing checkpoint is
    trained first: 3 steps on `num_images` synthetic images."""
    text = (f"name: tiny_teacher\narch: fcn\nbackbone: {BACKBONE}\nhead_channels: {head_channels}\n"
            f"checkpoint: {checkpoint}\n")
    if train:
        text += f"train:\n  data: {synthetic_data(num_images)}\n  train: {{iterations: 3, lr: 0.01}}\n"
    return text


def recipe(name: str, train: str, teacher: bool = False, num_images: int = 8) -> str:
    """A recipe over student.yaml (and teacher.yaml) on synthetic data: the ce loss, plus kd at tau 2
    with a teacher; `train` is the `train:` value, a YAML flow mapping such as "{iterations: 4}"."""
    text = f"name: {name}\n"
    if teacher:
        text += "teacher: teacher.yaml\n"
    text += f"student: student.yaml\ndata: {synthetic_data(num_images)}\nlosses:\n  - {{name: ce}}\n"
    if teacher:
        text += "  - {name: kd, tau: 2.0}\n"
    return text + f"train: {train}\n"


def cli_env(**extra: str) -> dict[str, str]:
    """The environment of a `distill` subprocess: no user settings leak in, one thread (so a
    background job is not slowed), a fixed terminal width; `extra` adds or replaces variables."""
    return {"PATH": "/usr/bin:/bin", "OMP_NUM_THREADS": "1", "COLUMNS": "200", **extra}


def distill_command(*args: str) -> list[str]:
    """`distill ARGS` as an argument list for subprocess (this interpreter, `-m distill.cli`)."""
    return [sys.executable, "-m", "distill.cli", *args]


_server = None


def _fork_server():
    """The session's fork server (cli_forkserver.py), started on first use and stopped at exit."""
    global _server
    if _server is None:
        import atexit

        from cli_forkserver import ForkServer

        _server = ForkServer(cli_env())
        atexit.register(_server.close)
    return _server


def run_distill(*args: str, cwd: str | PathLike, env: dict[str, str] | None = None,
                timeout: float | None = None, fresh: bool = False) -> subprocess.CompletedProcess:
    """`distill ARGS` run in `cwd`, output captured as text; env defaults to cli_env(). Not checked:
    the tests read returncode themselves.

    The process is forked from a server that imported the package once (cli_forkserver.py), unless
    `fresh` or an environment whose thread count or width differs from cli_env()'s (read when torch
    and rich load) asks for a new interpreter: `python -m distill.cli`."""
    env = cli_env() if env is None else env
    base = cli_env()
    if fresh or any(env.get(key) != base[key] for key in ("OMP_NUM_THREADS", "COLUMNS")):
        return subprocess.run(distill_command(*args), cwd=cwd, capture_output=True, text=True, env=env, timeout=timeout)
    return _fork_server().run(args, cwd, env, timeout=int(timeout or 0))


def trained_tiny_model(path: Path, size: tuple[int, int] = (48, 64), num_images: int = 16) -> Path:
    """A tinyconv model trained 30 Adam steps on synthetic scenes (about a second), saved at `path`.
    Trained, not random: a random-init model's classes are near-ties and its activations say little
    about a real model's ranges, so int8 tests on it would test the seed."""
    import torch
    import torch.nn.functional as F

    from distill.cards import card_from_dict
    from distill.data import build_dataset
    from distill.data.scenes import CLASSES
    from distill.models import build_model, save_model

    data = {"num_images": num_images, "size": list(size)}
    torch.manual_seed(0)
    card = card_from_dict({"family": "tinyconv", "name": "tiny", "widths": [16, 32]}, "test")
    model = build_model(card, len(CLASSES), list(CLASSES), load_pretrained=False)
    train = build_dataset("synthetic", None, "train", data)
    images = torch.stack([train[i]["image"] for i in range(len(train))]).float() / 255
    labels = torch.stack([train[i]["label"] for i in range(len(train))])
    optimiser = torch.optim.Adam(model.parameters(), lr=1e-2)
    for _ in range(30):
        logits = F.interpolate(model(images).logits, size=tuple(size), mode="bilinear", align_corners=False)
        loss = F.cross_entropy(logits, labels, ignore_index=255)
        optimiser.zero_grad()
        loss.backward()
        optimiser.step()
    save_model(model.eval(), path, info={"dataset": "synthetic", "data_options": data})
    return path
