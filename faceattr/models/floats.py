"""Subnormal floats taken as zero while our own torch code runs (training, evaluation).

The pretrained face branch yields many subnormals (below 1.2e-38), which x86 CPUs handle in microcode: the
age-gender preset trains about 2x and predicts on torch about 4x faster without them on some hosts, at no cost in
float32 (benchmarks/results/denormals.md). The switch is per thread and new threads copy it, so it must be on
before torch's worker threads start (the first model built in a process starts them); onnxruntime's first session
in a process sets the calling thread's mode back to IEEE, so code that loads a peer model turns it on again.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager

import torch


@contextmanager
def subnormals_as_zero() -> Iterator[Callable[[], None]]:
    """Subnormals taken as zero inside; yields the call that turns it on again. This thread gets IEEE floats back on
    the way out, so a user's code after ours sees what it saw before."""

    def again() -> None:
        torch.set_flush_denormal(True)

    again()
    try:
        yield again
    finally:
        torch.set_flush_denormal(False)
