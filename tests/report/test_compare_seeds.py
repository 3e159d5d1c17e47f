"""`distill compare` groups seeds: runs whose recipes differ only in seed are one row (mean, min–max).

The runs are made here, not trained: one tiny untrained model file copied into four run folders,
each with its own metrics.json and recipe.resolved.yaml, so the figures are known exactly and
the whole file takes seconds.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
import yaml
from helpers import BACKBONE
from rich.console import Console

from distill.report.compare import build_comparison
from distill.report.groups import group_name, seeds_text
from distill.report.html import render_html
from distill.report.tables import markdown, rich_table, to_json

RECIPE = {"name": "kd", "student": "student.yaml", "data": {"name": "synthetic", "crop_size": [48, 64]},
          "losses": [{"name": "ce"}, {"name": "kd", "tau": 2.0}], "train": {"iterations": 40, "lr": 0.05}}
# name -> (train.seed, lr, mIoU, boundary IoU)
RUNS = {"kd_s0": (0, 0.05, 60.0, 40.0), "kd_s1": (1, 0.05, 61.5, 42.0), "kd_s2": (2, 0.05, 63.0, 41.0),
        "kd_lr01": (0, 0.1, 58.0, 39.0)}


@pytest.fixture(scope="module")
def model_file(tmp_path_factory) -> Path:
    """One untrained tiny student, written by distill's own writer (the metrics come from metrics.json)."""
    from distill.cards import card_from_dict
    from distill.models import build_model, save_model

    card = card_from_dict({"name": "tiny", "arch": "lraspp", "backbone": BACKBONE, "head_channels": 8}, "test")
    path = tmp_path_factory.mktemp("model") / "student.safetensors"
    save_model(build_model(card, 3, ["sky", "road", "pole"], load_pretrained=False), path, {"losses": ["ce", "kd"]})
    return path


def make_run(runs: Path, name: str, seed: int, lr: float, miou: float, boundary: float, model_file: Path) -> Path:
    """A finished run folder as distill writes it: the resolved recipe, metrics.json, the model."""
    from distill.recipe import Recipe

    folder = runs / name
    folder.mkdir(parents=True)
    raw = {**RECIPE, "name": name, "train": {**RECIPE["train"], "lr": lr, "seed": seed}}
    (folder / "recipe.resolved.yaml").write_text(yaml.safe_dump(Recipe.model_validate(raw).model_dump(mode="json")))
    metrics = {"miou": miou, "pixel_acc": 90.0, "boundary_iou": boundary, "trimap_iou": boundary + 5,
               "per_class_iou": {"sky": miou + 20, "road": miou, "pole": None}, "dataset": "synthetic", "split": "val",
               "seed": seed}
    (folder / "metrics.json").write_text(json.dumps(metrics))
    shutil.copyfile(model_file, folder / "student.safetensors")
    return folder


@pytest.fixture(scope="module")
def runs(tmp_path_factory, model_file) -> list[Path]:
    """runs/kd_s0, kd_s1, kd_s2 (seeds 0-2 of one recipe) and runs/kd_lr01 (another lr)."""
    root = tmp_path_factory.mktemp("project") / "runs"
    return [make_run(root, name, *values, model_file) for name, values in RUNS.items()]


@pytest.fixture(scope="module")
def comp(runs):
    """The four runs compared as `distill compare` does by default (no latency: these tests are about rows)."""
    return build_comparison(runs, size=(32, 32), repeats=0)


def test_seeds_of_one_recipe_are_one_row_with_mean_and_range(comp):
    assert [e.name for e in comp.entries] == ["kd", "kd_lr01"]
    group, other = comp.entries
    assert [m.name for m in group.members] == ["kd_s0", "kd_s1", "kd_s2"] and group.seeds == [0, 1, 2]
    assert comp.baseline == 0  # the first run's group: Δ is taken against the mean
    rows = to_json(comp)["models"]
    assert rows[0]["miou"] == pytest.approx(61.5)  # (60.0 + 61.5 + 63.0) / 3
    assert rows[0]["spread"]["miou"] == [60.0, 63.0]
    assert rows[0]["boundary_iou"] == pytest.approx(41.0) and rows[0]["spread"]["boundary_iou"] == [40.0, 42.0]
    assert rows[0]["per_class_iou"] == {"sky": pytest.approx(81.5), "road": pytest.approx(61.5), "pole": None}
    assert rows[1]["delta_miou"] == pytest.approx(58.0 - 61.5) and "spread" not in rows[1]
    assert other.members == [] and rows[1]["seeds"] == [0]


