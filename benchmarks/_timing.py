"""The timing loop every benchmark shares: peers timed side by side, medians reported.

The machine is shared and noisy, so peers are timed in the same run, in rounds whose
order alternates (A B, B A, ...) so that neither side always runs first (caches,
allocator, CPU boost), after one untimed warm-up call each (tracing, first allocations),
and the median of the rounds is reported: robust to the other jobs on the cores.
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable, Mapping


def race(
    steps: Mapping[str, Callable[[], object]],
    rounds: int,
    items: int | None = None,
    clock: Callable[[], float] = time.perf_counter,
) -> dict[str, float]:
    """Times each step `rounds` times in alternating order; the median per step.

    Args:
        steps: Peer name -> a call that runs one step.
        rounds: Timed calls per peer.
        items: Items one call processes; when given, returns items/s instead of seconds.
        clock: Seconds source: wall time (default), or `time.process_time` (this process's
            CPU seconds, all threads: steadier than wall time when other jobs load the cores).

    Returns:
        Peer name -> median seconds per call, or items/s (`items` / median seconds).
    """
    for step in steps.values():
        step()  # warm-up: tracing and first-call allocation, not timed
    seconds: dict[str, list[float]] = {name: [] for name in steps}
    order = list(steps)
    for _ in range(rounds):
        for name in order:
            start = clock()
            steps[name]()
            seconds[name].append(clock() - start)
        order.reverse()
    medians = {name: statistics.median(values) for name, values in seconds.items()}
    return medians if items is None else {name: items / value for name, value in medians.items()}
