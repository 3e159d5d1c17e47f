"""The ensemble family (distill.models.ensemble): the averages are what the module doc says, each
member sees its own normalisation and inference, classes must agree, feature taps are refused at
load, the cache key follows the member files, and a distillation runs from one end to the other."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F
from helpers import synthetic_data
from rich.console import Console

from distill.cards import load_card
from distill.data.scenes import CLASSES as SCENES
from distill.errors import DistillError
from distill.models import build_model, load_model_file, save_model
from distill.models.cards import TinyConvCard
from distill.models.build import weights_file
from distill.models.ensemble import ensemble_sha256
from distill.recipe import load_recipe
from distill.stages import RunOptions, run_recipe
from distill.stages.dryrun import dry_run
from distill.stages.setup import load_teacher

ROOT = Path(__file__).resolve().parents[2]
ABC = ["a", "b", "c"]
# Member a: two stages (stride 4), ImageNet normalisation; member b: one stage (stride 2), its own
# mean/std and, from its card only, flip inference. An ensemble that normalised for its members, or
# ignored a member card's inference, would give other numbers than the by-hand values below.
MEMBER_A = "family: tinyconv\nname: a\nwidths: [4, 8]\ncheckpoint: {ckpt}\n"
MEMBER_B = ("family: tinyconv\nname: b\nwidths: [6]\ninput_mean: [0.2, 0.3, 0.4]\ninput_std: [0.5, 0.6, 0.7]\n"
            "checkpoint: {ckpt}\ninference: {{flip: true}}\n")


def save_member(folder: Path, text: str, name: str, classes: list[str], seed: int) -> None:
    """A tinyconv card and a file of its random weights (BN statistics made non-trivial)."""
    (folder / f"{name}.yaml").write_text(text.format(ckpt=folder / f"{name}.safetensors"))
    torch.manual_seed(seed)
    card = load_card(folder / f"{name}.yaml").model_copy(update={"inference": TinyConvCard(name="x").inference})
    model = build_model(card, len(classes), classes)
    model.train()(torch.rand(4, 3, 32, 48))  # move the BN running statistics off 0/1
    save_model(model, folder / f"{name}.safetensors", {})


def project(folder: Path, combine: str = "mean_prob", classes_b: list[str] = ABC) -> Path:
    save_member(folder, MEMBER_A, "a", ABC, seed=1)
    save_member(folder, MEMBER_B, "b", classes_b, seed=2)
    (folder / "ens.yaml").write_text(f"family: ensemble\nname: ens\nmembers: [a.yaml, b.yaml]\ncombine: {combine}\n")
    return folder / "ens.yaml"


def members_by_hand(folder: Path, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Each member alone, as load_teacher loads it (file + its card's runtime settings), in eval
    mode: a at stride 4 resized to b's stride-2 grid; b as the mean of x and its mirror."""
    a = load_model_file(folder / "a.safetensors")[0].eval()
    b = load_model_file(folder / "b.safetensors")[0].eval()
    with torch.no_grad():
        la = F.interpolate(a(x).logits, size=(16, 24), mode="bilinear", align_corners=False)  # (N, 3, 16, 24)
        plain_b = b.forward_single(x).logits
        flipped_b = b.forward_single(x.flip(-1)).logits.flip(-1)
    assert not torch.allclose(plain_b, flipped_b, atol=1e-3)  # so the flip is visible in the result
    lb = torch.log((plain_b.softmax(1) + flipped_b.softmax(1)) / 2)  # b's card: mean softmax of x and its mirror
    return la, lb


