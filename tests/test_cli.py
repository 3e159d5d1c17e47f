"""The CLI as a user types it: real subprocesses, tiny synthetic runs, exact figures."""

from __future__ import annotations

import json
import re
import shlex
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from helpers import recipe, student_card, teacher_card
from helpers import run_distill as distill

ROOT = Path(__file__).resolve().parents[1]

TEACHER = teacher_card(head_channels=16)
STUDENT = student_card(head_channels=16)
RECIPE = recipe("tiny_kd", "{iterations: 4, lr: 0.01, eval_every: 2, log_every: 1}", teacher=True)


@pytest.fixture()
def project(tmp_path: Path) -> Path:
    (tmp_path / "teacher.yaml").write_text(TEACHER)
    (tmp_path / "student.yaml").write_text(STUDENT)
    (tmp_path / "tiny.yaml").write_text(RECIPE)
    return tmp_path


@pytest.mark.slow
def test_run_trains_missing_teacher_then_distils_and_eval_reproduces(project):
    result = distill("run", "tiny.yaml", cwd=project)
    assert result.returncode == 0, result.stderr
    assert (project / "ckpt/tiny_teacher.safetensors").is_file()  # the teacher was trained first
    run = project / "runs/tiny_kd"
    for name in ("student.safetensors", "metrics.json", "recipe.resolved.yaml", "log.jsonl"):
        assert (run / name).is_file(), name
    metrics = json.loads((run / "metrics.json").read_text())
    assert set(metrics) >= {"miou", "pixel_acc", "boundary_iou", "trimap_iou", "per_class_iou"}
    steps = [json.loads(line) for line in (run / "log.jsonl").read_text().splitlines()]
    assert [s["step"] for s in steps if "eval" in s] == [2, 4]
    assert {"ce", "kd", "loss", "lr"} <= set(steps[0])
    assert "mIoU" in result.stdout

    scored = distill("eval", str(run / "student.safetensors"), "--data", "synthetic", "--split", "val",
                     "--json", "eval.json", cwd=project)
    assert scored.returncode == 0, scored.stderr
    again = json.loads((project / "eval.json").read_text())
    for key in ("miou", "pixel_acc", "boundary_iou", "trimap_iou", "per_class_iou"):
        assert again[key] == metrics[key], key


@pytest.mark.slow
def test_existing_run_folder_is_refused_then_resumed(project):
    assert distill("run", "tiny.yaml", "train.iterations=2", cwd=project).returncode == 0
    again = distill("run", "tiny.yaml", "train.iterations=2", cwd=project)
    assert again.returncode == 2
    assert "expected a new folder, or --resume / --overwrite" in again.stderr
    # More iterations is another recipe: refused with the field named, then continued only when asked.
    refused = distill("run", "tiny.yaml", "train.iterations=4", "--resume", cwd=project)
    assert refused.returncode == 2 and "train.iterations: expected 2 as recorded in this run folder" in refused.stderr
    longer = distill("run", "tiny.yaml", "train.iterations=4", "--resume", "--accept-changes", cwd=project)
    assert longer.returncode == 0, longer.stderr
    assert "resuming from" in longer.stdout + longer.stderr
    recorded = [json.loads(line) for line in (project / "runs/tiny_kd/changes.jsonl").read_text().splitlines()]
    assert [r["changed"] for r in recorded] == [{"train.iterations": [2, 4]}]
    assert json.loads((project / "runs/tiny_kd/metrics.json").read_text())["iterations"] == 4


def test_recipe_error_is_one_line_with_exit_code_2(project):
    (project / "bad.yaml").write_text(RECIPE.replace("tau: 2.0", "tau: hot"))
    result = distill("run", "bad.yaml", cwd=project)
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert lines == ["distill: bad.yaml:7: losses[1].tau: expected a number, got 'hot'"]
    debug = distill("run", "bad.yaml", "--debug", cwd=project)
    assert "Traceback" in debug.stderr


