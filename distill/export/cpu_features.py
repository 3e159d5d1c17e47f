"""The CPU's int8 dot-product instructions, which decide how int8 weights are best stored.

onnxruntime's x86 uint8 x int8 convolution kernel takes one of two paths. Without VNNI (AVX2,
plain AVX-512) it multiplies and sums pairs of products in int16 (VPMADDUBSW), which can saturate
with full-range 8-bit weights, so weights are stored in 7 bits (`reduce_range`). With VNNI
(AVX512_VNNI, AVX_VNNI) it sums four products straight into int32 (VPDPBUSD): nothing saturates,
and 7-bit weights only throw away precision. Measured on the CamVid v2 student at 360x480, one
thread, on a 2-core EPYC with AVX512_VNNI (2026-12-07): 7-bit weights 66.69 val mIoU at 0.43x
the fp32 ONNX time, full-range weights 67.46 at 0.44x (fp32: 67.39).
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import Literal

VNNI_FLAGS = frozenset({"avx512_vnni", "avx_vnni"})


@lru_cache(maxsize=1)
def cpu_flags(cpuinfo: Path = Path("/proc/cpuinfo")) -> frozenset[str]:
    """The instruction-set flags Linux lists for the first CPU; empty where there is no such file."""
    try:
        text = cpuinfo.read_text()
    except OSError:
        return frozenset()
    for line in text.splitlines():
        if line.startswith("flags"):
            return frozenset(line.partition(":")[2].split())
    return frozenset()


def has_vnni(flags: frozenset[str] | None = None) -> bool:
    return bool(VNNI_FLAGS & (cpu_flags() if flags is None else flags))


def resolve_reduce_range(value: bool | Literal["auto"] | None, flags: frozenset[str] | None = None) -> bool:
    """`auto` (or None): 7-bit weights unless this CPU has VNNI. The int8 file is tuned for the
    machine that quantizes it; state the value when the file will run on another kind of CPU."""
    if value is None or value == "auto":
        return not has_vnni(flags)
    return bool(value)
