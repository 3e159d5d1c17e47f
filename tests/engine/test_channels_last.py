"""train.channels_last lays the convolutions out NHWC and changes nothing else: the same recipe
trained both ways ends with the same weights to float rounding (sums run in another order, so
not bit for bit), and the saved file is an ordinary, contiguous one."""

from __future__ import annotations

from pathlib import Path

from helpers import recipe, run_distill, student_card
from safetensors.torch import load_file


def largest_difference(a: dict, b: dict) -> float:
    assert a.keys() == b.keys()
    return max((a[k].float() - b[k].float()).abs().max().item() for k in a)


def test_channels_last_training_matches_nchw_training_to_rounding(tmp_path: Path):
    (tmp_path / "student.yaml").write_text(student_card())
    (tmp_path / "r.yaml").write_text(recipe("layout", "{iterations: 4, lr: 0.01, deterministic: true}"))
    weights = {}
    for name, overrides in (("nhwc", ["train.channels_last=true"]), ("nchw", ["train.channels_last=false"]),
                            ("nchw_lr", ["train.channels_last=false", "train.lr=0.011"])):
        result = run_distill("run", "r.yaml", *overrides, "--out-dir", name, cwd=tmp_path)
        assert result.returncode == 0, result.stderr
        weights[name] = load_file(str(tmp_path / name / "student.safetensors"))
    layout = largest_difference(weights["nhwc"], weights["nchw"])
    # what a real change to training moves (lr 0.010 -> 0.011): a layout bug would be of that size
    real = largest_difference(weights["nchw"], weights["nchw_lr"])
    assert layout < 1e-4 and real > 100 * layout, (layout, real)
    assert all(t.is_contiguous() for t in weights["nhwc"].values())