def test_json_lists_each_member_with_its_metrics(comp):
    report = json.loads(json.dumps(to_json(comp)))
    members = report["models"][0]["members"]
    assert [(m["name"], m["seeds"], m["miou"]) for m in members] == [
        ("kd_s0", [0], 60.0), ("kd_s1", [1], 61.5), ("kd_s2", [2], 63.0)]
    assert [m["delta_miou"] for m in members] == pytest.approx([-1.5, 0.0, 1.5])  # against the group's mean
    assert members[0]["model_path"].endswith("kd_s0/student.safetensors") and report["models"][0]["model_path"] is None
    assert report["baseline"] == "kd" and "members" not in report["models"][1]


def test_no_group_keeps_one_row_per_run(runs):
    comp = build_comparison(runs, size=(32, 32), repeats=0, group=False)
    assert [e.name for e in comp.entries] == list(RUNS)
    assert not any(e.members for e in comp.entries)
    assert markdown(comp).splitlines()[0].startswith("| model | method | mIoU % |")  # no seeds column


def test_markdown_shows_the_range_and_per_seed_rows_on_request(comp):
    text = markdown(comp)
    assert text.splitlines()[0].startswith("| model | method | seeds | mIoU % | Δ mIoU |")
    assert "| kd | ce+kd | 0,1,2 | **61.50** (60.00–63.00) | baseline |" in text
    assert "| kd_lr01 | ce+kd | 0 | 58.00 | -3.50 |" in text
    assert "Per seed" not in text and "kd_s1" not in text
    detailed = markdown(comp, per_seed=True)
    assert "### Per seed" in detailed and "| kd_s2 | ce+kd | 2 | 63.00 | +1.50 |" in detailed


def test_html_plots_the_group_at_its_mean(comp):
    page = render_html(comp)
    assert page.count("<svg") == 2 and "<details><summary>Per seed" in page
    assert "kd: 61.50 %" in page and "kd_s1: " not in page  # one scatter point, at the mean
    assert "mIoU min–max over seeds (point: their mean)" in page and "kd (mean of 3)" in page  # range bar; bars of the means
    assert '61.50 <span class="spread">(60.00–63.00)</span>' in page


def test_same_recipe_and_seed_twice_is_not_a_group(runs):
    comp = build_comparison([runs[0], runs[0] / "student.safetensors"], size=(32, 32), repeats=0)
    assert [e.name for e in comp.entries] == ["kd_s0", "kd_s0#2"]
    assert any("have one recipe but repeat a seed" in n for n in comp.notes)


def test_a_model_file_outside_a_run_folder_stays_apart(runs, tmp_path):
    loose = tmp_path / "loose.safetensors"
    shutil.copyfile(runs[1] / "student.safetensors", loose)
    comp = build_comparison([*runs[:2], loose], size=(32, 32), repeats=0)
    assert [e.name for e in comp.entries] == ["kd", "loose"] and comp.entries[1].seeds == []


def test_narrow_terminal_puts_the_range_under_the_mean(comp):
    console = Console(width=100)
    with console.capture() as captured:
        console.print(rich_table(comp, 100))
    out = captured.get()
    assert "…" not in out and max(len(line) for line in out.splitlines()) <= 100
    assert "seeds" in out and "0,1,2" in out and "61.50" in out and "(60.00–63.00)" in out


def test_names_and_seed_lists():
    assert group_name(["kd_s0", "kd_s1", "kd_s2"]) == "kd" and group_name(["kd", "kd#2"]) == "kd"
    assert group_name(["kd_seed1", "kd_seed10"]) == "kd" and group_name(["a", "b"]) == "a"
    assert seeds_text([0, 1, 2]) == "0,1,2" and seeds_text(list(range(10))) == "0–9" and seeds_text([]) == "-"


def test_cli_groups_by_default_and_no_group_opts_out(runs, tmp_path):
    """The typer command in-process (a subprocess would spend its time importing torch)."""
    from typer.testing import CliRunner

    from distill.cli import app

    args = ["compare", *[str(r) for r in runs], "--size", "32", "32", "--repeats", "0"]
    grouped = CliRunner().invoke(app, [*args, "--format", "json"])
    assert grouped.exit_code == 0, grouped.output
    assert [m["name"] for m in json.loads(grouped.stdout)["models"]] == ["kd", "kd_lr01"]
    out = tmp_path / "r.json"
    apart = CliRunner().invoke(app, [*args, "--no-group", "--out", str(out)])
    assert apart.exit_code == 0, apart.output
    assert [m["name"] for m in json.loads(out.read_text())["models"]] == list(RUNS)
    assert "0,1,2" not in apart.stdout and "kd_s1" in apart.stdout  # the terminal table: a row per run
