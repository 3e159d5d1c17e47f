"""Losses whose reduction depends on the whole batch give the same gradient with one process as with
two DDP processes (gloo) that each hold half of it: CE's mean over valid pixels when the halves
have different numbers of ignored pixels, and MGD's image-level sum (methods.md pitfall 4).

Two real processes (torch.multiprocessing, gloo on 127.0.0.1) run a 1x1-conv student under DDP;
the gradient one process gets for the whole batch is the reference. Tolerance 1e-6 (float sums).
"""

from __future__ import annotations

import socket

import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp
from torch import nn

from distill.batch import Batch, View
from distill.losses.ce import upsampled_ce
from distill.losses.mgd import SemanticSensitive
from distill.outputs import STUDENT, PairView, SegOutput

N, C, H, W = 4, 3, 4, 4


def data() -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(0)
    images = torch.rand(N, 3, H, W, generator=g)
    labels = torch.randint(0, C, (N, H, W), generator=g)
    labels[0, :3] = 255  # the first half (images 0-1) has 12 ignored pixels, the second none
    teacher = torch.randn(N, C, H, W, generator=g)
    return images, labels, teacher


def gradient(rank: int, world: int) -> torch.Tensor:
    """d(CE + L_img)/d(weights) on this process's slice, after DDP's average when world > 1."""
    torch.manual_seed(0)
    model = nn.Conv2d(3, C, 1)
    wrapped = nn.parallel.DistributedDataParallel(model) if world > 1 else model
    images, labels, teacher = data()
    part = slice(rank * N // world, (rank + 1) * N // world)
    logits = wrapped(images[part])
    pair = PairView({(STUDENT, "labeled"): SegOutput(logits), ("main", "labeled"): SegOutput(teacher[part])},
                    Batch({"labeled": View(images[part], labels[part])}), "labeled", "main")
    (upsampled_ce(logits, labels[part]) + SemanticSensitive()(pair)).backward()
    return model.weight.grad.clone()


def worker(rank: int, world: int, port: int, out: dict) -> None:
    dist.init_process_group("gloo", init_method=f"tcp://127.0.0.1:{port}", rank=rank, world_size=world)
    try:
        out[rank] = gradient(rank, world)
    finally:
        dist.destroy_process_group()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_two_processes_get_the_one_process_gradient():
    single = gradient(0, 1)
    with mp.Manager() as manager:
        out = manager.dict()
        mp.spawn(worker, args=(2, free_port(), out), nprocs=2, join=True)
        two = dict(out)
    assert torch.allclose(two[0], two[1])  # DDP gave both processes one gradient
    assert torch.allclose(two[0], single, atol=1e-6), (two[0] - single).abs().max()


def test_a_per_process_mean_would_differ():
    """The check above can fail: averaging each half's own valid-pixel mean (what a plain
    per-process CE gives) is another gradient for this batch."""
    torch.manual_seed(0)
    model = nn.Conv2d(3, C, 1)
    images, labels, _ = data()
    halves = [upsampled_ce(model(images[i:i + 2]), labels[i:i + 2]) for i in (0, 2)]
    per_process = torch.autograd.grad(sum(halves) / 2, model.weight)[0]
    whole = torch.autograd.grad(upsampled_ce(model(images), labels), model.weight)[0]
    assert (per_process - whole).abs().max() > 1e-3