@pytest.mark.parametrize("combine", ["mean_prob", "mean_logit"])
def test_the_combination_equals_the_members_by_hand(tmp_path, combine):
    model, meta = load_model_file(project(tmp_path, combine))
    x = torch.rand(2, 3, 32, 48, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        got = model(x).logits
    la, lb = members_by_hand(tmp_path, x)
    if combine == "mean_prob":  # log of the mean distribution: softmax(got) is that mean exactly
        expected = torch.log((la.softmax(1) + lb.softmax(1)) / 2)
        assert torch.allclose(got.exp().sum(1), torch.ones(2, 16, 24), atol=1e-5)
    else:
        expected = (la + lb) / 2
    assert got.shape == (2, 3, 16, 24) and model.taps["logits"].stride == 2
    assert torch.allclose(got, expected, atol=1e-5)
    assert meta.classes == ABC and not any(p.requires_grad for p in model.parameters())


def test_members_that_disagree_on_classes_are_one_line_naming_the_card_and_member(tmp_path):
    path = project(tmp_path, classes_b=["a", "b", "x"])
    with pytest.raises(DistillError, match=r"ens.yaml: members\[1\]: expected the classes of members\[0\] \(\['a', 'b', 'c'\]\), "
                                           r"got \['a', 'b', 'x'\]"):
        load_model_file(path)
    (tmp_path / "b.yaml").write_text((tmp_path / "b.yaml").read_text() + "num_classes: 4\n")  # stated by the cards: at load
    (tmp_path / "a.yaml").write_text((tmp_path / "a.yaml").read_text() + "num_classes: 3\n")
    with pytest.raises(DistillError, match=r"ens.yaml:\d+: members\[1\]: expected the classes of members\[0\] \(3\), got 4"):
        load_card(path)


def recipe_over(folder: Path, teacher: str, losses: str, extra: str = "") -> Path:
    (folder / "student.yaml").write_text("family: tinyconv\nname: student\nwidths: [8, 16]\n")
    (folder / "r.yaml").write_text(f"name: r\nteacher: {teacher}\nstudent: student.yaml\ndata: {synthetic_data(8)}\n"
                                   f"losses:\n{losses}{extra}train: {{iterations: 3, lr: 0.01, eval_every: 0, log_every: 1}}\n")
    return folder / "r.yaml"


def test_the_data_set_classes_and_feature_taps_are_checked(tmp_path):
    path = recipe_over(tmp_path, str(project(tmp_path)), "  - {name: ce}\n  - {name: kd}\n")
    with pytest.raises(DistillError, match=r"ens.yaml: members: expected the data set's 8 classes \['sky'.*got \['a', 'b', 'c'\]"):
        load_teacher(load_recipe(path), "main", list(SCENES))
    feature = recipe_over(tmp_path, "ens.yaml", "  - {name: ce}\n  - {name: ifvd, feature: stage2}\n")
    with pytest.raises(DistillError, match=r"r.yaml:\d+: losses\[1\]: expected a loss reading only logits of teacher main "
                                           r"\(ensemble card .*ens.yaml: feature losses need a card teacher\), got <tap stage2>"):
        load_recipe(feature)
    model = load_model_file(tmp_path / "ens.yaml")[0]
    with pytest.raises(DistillError, match="feature losses need a card teacher"):
        model(torch.rand(1, 3, 32, 32), taps=("stage1",))


def test_an_ensemble_card_trains_nothing_and_normalises_nothing_itself(tmp_path):
    project(tmp_path)
    for extra, match in [("train: {train: {iterations: 1, lr: 0.1}}\n", "never trained"),
                         ("input_mean: [0.5, 0.5, 0.5]\n", "on each member's card"), ("members: [a.yaml]\n", "at least 2")]:
        text = "family: ensemble\nname: e\n" + extra + ("members: [a.yaml, b.yaml]\n" if "members" not in extra else "")
        (tmp_path / "e.yaml").write_text(text)
        with pytest.raises(DistillError, match=match):
            load_card(tmp_path / "e.yaml")
    student = recipe_over(tmp_path, str(tmp_path / "a.yaml"), "  - {name: ce}\n").read_text().replace("student.yaml", "ens.yaml")
    (tmp_path / "r.yaml").write_text(student)
    with pytest.raises(DistillError, match=r"ens.yaml: family: expected a family that trains"):
        load_recipe(tmp_path / "r.yaml")


def test_the_cache_hash_covers_every_member_file_and_member_settings(tmp_path):
    card = load_card(project(tmp_path))
    before = ensemble_sha256(card)
    assert before == ensemble_sha256(load_card(tmp_path / "ens.yaml"))
    save_member(tmp_path, MEMBER_B, "b", ABC, seed=3)  # member b retrained
    retrained = ensemble_sha256(card)
    (tmp_path / "b.yaml").write_text((tmp_path / "b.yaml").read_text().replace("{flip: true}", "{flip: false}"))
    assert len({before, retrained, ensemble_sha256(card)}) == 3


def test_the_shipped_example_has_both_zoo_members(monkeypatch):
    monkeypatch.chdir(ROOT)
    card = load_card("teachers/camvid_ensemble_v2.yaml")
    assert [Path(m).name for m in card.members] == ["camvid_deeplabv3plus_lite2_v2.yaml", "camvid_deeplabv3plus_lite2_v2s2.yaml"]
    assert all(weights_file(load_card(m)).is_file() for m in card.members) and card.num_classes == 11
    model, meta = load_model_file("teachers/camvid_ensemble_v2.yaml")
    assert len(meta.classes) == 11 and model.taps["logits"].stride == 4
    fresh = build_model(card, 11, load_pretrained=False).train()  # as tests/models/test_models.py builds every card
    assert fresh(torch.rand(1, 3, 64, 96)).logits.shape == (1, 11, 16, 24)


def test_a_distillation_from_an_ensemble_runs_and_its_dry_run_lists_it(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    save_member(tmp_path, MEMBER_A, "a", list(SCENES), seed=1)
    save_member(tmp_path, MEMBER_B, "b", list(SCENES), seed=2)
    (tmp_path / "ens.yaml").write_text("family: ensemble\nname: ens\nmembers: [a.yaml, b.yaml]\n")
    path = recipe_over(tmp_path, "ens.yaml", "  - {name: ce}\n  - {name: kd, tau: 2.0}\n")
    console = Console(record=True, width=300)
    dry_run(load_recipe(path), RunOptions(run_dir=tmp_path / "dry"), console)
    text = console.export_text()
    assert "train_teacher main: ens.yaml exists, nothing to train" in text and "ensemble" in text
    summary = run_recipe(load_recipe(path), RunOptions(run_dir=tmp_path / "run"), Console(quiet=True))
    steps = [json.loads(line) for line in (summary.run_dir / "log.jsonl").read_text().splitlines()]
    kd = [r["kd"] for r in steps if "kd" in r]
    assert len(kd) == 3 and all(0 < v < 100 for v in kd)
    assert 0 <= json.loads((summary.run_dir / "metrics.json").read_text())["miou"] <= 100


def test_distill_eval_scores_an_ensemble_card_as_its_members_would(tmp_path):
    """An ensemble of one member twice predicts what that member does, so `distill eval` of the
    card (distill.engine.scoring) gives the member file's own figures; wrong classes are refused."""
    from distill.engine.scoring import score_model_file

    save_member(tmp_path, MEMBER_A, "a", list(SCENES), seed=1)
    (tmp_path / "twice.yaml").write_text("family: ensemble\nname: twice\nmembers: [a.yaml, a.yaml]\ncombine: mean_logit\n")
    options = {"num_images": 4, "size": [48, 64]}
    alone = score_model_file(tmp_path / "a.safetensors", "synthetic", None, "val", options=options)
    twice = score_model_file(tmp_path / "twice.yaml", "synthetic", None, "val", options=options)
    assert twice["miou"] == pytest.approx(alone["miou"], abs=1e-6) and twice["pixel_acc"] == pytest.approx(alone["pixel_acc"], abs=1e-6)
    save_member(tmp_path, MEMBER_A, "c", ABC, seed=1)
    (tmp_path / "abc.yaml").write_text("family: ensemble\nname: abc\nmembers: [c.yaml, c.yaml]\n")
    with pytest.raises(DistillError, match="abc.yaml.*classes"):
        score_model_file(tmp_path / "abc.yaml", "synthetic", None, "val", options=options)
