"""distill/errors.py: a DistillError raised in a DataLoader worker still becomes one line."""

from __future__ import annotations

import pytest
from torch._utils import ExceptionWrapper  # what DataLoader workers send back to the main process

from distill.errors import DistillError, from_worker
from distill.registry import RegistryError


def reraised(exc: Exception) -> BaseException:
    try:
        raise exc
    except Exception:
        wrapper = ExceptionWrapper(where="in DataLoader worker process 0")
    with pytest.raises(Exception) as info:
        wrapper.reraise()
    return info.value


def test_a_worker_error_is_recovered_as_its_one_line():
    error = reraised(DistillError("fd/masks/a.png", None, "label values 0..1 or 255", got="<values [7]>"))
    assert isinstance(error, RuntimeError)  # torch cannot rebuild a DistillError from its text
    assert from_worker(error) == "fd/masks/a.png: expected label values 0..1 or 255, got <values [7]>"
    assert from_worker(reraised(RegistryError("r.yaml", "data.name", "a known data set name", got="x"))) == (
        "r.yaml: data.name: expected a known data set name, got 'x'")


def test_other_errors_are_left_alone():
    assert from_worker(reraised(ValueError("bad pixel"))) is None
    assert from_worker(RuntimeError("distill.errors.DistillError: looks like one, but no worker")) is None
    assert from_worker(KeyError("x")) is None
