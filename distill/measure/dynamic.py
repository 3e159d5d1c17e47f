"""Executed cost of models whose compute depends on the input (DToP's token exits), over a split.

A static GFLOPs figure at one input size (distill.measure.flops, on a blank image) says nothing
about such a model: each image runs another number of tokens. `evaluate` therefore asks a model
that has `dynamic_stats()` (per-image figures of its last forward) to be measured on every image
of the split: executed FLOPs with torch.utils.flop_counter on the real forward (a second pass
under the counter, which slows what it counts), wall time of the uncounted pass when the batch
holds one image, and the mean of each per-image figure (the fraction of tokens exiting per head).
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable
from typing import Any

import torch
from torch import Tensor, nn
from torch.utils.flop_counter import FlopCounterMode


def has_dynamic_cost(model: nn.Module) -> bool:
    return callable(getattr(model, "dynamic_stats", None))


class DynamicCost:
    """Sums over the images seen; `summary` gives the means (FLOPs per image, fractions) and the
    median batch-1 latency."""

    def __init__(self, device: torch.device | str = "cpu") -> None:
        self.device = torch.device(device)
        self.flops, self.images = 0, 0
        self.sums: dict[str, float] = {}
        self.latency_ms: list[float] = []

    def measure(self, model: nn.Module, run: Callable[[], Tensor]) -> Tensor:
        """`run()` once timed and once under the FLOP counter; returns the first run's output."""
        sync = torch.cuda.synchronize if self.device.type == "cuda" else (lambda: None)
        sync()
        started = time.perf_counter()
        out = run()
        sync()
        elapsed = (time.perf_counter() - started) * 1000.0
        stats = model.dynamic_stats()
        count = len(next(iter(stats.values())))
        if count == 1:
            self.latency_ms.append(elapsed)
        counter = FlopCounterMode(display=False)
        with counter:
            run()
        self.flops += int(counter.get_total_flops())
        self.images += count
        for key, values in stats.items():
            self.sums[key] = self.sums.get(key, 0.0) + float(sum(values))
        return out

    def reduce(self, reduce_sum: Callable[[Tensor], Tensor]) -> None:
        """Sum the counts over processes (each scored its own share of the split)."""
        keys = sorted(self.sums)
        local = torch.tensor([float(self.flops), float(self.images), *(self.sums[k] for k in keys)], dtype=torch.float64,
                             device=self.device)
        total = reduce_sum(local).tolist()
        self.flops, self.images = int(total[0]), int(total[1])
        self.sums = dict(zip(keys, total[2:]))

    def summary(self) -> dict[str, Any]:
        if not self.images:
            return {}
        out: dict[str, Any] = {"executed_gflops": self.flops / self.images / 1e9}
        out.update({key: value / self.images for key, value in sorted(self.sums.items())})
        out["latency_ms"] = statistics.median(self.latency_ms) if self.latency_ms else None
        out["latency_setting"] = (f"batch 1, {self.device.type}, {torch.get_num_threads()} torch thread(s), median over "
                                  f"{len(self.latency_ms)} images of the split" if self.latency_ms
                                  else "not measured (evaluation batches hold more than one image)")
        return out
