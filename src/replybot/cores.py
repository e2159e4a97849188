"""How many cores one warm query may use.

A second thread cuts one encoding from 10 to 5.5 ms on an idle 2-core machine (compiled
layers; numpy: 23 to 17 ms), but when another program keeps a core busy the two threads wait on
each other and the same encoding takes many times longer (numpy: 150 ms, measured here, 2 cores).
So a long-running helper uses the second core only when the other programs left it idle since the
previous query; `replybot suggest` stays on one thread.
"""

from __future__ import annotations

import os
import time
from contextlib import contextmanager, nullcontext
from typing import Callable, ContextManager, Iterator

PROC_STAT = "/proc/stat"
MIN_SAMPLE_S = 0.1  # shorter windows are a handful of clock ticks: keep the last decision
FREE_MARGIN = 0.25  # a core counts as free when other programs used under a quarter of it

CpuTimes = tuple[float, float]  # (idle, total) seconds summed over all cores


def read_cpu_times(path: str = PROC_STAT) -> CpuTimes | None:
    """Idle and total CPU seconds since boot over all cores; None where /proc/stat is missing."""
    try:
        with open(path, encoding="ascii") as fh:
            fields = fh.readline().split()
        ticks = os.sysconf("SC_CLK_TCK")
    except (OSError, ValueError, AttributeError):
        return None
    if len(fields) < 5 or fields[0] != "cpu":
        return None
    try:
        values = [float(v) / ticks for v in fields[1:9]]  # user nice system idle iowait irq softirq steal
    except ValueError:
        return None
    return values[3] + values[4], sum(values)


def encoder_threads(encoder: object, threads: int) -> ContextManager:
    """Let the encoder's compiled layers use `threads` cores inside the block (LeanEncoder; for
    other encoders, and numpy's layers, the BLAS limit is what counts)."""
    using = getattr(encoder, "using_threads", None)
    return using(threads) if using is not None else nullcontext()


class QueryThreads:
    """Chooses the BLAS threads for the next query from the load other programs put on the machine."""

    def __init__(
        self,
        max_threads: int = 2,
        cpus: int | None = None,
        read: Callable[[], CpuTimes | None] = read_cpu_times,
        own_cpu: Callable[[], float] = time.process_time,
    ):
        self.cpus = cpus or os.cpu_count() or 1
        self.max_threads = max(1, min(max_threads, self.cpus))
        self._read = read
        self._own_cpu = own_cpu
        self._since = (read(), own_cpu())
        self.threads = 1  # until one window has been measured
        self._controller = None  # threadpoolctl's view of the loaded BLAS, found on first use

    def free_cores(self) -> float | None:
        """Cores other programs left idle since the last measured window, or None if too short to tell."""
        (before, own_before), now, own_now = self._since, self._read(), self._own_cpu()
        if before is None or now is None:
            return None
        total = now[1] - before[1]
        if total < MIN_SAMPLE_S * self.cpus:
            return None
        self._since = (now, own_now)
        busy_others = max(0.0, total - (now[0] - before[0]) - (own_now - own_before))
        return self.cpus * (1.0 - min(1.0, busy_others / total))

    def wait_for_first_window(self) -> None:
        """Pause as long as one load window takes, as a helper waits for its first message;
        a benchmark that starts timing at once would run its first queries on one thread."""
        time.sleep(2 * MIN_SAMPLE_S)

    def choose(self) -> int:
        free = self.free_cores()
        if free is not None:
            self.threads = max(1, min(self.max_threads, int(free + FREE_MARGIN)))
        return self.threads

    @contextmanager
    def limit(self, encoder: object = None) -> Iterator[int]:
        """Run one query with the chosen number of threads: BLAS's and the encoder's own."""
        n = self.choose()
        if self._controller is None:
            from threadpoolctl import ThreadpoolController

            self._controller = ThreadpoolController()
        with self._controller.limit(limits=n, user_api="blas"), encoder_threads(encoder, n):
            yield n
