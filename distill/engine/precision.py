"""The precision the frozen teachers run in (train.teacher_precision)."""

from __future__ import annotations

from contextlib import AbstractContextManager

import torch
from accelerate import Accelerator

from distill.specs import TrainSpec


def teacher_autocast(spec: TrainSpec, accelerator: Accelerator) -> AbstractContextManager:
    """The run's own autocast (Accelerate's, from train.mixed_precision) for "same"; else autocast
    in bf16 or fp16 around the teachers' forwards alone, so the student's arithmetic is untouched."""
    if spec.teacher_precision == "same":
        return accelerator.autocast()
    dtype = torch.bfloat16 if spec.teacher_precision == "bf16" else torch.float16
    return torch.autocast(accelerator.device.type, dtype=dtype)
