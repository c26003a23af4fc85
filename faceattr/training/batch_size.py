"""`data.batch_size=auto`: the largest training batch that fits, found by trying real training steps.

On a GPU, Lightning's own `Tuner.scale_batch_size` (binary search on real training steps through the data
module, out-of-memory errors caught). On a CPU running out of memory means the kernel kills the process rather
than an exception, which Lightning's tuner cannot catch, so `find_batch_size` doubles, then bisects, and a batch
fits when the process's peak RSS during the step stays under `data.auto_batch_memory_fraction` of the machine's
RAM. The peak is the trial's own: Linux's high-water mark is reset before each trial (`/proc/self/clear_refs`),
since `ru_maxrss` is a lifetime peak and after one over-budget trial would make every later, smaller trial
"fail".
"""

from __future__ import annotations

import os
import resource
from collections.abc import Callable

import torch

from faceattr.config import Config


class DoesNotFit(Exception):
    """A trial batch ran out of memory (or over the CPU memory budget)."""


def largest_fitting(fits: Callable[[int], bool], start: int, cap: int) -> int:
    """The largest b in [1, cap] with fits(b), assuming fitting is monotone; at least 1 is returned."""
    low, high = 0, None  # low fits, high does not
    b = max(1, min(start, cap))
    while high is None:
        if fits(b):
            low = b
            if b >= cap:
                return cap
            b = min(cap, b * 2)
        else:
            high = b
    while high - low > max(1, low // 8):  # within an eighth of the limit is close enough
        mid = (low + high) // 2
        low, high = (mid, high) if fits(mid) else (low, mid)
    return max(low, 1)


def total_ram_bytes() -> int:
    return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")


def reset_peak_rss() -> bool:
    """Start a new peak-RSS window (Linux >= 4.0); False where the kernel offers none."""
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
        return True
    except OSError:
        return False


def peak_rss_bytes() -> int:
    """The peak resident memory since the last reset_peak_rss (VmHWM), else over the process's life."""
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024  # Linux reports KiB


def tune_batch_size_on_gpu(trainer, module, datamodule, cap: int, start: int = 8) -> int:
    """Lightning's `Tuner.scale_batch_size` (binsearch) through the data module's `batch_size`, at most `cap`
    less Lightning's 5 % safety margin; the weights and the trainer's state are restored afterwards by Lightning."""
    from lightning.pytorch.tuner import Tuner

    start = max(1, min(start, cap))
    datamodule.batch_size = start
    found = Tuner(trainer).scale_batch_size(
        module, datamodule=datamodule, mode="binsearch", init_val=start, max_val=cap, steps_per_trial=2
    )
    return max(1, min(int(found or start), cap))


def find_batch_size(cfg: Config, module: torch.nn.Module, device: torch.device | None = None) -> int:
    """Try training steps on random images of the configured size; the module's weights are left unchanged."""
    device = device or torch.device("cuda" if torch.cuda.is_available() else "cpu")
    size = cfg.data.image_size
    budget = cfg.data.auto_batch_memory_fraction * total_ram_bytes()
    state = {k: v.detach().clone() for k, v in module.state_dict().items()}
    module.to(device).train()

    def fits(batch: int) -> bool:
        if device.type == "cpu":
            reset_peak_rss()
        try:
            images = torch.randn(batch, 3, size, size, device=device)
            outputs = module(images)
            loss = sum(o.float().mean() for o in outputs.values())
            loss.backward()
            module.zero_grad(set_to_none=True)
            if device.type == "cpu" and peak_rss_bytes() > budget:
                raise DoesNotFit
            return True
        except (DoesNotFit, torch.cuda.OutOfMemoryError):
            return False
        except RuntimeError as e:  # older builds report OOM as a plain RuntimeError
            if "out of memory" in str(e).lower():
                return False
            raise
        finally:
            if device.type == "cuda":
                torch.cuda.empty_cache()

    try:
        return largest_fitting(fits, start=8, cap=cfg.data.max_batch_size)
    finally:
        module.load_state_dict(state)
        module.to("cpu")
