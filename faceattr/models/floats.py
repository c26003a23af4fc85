"""Subnormal floats taken as zero while we train.

The pretrained face branch yields many subnormals (below 1.2e-38), which x86 CPUs handle in microcode: the
age-gender preset trains about 2x faster without them on some hosts, at no cost in float32
(benchmarks/results/denormals.md), and its weights keep none, so prediction is fast too (a checkpoint trained
with them kept has them taken out on load: models/net.py `without_subnormals`). The switch is per thread and new
threads copy it, so it must be on before torch's worker threads start (the first model built in a process starts
them); onnxruntime's first session in a process sets the calling thread's mode back to IEEE, so training enters
it after a peer model has run.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import torch


@contextmanager
def subnormals_as_zero() -> Iterator[None]:
    """Subnormals taken as zero inside; this thread gets IEEE floats back on the way out. torch's worker threads
    started inside keep the switch (torch cannot reset them), so in the same process a user's later torch op flushes
    the workers' share of its subnormal results: values below 1.2e-38; the CLI exits after training."""
    torch.set_flush_denormal(True)
    try:
        yield
    finally:
        torch.set_flush_denormal(False)
