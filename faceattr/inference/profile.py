"""Where prediction's time goes: seconds per stage (decode, detect, crop, resize, model, write), summed over a run.

`faceattr predict --profile` prints the table and benchmarks/predict_speed.py records it; `wall` is the run's own
clock, so what the stages leave out of it is the loop's own overhead.
"""

from __future__ import annotations

import time
from collections import defaultdict
from collections.abc import Iterator
from contextlib import contextmanager

STAGES = ("decode", "detect", "crop", "resize", "model", "write")


class StageClock:
    """Accumulates wall seconds per named stage."""

    def __init__(self) -> None:
        self.seconds: dict[str, float] = defaultdict(float)
        self.started = time.perf_counter()

    @contextmanager
    def stage(self, name: str) -> Iterator[None]:
        start = time.perf_counter()
        try:
            yield
        finally:
            self.seconds[name] += time.perf_counter() - start

    def rows(self, photos: int) -> list[dict]:
        """One row per stage seen (in pipeline order, then others), and the run's wall time."""
        wall = time.perf_counter() - self.started
        order = [s for s in STAGES if s in self.seconds] + sorted(set(self.seconds) - set(STAGES))
        rows = [
            {
                "stage": s,
                "seconds": self.seconds[s],
                "ms_per_photo": 1000 * self.seconds[s] / max(photos, 1),
                "share": self.seconds[s] / wall if wall > 0 else 0.0,
            }
            for s in order
        ]
        return [*rows, {"stage": "wall", "seconds": wall, "ms_per_photo": 1000 * wall / max(photos, 1), "share": 1.0}]
