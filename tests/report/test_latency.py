"""Latency bookkeeping: interleaving order, warm-up, median and p90 (no real timings asserted)."""

from __future__ import annotations

import itertools

import torch
from torch import nn

from distill.measure.latency import Latency, measure_latency, paired_ratio


class Recorder(nn.Module):
    """Stands in for a model: records its name in a shared log each time it predicts."""

    def __init__(self, name: str, log: list[str]) -> None:
        super().__init__()
        self.name, self.log = name, log

    def predict(self, images: torch.Tensor) -> torch.Tensor:
        assert images.shape == (1, 3, 8, 12)  # batch 1 at the stated size
        self.log.append(self.name)
        return images.argmax(1)


def test_models_are_timed_round_by_round_in_rotating_order():
    log: list[str] = []
    models = {n: Recorder(n, log) for n in "abc"}
    ticks = itertools.count()  # a fake clock: every reading is one second after the last
    times, setting = measure_latency(models, (8, 12), repeats=2, warmup=1, device=torch.device("cpu"),
                                     clock=lambda: float(next(ticks)))
    # round 0 (warm-up) starts at a, round 1 at b, round 2 at c: no model always runs first
    assert log == ["a", "b", "c", "b", "c", "a", "c", "a", "b"]
    assert {n: t.samples_ms for n, t in times.items()} == {n: [1000.0, 1000.0] for n in "abc"}  # warm-up dropped
    assert (setting.repeats, setting.warmup, setting.size, setting.device) == (2, 1, (8, 12), "cpu")
    assert f"{torch.get_num_threads()} torch thread(s)" in setting.describe()


def test_median_and_nearest_rank_p90():
    # 20 samples 1..20 ms: median (10 + 11) / 2; p90 is the ceil(0.9 * 20) = 18th smallest
    latency = Latency([float(v) for v in range(20, 0, -1)])
    assert latency.median_ms == 10.5
    assert latency.p90_ms == 18.0
    assert Latency([3.0]).p90_ms == 3.0
    # 5 samples: ceil(4.5) = 5th smallest, the maximum
    assert Latency([5.0, 1.0, 4.0, 2.0, 3.0]).p90_ms == 5.0


def test_paired_ratio_cancels_load_that_changes_between_rounds():
    # round 2 ran while the machine was 3x busier: both models slowed alike, the per-round ratio did not change
    candidate, baseline = Latency([11.0, 33.0, 11.0]), Latency([10.0, 30.0, 10.0])
    assert paired_ratio(candidate, baseline) == 1.1
    assert paired_ratio(Latency([12.0, 11.0, 50.0]), Latency([10.0, 10.0, 10.0])) == 1.2  # a lone spike is ignored
