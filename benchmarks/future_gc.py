"""What the cyclic garbage collector adds per future a pipelined caller holds, by the number of filled slots.

A pipelined thread-mode caller holds one ``ThreadFuture`` per call until it reads the results, and the collections
its own allocations trigger pass over them. This fills N futures the way a queued call does, the first K slots
only, and times it with the collector running and paused; the difference is the collector's share per future.

    python benchmarks/future_gc.py               # K = 1, 3, 5, 7 (a queued call fills 5, a completed one 7)
    python benchmarks/future_gc.py --rounds 31
"""

from __future__ import annotations

import argparse
import gc
import statistics
import time
from typing import Any, Callable

from concurry.backends.thread import NEW_THREAD_FUTURE
from concurry.core.future import PENDING

# The slots of a thread-mode call: the five its call function fills (concurry/codegen/templates/calls.py.j2), then
# the two the worker thread adds (concurry.backends.thread.run_queued).
SLOTS: tuple[tuple[str, Any], ...] = (
    ("_state", PENDING), ("_exception", None), ("_callbacks", None), ("_call_name", "f"), ("_call_args", 1),
    ("_started", True), ("_result", 1),
)


def filler(filled: int) -> Callable[[int], list[Any]]:
    """A function that makes ``n`` futures with the first ``filled`` slots set and returns them, held in a list."""
    assignments = "".join(f"        future.{name} = {value!r}\n" for name, value in SLOTS[:filled])
    source = (
        "def fill(n):\n"
        "    held = []\n"
        "    for _ in range(n):\n"
        "        future = new()\n"
        f"{assignments}"
        "        held.append(future)\n"
        "    return held\n"
    )
    namespace: dict[str, Any] = {"new": NEW_THREAD_FUTURE, "PENDING": PENDING}
    exec(source, namespace)
    return namespace["fill"]  # type: ignore[no-any-return]


def per_future_ns(fill: Callable[[int], list[Any]], n: int, rounds: int) -> tuple[float, float]:
    """Median ns per future with the collector running, and paused."""
    running: list[float] = []
    paused: list[float] = []
    for _ in range(rounds):
        for samples, pause in ((running, False), (paused, True)):
            gc.collect()
            if pause:
                gc.disable()
            start = time.perf_counter()
            held = fill(n)
            samples.append(time.perf_counter() - start)
            gc.enable()
            del held
    return statistics.median(running) / n * 1e9, statistics.median(paused) / n * 1e9


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--futures", type=int, default=20_000, help="futures held per sample (default 20000)")
    parser.add_argument("--rounds", type=int, default=21, help="samples per figure (default 21)")
    options = parser.parse_args()
    print(f"{options.futures} futures held, median of {options.rounds} samples, ns per future")
    per_future_ns(filler(len(SLOTS)), options.futures, 3)  # warm-up: the first samples of a process run slow
    print("filled slots   GC running   GC paused   collector's share")
    for filled in (1, 3, 5, 7):
        running, paused = per_future_ns(filler(filled), options.futures, options.rounds)
        print(f"{filled:>12}   {running:>10.1f}   {paused:>9.1f}   {running - paused:>17.1f}")


if __name__ == "__main__":
    main()
