"""train.teacher_precision runs the frozen teachers' forwards, and only those, under autocast in
the named precision; what the losses receive is float32 either way, and the student's arithmetic
follows train.mixed_precision as before."""

from __future__ import annotations

from types import SimpleNamespace

import pytest
import torch
from torch import nn

from distill.batch import Batch, View
from distill.engine.loop import Trainer
from distill.errors import DistillError
from distill.outputs import SegOutput
from distill.specs import TrainSpec
from distill.stages.setup import make_accelerator


class RecordingTeacher(nn.Module):
    """A 1x1 convolution that notes the dtype its convolution computed in."""

    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(3, 2, 1)
        self.seen: list[torch.dtype] = []

    def prepare_input(self, view: View) -> torch.Tensor:
        return view.image

    def forward(self, x: torch.Tensor, taps: tuple[str, ...] = ()) -> SegOutput:
        logits = self.conv(x)
        self.seen.append(logits.dtype)
        return SegOutput(logits, {"feat": logits * 2})


def teacher_outputs_under(precision: str, teacher: RecordingTeacher | None = None,
                          image: torch.Tensor | None = None) -> tuple[RecordingTeacher, dict]:
    """The engine's Trainer.teacher_outputs for one teacher on one view, under `precision`."""
    spec = TrainSpec(iterations=1, teacher_precision=precision)
    teacher = teacher if teacher is not None else RecordingTeacher().eval()
    trainer = SimpleNamespace(spec=spec, accelerator=make_accelerator(spec), caches={}, teachers={"t": teacher},
                              core=SimpleNamespace(teacher_forwards=lambda: {("t", "input"): ("feat",)}))
    trainer._teacher_inference = lambda *args: Trainer._teacher_inference(trainer, *args)
    batch = Batch({"input": View(image if image is not None else torch.rand(2, 3, 4, 5))})
    return teacher, Trainer.teacher_outputs(trainer, batch)


def test_bf16_teachers_compute_in_bf16_and_hand_float32_to_the_losses():
    teacher, outputs = teacher_outputs_under("bf16")
    out = outputs[("t", "input")]
    assert teacher.seen == [torch.bfloat16]
    assert out.logits.dtype == torch.float32 and out.features["feat"].dtype == torch.float32
    assert not out.logits.is_inference()  # usable in the autograd graph of the losses


def test_same_precision_follows_the_run_and_is_fp32_without_mixed_precision():
    teacher, outputs = teacher_outputs_under("same")
    assert teacher.seen == [torch.float32]
    assert outputs[("t", "input")].logits.dtype == torch.float32


def test_bf16_teacher_logits_are_the_fp32_ones_to_bf16_rounding():
    torch.manual_seed(0)
    image = torch.rand(2, 3, 4, 5)
    teacher, high = teacher_outputs_under("same", image=image)
    _, low = teacher_outputs_under("bf16", teacher, image)
    exact, rounded = high[("t", "input")].logits, low[("t", "input")].logits
    assert teacher.seen == [torch.float32, torch.bfloat16]
    assert not torch.equal(rounded, exact)  # it did compute in lower precision
    assert torch.allclose(rounded, exact, atol=2e-2, rtol=1e-2)


def test_fp16_teachers_without_a_gpu_is_a_clear_error():
    if torch.cuda.is_available():
        pytest.skip("a GPU machine may run fp16 teachers")
    with pytest.raises(DistillError, match="teacher_precision"):
        make_accelerator(TrainSpec(iterations=1, teacher_precision="fp16"))