def test_missing_data_root_is_one_line(project):
    result = distill("eval", "--predictions", str(project), "--data", "camvid", "--data-root", str(project / "nope"),
                     cwd=project)
    assert result.returncode == 2
    assert len(result.stderr.strip().splitlines()) == 1 and "nope" in result.stderr
    # both ways to give the root: `run` takes the override data.root=PATH, train/eval/... take --data-root
    assert "distill run RECIPE data.root=PATH" in result.stderr and "--data-root PATH to distill train/eval" in result.stderr


@pytest.mark.slow
def test_eval_predictions_folder_matches_model_eval(project):
    assert distill("train", "student.yaml", "--data", "synthetic", "train.iterations=2", "data.workers=0",
                   "data.crop_size=[48,64]", "data.batch_size=2",
                   cwd=project).returncode == 0
    model = project / "runs/tiny_student-synthetic/student.safetensors"
    code = (
        "import sys; from pathlib import Path; import numpy as np; from PIL import Image;"
        "from distill.models import load_model_file; from distill.data import build_dataset;"
        "from distill.engine.evaluate import predict_batch;"
        f"m, _ = load_model_file(r'{model}'); m.eval(); ds = build_dataset('synthetic', None, 'val');"
        "out = Path('preds'); out.mkdir();"
        "[Image.fromarray(predict_batch(m, s['image'][None], tuple(s['label'].shape), None)[0].numpy().astype(np.uint8))"
        ".save(out / (s['name'] + '.png')) for s in (ds[i] for i in range(len(ds)))]"
    )
    subprocess.run([sys.executable, "-c", code], cwd=project, check=True)
    options = ["--data", "synthetic", "--split", "val"]
    a = distill("eval", str(model), *options, "--json", "a.json", cwd=project)
    assert a.returncode == 0, a.stderr
    b = distill("eval", "--predictions", "preds", *options, "--json", "b.json", cwd=project)
    assert b.returncode == 0, b.stderr
    from_model, from_pngs = (json.loads((project / f).read_text()) for f in ("a.json", "b.json"))
    for key in ("miou", "pixel_acc", "boundary_iou", "trimap_iou", "per_class_iou"):
        assert from_model[key] == from_pngs[key], key


def test_listing_commands_and_help():
    recipes = distill("recipes", cwd=ROOT)
    assert recipes.returncode == 0 and "recipes/kd.yaml" in recipes.stdout and "recipes/camvid/cwd.yaml" in recipes.stdout
    cards = distill("cards", cwd=ROOT)
    assert "teachers/camvid_deeplabv3plus_lite2.yaml" in cards.stdout and "students/lraspp_lite0.yaml" in cards.stdout
    for command in ("run", "train", "eval", "compare", "check", "export", "prune", "quantize", "recipes", "cards", "env"):
        help_text = distill(command, "--help", cwd=ROOT)
        assert help_text.returncode == 0 and "Usage" in help_text.stdout, command
    assert "distill run recipes/kd.yaml" in distill("run", "--help", cwd=ROOT).stdout


def test_help_paragraphs_are_reflowed_for_the_terminal():
    from distill.cli import app
    from distill.cli_support import reflow

    text = """First line.

    A paragraph wrapped
    at the source's width.

    - an item
      continued
    - another item
    """
    assert reflow(text) == "First line.\n\nA paragraph wrapped at the source's width.\n\n- an item\n  continued\n- another item"
    for info in app.registered_commands:  # no command keeps a source line break inside a paragraph
        for paragraph in info.help.split("\n\n"):
            for line in paragraph.splitlines()[1:]:
                assert line.startswith((" ", "- ", "* ")), (info.callback.__name__, line)


@pytest.mark.slow
def test_two_processes_on_cpu_share_the_work(project):
    result = distill("run", "tiny.yaml", "--processes", "2", cwd=project)
    assert result.returncode == 0, result.stderr[-2000:]
    assert result.stdout.count("student on synthetic") == 1  # the summary comes from the main process only
    assert "processes" in result.stdout and "│            2 │" in result.stdout
    metrics = json.loads((project / "runs/tiny_kd/metrics.json").read_text())
    assert metrics["num_pixels"] == 8 * 48 * 64  # every val image scored exactly once across both processes


