"""Latency measured side by side: batch 1, a stated size, interleaved round by round.

Absolute times on a shared machine drift with its load (a training in the background, thermal
limits, another user). Timing model A for 20 runs and then model B for 20 runs lets that drift
land on one of them; timing one run of each per round, in an order that rotates every round,
spreads it over all alike, so their ratio stays meaningful even when the absolute numbers do not.
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import torch
from torch import nn

from distill.models.inference import for_inference

DEFAULT_SIZE = (360, 480)  # CamVid's native size: where a model states no eval_size, it is measured at this


@dataclass(frozen=True)
class Setting:
    """Where and how a measurement was taken; printed beside every latency figure."""

    device: str
    threads: int
    size: tuple[int, int]  # (H, W) of the batch-1 input
    repeats: int
    warmup: int

    def describe(self) -> str:
        return (f"batch 1, {self.size[0]}x{self.size[1]}, {self.device}, {self.threads} torch thread(s), "
                f"median and p90 of {self.repeats} interleaved runs after {self.warmup} warm-up; "
                f"PyTorch models in deployable form (BatchNorm folded, conv models channels-last)")


@dataclass
class Latency:
    samples_ms: list[float] = field(default_factory=list)

    @property
    def median_ms(self) -> float:
        return statistics.median(self.samples_ms)

    @property
    def p90_ms(self) -> float:
        """Nearest-rank 90th percentile: with 20 runs, the 18th fastest."""
        ordered = sorted(self.samples_ms)
        return ordered[max(0, -(-9 * len(ordered) // 10) - 1)]


def paired_ratio(a: Latency, b: Latency) -> float:
    """Median over rounds of a's time / b's time in the same round: load that drifts between
    rounds cancels within each pair, so this is steadier than a ratio of two medians."""
    return statistics.median(x / y for x, y in zip(a.samples_ms, b.samples_ms, strict=True))


def pick_device() -> torch.device:
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


def describe_device(device: torch.device) -> str:
    if device.type == "cuda":
        return f"cuda ({torch.cuda.get_device_name(device)})"
    return "cpu"


def make_runner(model: nn.Module, image: torch.Tensor) -> Callable[[], object]:
    forward = getattr(model, "predict", model)  # a segmentation model: up to the class map
    return lambda: forward(image)


def time_once(run: Callable[[], object], device: torch.device, clock: Callable[[], float]) -> float:
    """Milliseconds for one call; CUDA work is waited for, or only the launch would be timed."""
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    start = clock()
    run()
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    return (clock() - start) * 1000.0


def measure_latency(models: dict[str, nn.Module], size: tuple[int, int], repeats: int = 20, warmup: int = 3,
                    device: torch.device | None = None,
                    clock: Callable[[], float] = time.perf_counter) -> tuple[dict[str, Latency], Setting]:
    """Time each model's `predict` (image in, class map out) on one random (1, 3, H, W) image,
    in its deployable form (distill.models.inference: BatchNorm folded, channels-last).

    Round r times every model once, starting from model r mod M, so no model always runs
    first (right after another model has evicted its weights from the caches).
    """
    device = device or pick_device()
    names = list(models)
    image = torch.rand(1, 3, *size, generator=torch.Generator().manual_seed(0)).to(device)
    runners = {name: make_runner(for_inference(models[name].to(device)), image) for name in names}
    results = {name: Latency() for name in names}
    with torch.inference_mode():
        for r in range(warmup + repeats):
            for k in range(len(names)):
                name = names[(r + k) % len(names)]
                elapsed = time_once(runners[name], device, clock)
                if r >= warmup:
                    results[name].samples_ms.append(elapsed)
    setting = Setting(describe_device(device), torch.get_num_threads(), tuple(size), repeats, warmup)
    return results, setting
