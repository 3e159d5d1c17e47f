"""The onnx family (distill.models.onnx_teacher): a graph exported from one of our models teaches
as the model does, it is fed at its own size and scale, its card is checked against the graph and
the data set, and a distillation runs through the teacher-output cache."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F
from helpers import synthetic_data
from rich.console import Console

from distill.cards import load_card
from distill.data.scenes import CLASSES as SCENES
from distill.errors import DistillError
from distill.losses import LOSSES
from distill.models import build_model, load_model_file, save_model
from distill.models.cards import TinyConvCard
from distill.outputs import PairView
from distill.recipe import load_recipe
from distill.stages import RunOptions, run_recipe
from distill.stages.dryrun import dry_run
from distill.stages.setup import load_teacher

pytest.importorskip("onnxruntime")
pytest.importorskip("onnx")
ABC = ["a", "b", "c"]
SIZE = (32, 48)  # the export size: the graph's input_size


def export_tiny(folder: Path, classes: list[str], size: tuple[int, int]) -> Path:
    """A random tinyconv (stride 4, ImageNet normalisation) as a model file and as its ONNX export,
    which takes RGB in [0, 1], normalises inside, and is fixed to batch 1 at `size`."""
    from distill.export.onnx import export_onnx

    torch.manual_seed(0)
    model = build_model(TinyConvCard(name="t", widths=[4, 8]), len(classes), classes)
    model.train()(torch.rand(4, 3, *size))  # move the BN running statistics off 0/1
    save_model(model, folder / "t.safetensors", {})
    export_onnx(folder / "t.safetensors", folder / "t.onnx", size=size, repeats=0)
    return folder / "t.onnx"


def onnx_card(folder: Path, classes: list[str], size: tuple[int, int] = SIZE, extra: str = "",
              norm: str = "input_mean: [0, 0, 0]\ninput_std: [1, 1, 1]\n") -> Path:
    (folder / "onnx.yaml").write_text(f"family: onnx\nname: graph\nfile: {folder / 't.onnx'}\ninput_size: {list(size)}\n"
                                      f"{norm}classes: {json.dumps(classes)}\n{extra}")
    return folder / "onnx.yaml"


@pytest.fixture(scope="module")
def exported(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("onnx")
    export_tiny(folder, ABC, SIZE)
    return folder


def test_the_graph_gives_the_card_teachers_kd_loss(exported):
    """KD (tau 2) of a student against the ONNX teacher equals KD against the model it was exported from.

    Tolerance: the export's own parity check allows 1e-3 x max(1, max |logit|); float32 CNNs agree
    to about 1e-5 (distill.export.onnx). KL at temperature tau changes by at most about
    tau * max |dz| per pixel when the teacher logits z move by dz, so 1e-4 on logits bounds the
    loss change by 2e-4 (and a wrong normalisation or resize moves logits by ~0.1 or more)."""
    card_teacher = load_model_file(exported / "t.safetensors")[0].eval()
    onnx_teacher, meta = load_model_file(onnx_card(exported, ABC))
    assert meta.classes == ABC and onnx_teacher.taps["logits"].stride == 4
    x = torch.rand(2, 3, *SIZE, generator=torch.Generator().manual_seed(1))  # batch 2 through a batch-1 graph
    torch.manual_seed(2)
    student = build_model(TinyConvCard(name="s", widths=[4]), 3, ABC).eval()
    with torch.no_grad():
        t_card, t_onnx, s_out = card_teacher(x), onnx_teacher(x), student(x)
    assert (t_onnx.logits - t_card.logits).abs().max() < 1e-4
    kd = LOSSES.get("kd")(tau=2.0)
    expected, got = kd(PairView.single(s_out, t_card, None)), kd(PairView.single(s_out, t_onnx, None))
    assert expected > 0.01 and got.item() == pytest.approx(expected.item(), abs=2e-4)


def test_an_image_of_another_size_is_resized_to_the_graph_and_its_logits_back(exported):
    card_teacher = load_model_file(exported / "t.safetensors")[0].eval()
    onnx_teacher = load_model_file(onnx_card(exported, ABC))[0]
    x = torch.rand(1, 3, 48, 70, generator=torch.Generator().manual_seed(3))
    with torch.no_grad():
        got = onnx_teacher(x).logits
        at_size = card_teacher(F.interpolate(x, size=SIZE, mode="bilinear", align_corners=False)).logits
    assert got.shape == (1, 3, 12, 18)  # ceil(48 / 4) x ceil(70 / 4): stride 4 of the image given
    assert torch.allclose(got, F.interpolate(at_size, size=(12, 18), mode="bilinear", align_corners=False), atol=1e-4)


def test_input_scale_255_feeds_the_graph_pixels_in_its_own_units(exported):
    """(x * 255 - 0) / 255 is x again: the same logits; without the scale they would be 255 x off."""
    plain = load_model_file(onnx_card(exported, ABC))[0]
    scaled = load_model_file(onnx_card(exported, ABC, extra="input_scale: 255\n",
                                      norm="input_mean: [0, 0, 0]\ninput_std: [255, 255, 255]\n"))[0]
    x = torch.rand(1, 3, *SIZE)
    assert torch.allclose(plain(x).logits, scaled(x).logits, atol=1e-5)


def test_classes_and_size_are_checked_against_the_graph_and_the_data_set(exported, tmp_path):
    with pytest.raises(DistillError, match=r"onnx.yaml: classes: expected 3 names \(the graph's output logits has 3 channels\), "
                                           r"got <2 names>"):
        load_model_file(onnx_card(exported, ["a", "b"]))
    with pytest.raises(DistillError, match=r"onnx.yaml: input_size: expected the graph's input size \[32, 48\], got \[40, 48\]"):
        load_model_file(onnx_card(exported, ABC, size=(40, 48)))
    (tmp_path / "student.yaml").write_text("family: tinyconv\nname: s\nwidths: [8]\n")
    (tmp_path / "r.yaml").write_text(f"name: r\nteacher: {onnx_card(exported, ABC)}\nstudent: student.yaml\n"
                                     f"data: {synthetic_data(8)}\nlosses: [{{name: kd}}]\ntrain: {{iterations: 1, lr: 0.1}}\n")
    with pytest.raises(DistillError, match=r"onnx.yaml: classes: expected the data set's 8 classes \['sky'.*got \['a', 'b', 'c'\]"):
        load_teacher(load_recipe(tmp_path / "r.yaml"), "main", list(SCENES))
    (tmp_path / "r.yaml").write_text((tmp_path / "r.yaml").read_text().replace("{name: kd}", "{name: ifvd, feature: stage1}"))
    with pytest.raises(DistillError, match=r"r.yaml:\d+: losses\[0\]: expected a loss reading only logits of teacher main "
                                           r"\(onnx card .*onnx.yaml: feature losses need a card teacher\), got <tap stage1>"):
        load_recipe(tmp_path / "r.yaml")


def test_a_missing_file_a_train_block_and_a_missing_onnxruntime_are_one_line(exported, tmp_path, monkeypatch):
    (tmp_path / "t.onnx").write_bytes((exported / "t.onnx").read_bytes())
    missing = onnx_card(tmp_path, ABC).read_text().replace("t.onnx", "gone.onnx")
    (tmp_path / "onnx.yaml").write_text(missing)
    with pytest.raises(DistillError, match=r"onnx.yaml:3: file: expected an existing .onnx file \(relative to the working "
                                           r"directory\), got '.*gone.onnx'"):
        load_card(tmp_path / "onnx.yaml")
    onnx_card(tmp_path, ABC, extra="train: {train: {iterations: 1, lr: 0.1}}\n")
    with pytest.raises(DistillError, match="never trained"):
        load_card(tmp_path / "onnx.yaml")
    monkeypatch.setitem(sys.modules, "onnxruntime", None)  # `import onnxruntime` now raises ImportError
    with pytest.raises(DistillError, match=r"onnx.yaml: family: expected onnxruntime for an onnx teacher "
                                           r"\(pip install distill\[export\]\), got <not installed>"):
        load_model_file(onnx_card(tmp_path, ABC))


def test_an_onnx_graph_is_an_ensemble_member_beside_the_card_it_came_from(exported):
    """mean_logit of the model and its own export is the model's logits (to the export's 1e-4)."""
    (exported / "card.yaml").write_text(f"family: tinyconv\nname: t\nwidths: [4, 8]\ncheckpoint: {exported / 't.safetensors'}\n")
    onnx_card(exported, ABC)
    (exported / "ens.yaml").write_text("family: ensemble\nname: e\nmembers: [card.yaml, onnx.yaml]\ncombine: mean_logit\n")
    ensemble = load_model_file(exported / "ens.yaml")[0]
    x = torch.rand(1, 3, *SIZE)
    with torch.no_grad():
        assert (ensemble(x).logits - load_model_file(exported / "t.safetensors")[0].eval()(x).logits).abs().max() < 1e-4


def test_a_distillation_through_the_teacher_cache_and_its_dry_run(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    export_tiny(tmp_path, list(SCENES), (48, 64))  # the synthetic images' size
    onnx_card(tmp_path, list(SCENES), size=(48, 64))
    (tmp_path / "student.yaml").write_text("family: tinyconv\nname: s\nwidths: [8, 16]\n")
    data = synthetic_data(8).replace("workers: 0", "workers: 0, photometric: false")  # the cache holds un-jittered outputs
    (tmp_path / "r.yaml").write_text(f"name: r\nteacher: onnx.yaml\nstudent: student.yaml\ndata: {data}\n"
                                     "losses:\n  - {name: ce}\n  - {name: kd, tau: 2.0}\nteacher_cache: {dir: cache}\n"
                                     "train: {iterations: 3, lr: 0.01, eval_every: 0, log_every: 1}\n")
    console = Console(record=True, width=300)
    dry_run(load_recipe(tmp_path / "r.yaml"), RunOptions(run_dir=tmp_path / "dry"), console)
    assert "0 of 8 images cached; builds 8 before training" in console.export_text()
    summary = run_recipe(load_recipe(tmp_path / "r.yaml"), RunOptions(run_dir=tmp_path / "run"), Console(quiet=True))
    folders = list((tmp_path / "cache").iterdir())
    assert len(folders) == 1 and folders[0].name.startswith("graph-synthetic-train-")
    assert len(list(folders[0].glob("*.safetensors"))) == 8
    kd = [json.loads(line).get("kd") for line in (summary.run_dir / "log.jsonl").read_text().splitlines()]
    assert len([v for v in kd if v is not None]) == 3 and all(0 < v < 100 for v in kd if v is not None)
