"""Concurrent requests share model calls: one worker thread takes the photos waiting in a queue and runs
detection and classification on all of them at once.

At one client a request never waits for company (the queue is empty, it runs at once); under load, photos that
arrive while a batch runs form the next batch, and `window_s` lets a batch wait a few milliseconds for more once
requests are known to come together. A batch that fails is retried photo by photo, so one photo's error reaches only
its own request.
"""

from __future__ import annotations

import queue
import threading
import time
from collections import deque
from collections.abc import Callable
from concurrent.futures import Future
from typing import Any

_STOP = object()


class MicroBatcher:
    """`submit(item)` returns a Future; `run_batch(items)` must return one result per item, in order."""

    def __init__(self, run_batch: Callable[[list], list], window_s: float = 0.005, max_batch: int = 16) -> None:
        self.run_batch, self.window_s, self.max_batch = run_batch, window_s, max_batch
        self.queue: queue.Queue = queue.Queue()
        # the sizes of the latest batches (bounded: a server runs for weeks); the last one tells whether requests
        # are coming together
        self.batch_sizes: deque[int] = deque(maxlen=1000)
        self.thread = threading.Thread(target=self._loop, name="faceattr-batcher", daemon=True)
        self.thread.start()

    def submit(self, item: Any) -> Future:
        future: Future = Future()
        self.queue.put((item, future))
        return future

    def close(self) -> None:
        self.queue.put(_STOP)
        self.thread.join(timeout=10)

    def _collect(self, first) -> tuple[list, bool]:
        """`first` and whatever else is queued (waiting up to the window when requests come together)."""
        batch, stop = [first], False
        together = not self.queue.empty() or (self.batch_sizes[-1] if self.batch_sizes else 1) > 1
        deadline = time.monotonic() + (self.window_s if together else 0.0)
        while len(batch) < self.max_batch:
            try:
                item = self.queue.get(timeout=max(0.0, deadline - time.monotonic()))
            except queue.Empty:
                break
            if item is _STOP:
                stop = True
                break
            batch.append(item)
        return batch, stop

    def _loop(self) -> None:
        while True:
            first = self.queue.get()
            if first is _STOP:
                return
            batch, stop = self._collect(first)
            self.batch_sizes.append(len(batch))
            self._run(batch)
            if stop:
                return

    def _run(self, batch: list) -> None:
        try:
            results = self.run_batch([item for item, _ in batch])
        except Exception as error:
            if len(batch) > 1:  # one bad photo must not fail its neighbours: each alone
                for one in batch:
                    self._run([one])
            else:
                batch[0][1].set_exception(error)
            return
        for (_, future), result in zip(batch, results, strict=True):
            future.set_result(result)
