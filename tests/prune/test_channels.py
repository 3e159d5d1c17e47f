"""Channel pruning with torch-pruning: what is kept whole, the importance criteria, when it stops."""

from __future__ import annotations

import copy

import pytest
import torch
import torch.nn.functional as F
from prune_helpers import params, tiny_model

from distill.errors import DistillError
from distill.prune import channels
from distill.prune.channels import build_pruner, ignored_layers, prune_model
from distill.measure.latency import Latency, Setting
from distill.specs import PruneSpec

SIZE = (64, 64)


def classifiers(model) -> dict[str, torch.nn.Conv2d]:
    return {name: m for name, m in model.named_modules() if name.endswith("classifier")}


def batches(count: int = 2) -> list[dict[str, torch.Tensor]]:
    g = torch.Generator().manual_seed(1)
    return [{"image": torch.rand(2, 3, *SIZE, generator=g), "label": torch.randint(0, 3, (2, *SIZE), generator=g)}
            for _ in range(count)]


def ce(model, batch) -> torch.Tensor:
    logits = model(batch["image"]).logits
    logits = F.interpolate(logits, size=batch["label"].shape[-2:], mode="bilinear", align_corners=False)
    return F.cross_entropy(logits, batch["label"])


@pytest.mark.parametrize("arch", ["lraspp", "deeplabv3plus", "fcn"])
def test_classifiers_keep_the_classes_and_params_drop(arch):
    model = tiny_model(arch)
    before = params(model)
    report = prune_model(model, PruneSpec(ratio=0.5), SIZE)
    assert classifiers(model) and all(m.out_channels == 3 for m in classifiers(model).values())
    with torch.no_grad():
        assert model.eval()(torch.rand(1, 3, *SIZE)).logits.shape[1] == 3
    ratio = params(model) / before
    # measured: lraspp 249158 / 945598 = 0.263; channel ratio 0.5 leaves about a quarter of the weights
    # (both in- and out-channels of most convs halve), the untouched classifiers and biases a little more
    assert 0.15 < ratio < 0.5, ratio
    assert report.before.params == before and report.after.params == params(model)
    assert report.after.gflops < report.before.gflops
    assert report.target_met is None and len(report.steps) == 1 and report.steps[0].ratio == 0.5


def test_ignored_layers_are_the_classifiers_plus_the_named_modules():
    model = tiny_model()
    names = {id(m): n for n, m in model.named_modules()}
    assert [names[id(m)] for m in ignored_layers(model, [])] == ["head.low_classifier", "head.high_classifier"]
    assert [names[id(m)] for m in ignored_layers(model, ["head.cbr"])][-1] == "head.cbr"


def test_building_the_pruner_keeps_batchnorm_statistics_and_mode():
    model = tiny_model("deeplabv3plus", aux_head=True)
    model.train()
    with torch.no_grad():  # give the running statistics values other than their 0 / 1 defaults
        for batch in batches():
            model(batch["image"])
    model.eval()
    stats = {k: v.clone() for k, v in model.state_dict().items() if "running_" in k or "num_batches" in k}
    assert stats and not all(torch.equal(v, torch.zeros_like(v)) for k, v in stats.items() if "running_mean" in k)
    build_pruner(model, PruneSpec(ratio=0.5), SIZE)
    assert model.training is False
    after = model.state_dict()
    for key, value in stats.items():
        assert torch.equal(after[key], value), key


@pytest.mark.parametrize("importance", ["magnitude", "group_norm", "taylor"])
def test_every_importance_prunes(importance):
    model = tiny_model()
    before = params(model)
    report = prune_model(model, PruneSpec(ratio=0.5, importance=importance), SIZE,
                         gradient_batches=lambda: iter(batches()), loss_fn=ce)
    assert params(model) < before and report.after.params == params(model)
    assert all(p.grad is None for p in model.parameters())  # taylor's gradients are not left behind


def test_taylor_without_training_data_is_refused():
    model = tiny_model()
    before = copy.deepcopy(model.state_dict())
    with pytest.raises(DistillError) as caught:
        prune_model(model, PruneSpec(ratio=0.5, importance="taylor"), SIZE, file="r.yaml")
    assert "prune.importance" in str(caught.value) and "r.yaml" in str(caught.value)
    assert all(torch.equal(v, before[k]) for k, v in model.state_dict().items())  # refused before any surgery


def test_taylor_ranks_channels_differently_from_magnitude():
    """Same start, same per-layer ratio, so the same shapes: any differing tensor means another kept channel."""
    base = tiny_model()
    by_magnitude, by_taylor = copy.deepcopy(base), copy.deepcopy(base)
    prune_model(by_magnitude, PruneSpec(ratio=0.5, importance="magnitude"), SIZE)
    prune_model(by_taylor, PruneSpec(ratio=0.5, importance="taylor"), SIZE,
                gradient_batches=lambda: iter(batches()), loss_fn=ce)
    a, b = by_magnitude.state_dict(), by_taylor.state_dict()
    assert a.keys() == b.keys() and all(a[k].shape == b[k].shape for k in a)
    weights = [k for k in a if k.endswith(".weight") and a[k].dim() == 4]
    assert any(not torch.equal(a[k], b[k]) for k in weights)