def test_listing_survives_a_file_that_is_not_utf8(tmp_path):
    (tmp_path / "recipes").mkdir()
    (tmp_path / "recipes/good.yaml").write_text("name: good\ndescription: a good one\n")
    (tmp_path / "recipes/latin1.yaml").write_bytes("name: x\ndescription: caf\u00e9\n".encode("latin-1"))
    result = distill("recipes", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert "recipes/latin1.yaml" in result.stdout and "(unreadable)" in result.stdout and "recipes/good.yaml" in result.stdout


# -- every example in every --help names files that exist --------------------------------------------
CHEAP = {"recipes", "cards", "env"}  # examples of these commands are run for real (none has one yet)
OUTPUTS = {"out", "json_out", "out_dir"}  # parameters naming files the command writes
RUN_FILES = {"student.safetensors", "metrics.json", "log.jsonl", "recipe.resolved.yaml"}
PLACEHOLDER = re.compile(r"[A-Z][A-Z_]*(\.\w+)?")  # MODEL.pth: the user's own file, as MODEL in the usage line


def help_examples() -> list[str]:
    """Every `distill ...` command line in the top-level --help and in every command's --help."""
    from typer.main import get_command

    from distill.cli import app

    names = sorted(get_command(app).commands)
    example = re.compile(rf"(?<=: )distill (?:{'|'.join(names)})\b[^\n]*")  # "Example: distill ...", not prose
    examples = []
    for args in [(), *((name,) for name in names)]:
        result = distill(*args, "--help", cwd=ROOT)
        assert result.returncode == 0, args
        found = [" ".join(m.group(0).split()) for m in example.finditer(result.stdout)]
        assert found or not args or not get_command(app).commands[args[0]].epilog, f"no example found in {args} --help"
        examples += found
    return examples


def shipped(path: Path, run_names: set[str]) -> bool:
    """In the repository, a placeholder for the user's own file, or what a shipped recipe's run writes."""
    if (ROOT / path).exists() or (len(path.parts) == 1 and PLACEHOLDER.fullmatch(path.name)):
        return True
    parts = path.parts  # runs/kd/student.safetensors: written by `distill run` of the recipe named kd
    in_run = len(parts) in (2, 3) and parts[0] == "runs" and parts[1] in run_names
    return in_run and (len(parts) == 2 or parts[2] in RUN_FILES)


def test_every_help_example_names_existing_files(monkeypatch):
    """Each example parses as its command, and every input path it names exists.

    Examples of cheap commands (recipes, cards, env) are run. Training examples (run, train) are not
    run, which takes minutes: their recipe or card is loaded and validated with the example's
    options and overrides through distill's own loader instead (seconds, nothing is trained or written).
    """
    from typer.main import get_command

    from distill.cli import app
    from distill.recipe import load_recipe, recipe_from_card

    run_names = {yaml.safe_load(p.read_text())["name"] for p in (ROOT / "recipes").rglob("*.yaml")}
    examples = help_examples()
    monkeypatch.chdir(ROOT)
    for example in examples:
        name, *args = shlex.split(example)[1:]
        params = get_command(app).commands[name].make_context(name, list(args)).params  # a usage error raises
        for key, value in params.items():  # path parameters parse to Path objects
            paths = [v for v in (value if isinstance(value, (list, tuple)) else [value]) if isinstance(v, Path)]
            missing = [str(p) for p in paths if key not in OUTPUTS and not shipped(p, run_names)]
            assert not missing, f"{example!r}: {key} {missing} not in the repository"
        if name in CHEAP:
            assert distill(name, *args, cwd=ROOT).returncode == 0, example
        elif name == "run":
            load_recipe(params["recipe"], params["overrides"] or [])
        elif name == "train":
            recipe_from_card(params["card"], params["data"], params["data_root"], params["overrides"] or [])
    assert "distill train teachers/synthetic_deeplabv3plus_lite2.yaml --data synthetic" in examples  # issue #18
