"""Recipe loading: each kind of mistake gives one precise line (the shipped recipes: test_shipped_recipes.py)."""

from __future__ import annotations

from pathlib import Path

import pytest

from distill.errors import DistillError
from distill.recipe import apply_override, load_recipe, recipe_from_card

ROOT = Path(__file__).resolve().parents[1]


def write(tmp_path: Path, text: str, name: str = "r.yaml") -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


BASE = f"""\
name: t
student: {ROOT}/students/lraspp_lite0.yaml
teacher: {ROOT}/teachers/synthetic_deeplabv3plus_lite2.yaml
losses:
  - {{name: ce}}
  - {{name: kd, tau: 2.0}}
train:
  iterations: 10
"""


def test_wrong_type_names_file_line_and_field(tmp_path):
    path = write(tmp_path, BASE.replace("{name: kd, tau: 2.0}", "{name: kd, weight: high}"))
    with pytest.raises(DistillError) as info:
        load_recipe(path)
    assert str(info.value) == f"{path}:6: losses[1].weight: expected a number, got 'high'"


def test_unknown_key_suggests_the_right_one(tmp_path):
    path = write(tmp_path, BASE.replace("iterations: 10", "iterations: 10\n  itrations: 5"))
    with pytest.raises(DistillError, match=r"r.yaml:9: train.itrations: expected a known field.*did you mean 'iterations'"):
        load_recipe(path)


def test_unknown_loss_parameter_is_caught_at_load(tmp_path):
    path = write(tmp_path, BASE.replace("tau: 2.0", "taus: 2.0"))
    with pytest.raises(DistillError, match=r"r.yaml:6: losses\[1\].taus: .*did you mean 'tau'"):
        load_recipe(path)


def test_loss_parameter_type_is_checked(tmp_path):
    path = write(tmp_path, BASE.replace("tau: 2.0", "tau: four"))
    with pytest.raises(DistillError, match=r"losses\[1\].tau: expected a number, got 'four'"):
        load_recipe(path)


def test_unknown_loss_name_suggests(tmp_path):
    path = write(tmp_path, BASE.replace("name: kd,", "name: kdd,"))
    with pytest.raises(DistillError, match=r"losses\[1\].name: expected a known loss name, got 'kdd' \(did you mean 'kd'\?\)"):
        load_recipe(path)


def test_missing_required_field(tmp_path):
    path = write(tmp_path, BASE.replace("train:\n  iterations: 10\n", "train: {lr: 0.1}\n"))
    with pytest.raises(DistillError, match=r"train.iterations: expected a value for this required field"):
        load_recipe(path)


def test_teacher_loss_without_teacher(tmp_path):
    path = write(tmp_path, "\n".join(line for line in BASE.splitlines() if not line.startswith("teacher")))
    with pytest.raises(DistillError, match=r"losses\[1\].name: expected a recipe with a teacher card"):
        load_recipe(path)


def test_base_inheritance_and_overrides(tmp_path):
    write(tmp_path, BASE, "base.yaml")
    child = write(tmp_path, "base: base.yaml\nname: child\ntrain: {iterations: 20}\n")
    loaded = load_recipe(child, ["train.lr=0.5", "losses.1.tau=3"])
    assert loaded.recipe.name == "child"
    assert loaded.recipe.train.iterations == 20
    assert loaded.recipe.train.lr == 0.5
    assert loaded.loss_params[1]["tau"] == 3.0


def test_bad_override_value_names_the_override(tmp_path):
    path = write(tmp_path, BASE)
    with pytest.raises(DistillError, match=r"^command line 'train.iterations=many': train.iterations: expected an integer"):
        load_recipe(path, ["train.iterations=many"])


def test_override_syntax(tmp_path):
    with pytest.raises(DistillError, match=r"expected an override like train.iterations=100"):
        apply_override({}, "train.iterations")


def test_recipe_that_extends_itself(tmp_path):
    path = write(tmp_path, "base: r.yaml\nname: x\n")
    with pytest.raises(DistillError, match=r"base: expected a recipe that does not extend itself"):
        load_recipe(path)


def test_class_count_mismatch_between_teacher_and_student(tmp_path):
    student = write(tmp_path, (ROOT / "students/lraspp_lite0.yaml").read_text() + "num_classes: 5\n", "s.yaml")
    teacher = write(tmp_path, (ROOT / "teachers/camvid_deeplabv3plus_lite2.yaml").read_text(), "t.yaml")
    path = write(tmp_path, BASE.replace(f"{ROOT}/students/lraspp_lite0.yaml", str(student))
                 .replace(f"{ROOT}/teachers/synthetic_deeplabv3plus_lite2.yaml", str(teacher)))
    with pytest.raises(DistillError, match=r"s.yaml: num_classes: expected 11 classes like the teacher"):
        load_recipe(path)


def test_missing_card_file(tmp_path):
    path = write(tmp_path, BASE.replace("students/lraspp_lite0.yaml", "students/nope.yaml"))
    with pytest.raises(DistillError, match=r"r.yaml:2: student: expected an existing model card"):
        load_recipe(path)


def test_yaml_syntax_error_has_a_line(tmp_path):
    path = write(tmp_path, "name: [unclosed\n")
    with pytest.raises(DistillError, match=r"r.yaml:2: expected valid YAML"):
        load_recipe(path)


def test_recipe_from_card_uses_its_train_block(monkeypatch):
    monkeypatch.chdir(ROOT)
    loaded = recipe_from_card("teachers/synthetic_deeplabv3plus_lite2.yaml")
    assert [s.name for s in loaded.recipe.losses] == ["ce"]
    assert loaded.recipe.train.iterations == 300
    other = recipe_from_card("students/lraspp_lite0.yaml", data_name="camvid", overrides=["train.iterations=5"])
    assert other.recipe.data.name == "camvid" and other.recipe.train.iterations == 5
