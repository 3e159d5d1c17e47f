"""An MGD recipe end to end on tiny models (seconds): two teachers trained first on the labeled part
only, then labeled + two unlabeled views per step, CutMix, every MGD term; no unlabeled label is
ever read (the training split fails on any such read), and the run folder records the partition."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest
import torch
from rich.console import Console

from distill.data import DATASETS, build_dataset, make_labeled_split
from distill.errors import DistillError
from distill.recipe import load_recipe
from distill.stages import RunOptions, run_recipe

NUM, FRACTION = 12, "1/4"  # 3 labeled, 9 unlabeled training images


class LabelTrap:
    """Synthetic training images whose labels outside the labeled subset must never be read."""

    def __init__(self, split: str) -> None:
        self.inner = build_dataset("synthetic", None, split, {"num_images": NUM, "size": [32, 48]})
        self.classes, self.name, self.split = self.inner.classes, "trap", split
        self.forbidden = set(make_labeled_split(NUM, FRACTION, seed=0)[1]) if split == "train" else set()

    def __len__(self) -> int:
        return NUM

    def stem(self, index: int) -> str:
        return self.inner.stem(index)

    def read_image(self, index: int):
        return self.inner.read_image(index)

    def __getitem__(self, index: int) -> dict:
        if index in self.forbidden:
            raise AssertionError(f"the label of unlabeled training image {index} was read")
        return self.inner[index]


@pytest.fixture(autouse=True)
def one_thread():
    """Tiny models run several times faster on one thread than on two contended ones."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(autouse=True)
def trap_dataset():
    DATASETS.register("test_label_trap")(lambda root, split: LabelTrap(split))
    yield
    DATASETS.remove("test_label_trap")


DATA = "{name: test_label_trap, crop_size: [32, 48], eval_size: [32, 48], batch_size: 2, workers: 0, labeled_fraction: 1/4"


def teacher_card(name: str, widths: str, folder: Path) -> str:
    return (f"family: tinyconv\nname: {name}\nwidths: {widths}\ncheckpoint: {folder / name}.safetensors\n"
            f"train:\n  data: {DATA}}}\n  train: {{iterations: 2, lr: 0.01}}\n")


RECIPE = f"""\
name: tiny_mgd
teachers: {{deep: deep.yaml, wide: wide.yaml}}
student: student.yaml
data: {DATA}, unlabeled_views: [unlabeled0, unlabeled1]}}
batch_transforms:
  - {{name: cutmix, sources: [unlabeled0, unlabeled1], view: mixed}}
losses:
  - {{name: ce}}
  - {{name: mgd.pixel, view: labeled, teacher: wide}}
  - {{name: mgd.pixel, view: labeled, teacher: deep}}
  - {{name: mgd.pixel, view: mixed, teacher: wide, mixed_from: [unlabeled0, unlabeled1]}}
  - {{name: mgd.pixel, view: mixed, teacher: deep, mixed_from: [unlabeled0, unlabeled1]}}
  - {{name: mgd.image, view: mixed, teacher: deep}}
  - {{name: mgd.region, view: mixed, teacher: wide, feature: stage2, grid: 2}}
train: {{iterations: 3, lr: 0.01, log_every: 1}}
"""


def write_project(tmp_path: Path, recipe: str = RECIPE) -> Path:
    (tmp_path / "deep.yaml").write_text(teacher_card("deep_t", "[8, 16, 16]", tmp_path))
    (tmp_path / "wide.yaml").write_text(teacher_card("wide_t", "[24, 24]", tmp_path))
    (tmp_path / "student.yaml").write_text("family: tinyconv\nname: student\nwidths: [8, 8]\n")
    (tmp_path / "mgd.yaml").write_text(recipe)
    return tmp_path / "mgd.yaml"


def test_mgd_recipe_runs_end_to_end_without_reading_an_unlabeled_label(tmp_path):
    summary = run_recipe(load_recipe(write_project(tmp_path)), RunOptions(run_dir=tmp_path / "run"), Console(quiet=True))
    run = summary.run_dir
    labeled, unlabeled = (run / "labeled.txt").read_text().split(), (run / "unlabeled.txt").read_text().split()
    assert (len(labeled), len(unlabeled)) == (3, 9) and set(labeled).isdisjoint(unlabeled)
    for teacher in ("deep", "wide"):  # trained first, on the same labeled images only
        assert (tmp_path / f"{teacher}_t.safetensors").is_file()
        assert (run / f"teacher-{teacher}" / "labeled.txt").read_text().split() == labeled
        assert not (run / f"teacher-{teacher}" / "unlabeled.txt").exists()
    steps = [json.loads(line) for line in (run / "log.jsonl").read_text().splitlines()]
    steps = [r for r in steps if "loss" in r]
    assert [r["step"] for r in steps] == [1, 2, 3]
    terms = ["ce", "mgd.pixel", "mgd.pixel#2", "mgd.pixel#3", "mgd.pixel#4", "mgd.image", "mgd.region"]
    assert [k for k in steps[0] if k not in ("step", "lr", "loss", "elapsed_s")] == terms
    assert all(math.isfinite(r[t]) and r[t] >= 0 for r in steps for t in terms)
    assert json.loads((run / "metrics.json").read_text())["iterations"] == 3


@pytest.mark.parametrize("edit, match", [
    (("workers: 0, labeled_fraction: 1/4, unlabeled_views", "workers: 0, unlabeled_views"),
     r"mgd\.yaml:4: data\.unlabeled_views: expected a partition to draw them from"),
    (("sources: [unlabeled0, unlabeled1], view: mixed", "sources: [unlabeled0, unlabeled2], view: mixed"),
     r"mgd\.yaml:6: batch_transforms\[0\]: expected source views made before it .*got 'unlabeled2'"),
    (("labeled_fraction: 1/4,", "labeled_list: parts/1-4_seed0.txt,"),
     r"mgd\.yaml:4: data\.labeled_list: expected an existing partition list"),
    (("labeled_fraction: 1/4,", "labeled_fraction: 1/4, labeled_list: mgd.yaml,"),
     r"data\.labeled_list: expected either labeled_list or labeled_fraction, not both"),
    (("unlabeled_views: [unlabeled0, unlabeled1]", "unlabeled_views: [labeled]"),
     r"data\.unlabeled_views: expected distinct view names other than labeled"),
])
def test_semi_supervised_settings_are_checked_at_load(tmp_path, edit, match):
    path = write_project(tmp_path, RECIPE.replace(*edit))
    with pytest.raises(DistillError, match=match):
        load_recipe(path)


def test_a_saved_list_selects_the_partition_and_is_found_beside_the_recipe(tmp_path, monkeypatch):
    from distill.data.partitions import write_partitions
    from distill.stages.setup import build_data

    write_partitions(LabelTrap("train"), tmp_path / "parts", [FRACTION])
    path = write_project(tmp_path, RECIPE.replace("labeled_fraction: 1/4,", "labeled_list: parts/1-4_seed0.txt,"))
    monkeypatch.chdir(tmp_path.parent)  # not the recipe's folder: the list is found relative to the recipe
    loaded = load_recipe(path)
    data = build_data(loaded.recipe.data, str(path), seed=0)
    assert data.labeled == [LabelTrap("train").stem(i) for i in make_labeled_split(NUM, FRACTION, 0)[0]]
    assert len(data.unlabeled) == 9 and len(data.train) == 9