def test_ignore_names_must_exist_and_keep_their_channels():
    model = tiny_model()
    with pytest.raises(DistillError) as caught:
        prune_model(model, PruneSpec(ratio=0.5, ignore=["head.nope"]), SIZE, file="r.yaml")
    assert "prune.ignore" in str(caught.value) and "head.nope" in str(caught.value)

    pruned_whole = tiny_model()
    prune_model(pruned_whole, PruneSpec(ratio=0.5), SIZE)
    kept = tiny_model()
    prune_model(kept, PruneSpec(ratio=0.5, ignore=["head.cbr.0"]), SIZE)
    assert pruned_whole.head.cbr[0].out_channels == 8  # without ignore: 16 -> 8
    assert kept.head.cbr[0].out_channels == 16 and kept.taps["head"].channels == 16
    assert kept.head.cbr[0].in_channels == 288  # its inputs belong to the backbone's groups and are pruned
    assert params(kept) > params(pruned_whole)


def test_gflops_target_stops_at_the_first_step_that_meets_it():
    model = tiny_model()
    report = prune_model(model, PruneSpec(ratio=0.8, target_gflops_ratio=0.5, steps=8), SIZE)
    ratios = [s.gflops / report.before.gflops for s in report.steps]
    assert len(report.steps) < 8 and report.target_met is True
    assert ratios[-1] <= 0.5 < ratios[-2]  # measured: 0.71, 0.59, 0.48 -> stops at step 3 (ratio 0.3)
    assert [round(s.ratio, 6) for s in report.steps] == [round(0.1 * k, 6) for k in range(1, len(report.steps) + 1)]
    assert report.after.params == params(model) and report.after.latency_ratio is None


def fake_latency(calls: list):
    """measure_latency stand-in: every sample is the model's parameter count (in millions), so the paired
    latency ratio is exactly the params ratio; nothing is timed."""
    def measure_latency(models, size, repeats=20, **_):
        calls.append({name: params(m) for name, m in models.items()})
        times = {name: Latency([params(m) / 1e6] * repeats) for name, m in models.items()}
        return times, Setting("fake", 1, tuple(size), repeats, 0)
    return measure_latency


def test_latency_target_stops_at_the_first_step_whose_latency_ratio_meets_it(monkeypatch):
    calls: list[dict[str, int]] = []
    monkeypatch.setattr(channels, "measure_latency", fake_latency(calls))
    model = tiny_model()
    report = prune_model(model, PruneSpec(ratio=0.8, target_latency_ratio=0.3, steps=8), SIZE)
    by_params = [s.params / report.before.params for s in report.steps]
    assert report.target_met is True
    assert [s.latency_ratio for s in report.steps] == pytest.approx(by_params)
    assert by_params[-1] <= 0.3 and all(r > 0.3 for r in by_params[:-1])
    assert len(report.steps) == 5  # measured params ratios 0.76, 0.61, 0.47, 0.35, 0.26
    assert report.before.latency_ratio == 1.0
    assert len(calls) == 1 + len(report.steps)  # once unpruned, then once per step
    assert {c["unpruned"] for c in calls} == {report.before.params}  # the reference is a copy, never pruned
    assert [c["pruned"] for c in calls[1:]] == [s.params for s in report.steps]


def test_latency_and_gflops_targets_must_both_be_met(monkeypatch):
    monkeypatch.setattr(channels, "measure_latency", fake_latency([]))
    report = prune_model(tiny_model(), PruneSpec(ratio=0.8, target_latency_ratio=0.3, target_gflops_ratio=0.5, steps=8),
                         SIZE)
    # GFLOPs alone would stop at step 3 (above), the latency ratio (params ratio here) only at step 5
    assert len(report.steps) == 5 and report.target_met is True


def test_unreachable_target_runs_every_step_and_says_so():
    model = tiny_model()
    spec = PruneSpec(ratio=0.3, target_gflops_ratio=0.01)
    report = prune_model(model, spec, SIZE)
    assert spec.step_count == 10 and len(report.steps) == 10
    assert report.target_met is False
    assert report.after.ratio == pytest.approx(0.3)
    assert report.as_dict()["target_met"] is False and len(report.as_dict()["steps"]) == 10


def test_between_steps_runs_after_every_step_but_the_last():
    model = tiny_model()
    seen: list[tuple[int, int]] = []
    report = prune_model(model, PruneSpec(ratio=0.5, steps=4), SIZE,
                         between_steps=lambda m, k: seen.append((k, params(m))))
    assert [k for k, _ in seen] == [1, 2, 3]
    assert [n for _, n in seen] == [s.params for s in report.steps[:3]]  # called on the model as pruned so far
    messages: list[str] = []
    calls: list[int] = []
    stopped = prune_model(tiny_model(), PruneSpec(ratio=0.8, target_gflops_ratio=0.5, steps=8), SIZE,
                          between_steps=lambda m, k: calls.append(k), progress=messages.append)
    assert calls == list(range(1, len(stopped.steps)))  # not after the step that met the target
    assert len(messages) == len(stopped.steps) and messages[0].startswith("prune step 1/8: ratio 0.10")


@pytest.mark.skipif(not torch.cuda.is_available(), reason="the device move happens only where a GPU is picked")
def test_latency_target_on_a_gpu_machine_completes(monkeypatch):
    real = channels.measure_latency  # real timing, minimal and never asserted on: only the device handling matters
    monkeypatch.setattr(channels, "measure_latency", lambda models, size, repeats=20, **_: real(models, size, 1, 0))
    model = tiny_model()
    report = prune_model(model, PruneSpec(ratio=0.5, target_latency_ratio=0.99, steps=2), SIZE)
    assert report.steps and all(s.latency_ratio is not None for s in report.steps)
