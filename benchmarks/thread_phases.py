"""A pipelined thread-mode call, phase by phase: queueing, running, reading the result, in one thread each.

``overhead.py`` times the whole of a pipelined round, where the caller and the worker thread take turns on the
GIL, so where the time goes is hard to see from it. Here each phase runs on its own, in the main thread, over the
same calls: the caller's call function queues N calls (the garbage collector running, then paused), the worker
thread's loop runs them (``run_queued``, called directly), and the caller reads the N results. The raw
``SimpleQueue`` hand-off of ``overhead.py`` gets the same three phases. Figures are ns per call, medians of the
rounds.

    python benchmarks/thread_phases.py
    python benchmarks/thread_phases.py --rounds 31 --calls 20000
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
from queue import SimpleQueue
from typing import Any, Optional

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from concurry.backends.thread import run_queued  # noqa: E402
from concurry.codegen.calls import flavor_namespace  # noqa: E402
from overhead import Echo, serve_raw, timed  # noqa: E402  # overhead.py's worker, raw hand-off and timing


def concurry_phases(calls: int, rounds: int) -> dict[str, list[float]]:
    """µs per call, by phase and round, for concurry's thread mode: a one-argument call function, as a proxy has."""
    queue: SimpleQueue[Optional[Any]] = SimpleQueue()
    call = flavor_namespace("thread")["call1"]("f", queue.put, [], "Echo", None)
    methods = {"f": Echo().f}
    futures: list[Any] = []

    def queue_all(n: int) -> None:
        nonlocal futures
        futures = [call(i) for i in range(n)]

    def run_all(_: int) -> None:
        queue.put(None)
        run_queued(queue, methods)

    def read_all(_: int) -> None:
        for future in futures:
            future.result()

    phases: dict[str, list[float]] = {"queue (GC running)": [], "queue (GC paused)": [], "run": [], "read": []}
    for _ in range(rounds):
        for pause_gc in (False, True):
            queued = timed(queue_all, calls, pause_gc)
            phases["queue (GC paused)" if pause_gc else "queue (GC running)"].append(queued)
            ran = timed(run_all, calls, False)
            if not pause_gc:
                phases["run"].append(ran)
                phases["read"].append(timed(read_all, calls, False))
            futures = []
    return phases


def raw_phases(calls: int, rounds: int) -> dict[str, list[float]]:
    """The same phases for the raw hand-off: put N ints, answer each through a second queue, get N answers."""
    inbox: SimpleQueue[Optional[int]] = SimpleQueue()
    outbox: SimpleQueue[int] = SimpleQueue()
    f = Echo().f

    def queue_all(n: int) -> None:
        for i in range(n):
            inbox.put(i)

    def run_all(_: int) -> None:
        inbox.put(None)
        serve_raw(inbox, outbox, f)

    def read_all(n: int) -> None:
        get = outbox.get
        for _ in range(n):
            get()

    phases: dict[str, list[float]] = {"queue": [], "run": [], "read": []}
    for _ in range(rounds):
        for phase, fn in (("queue", queue_all), ("run", run_all), ("read", read_all)):
            phases[phase].append(timed(fn, calls, False))
    return phases


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--calls", type=int, default=20_000, help="calls per round (default 20000, as overhead.py)")
    parser.add_argument("--rounds", type=int, default=15, help="rounds (default 15)")
    options = parser.parse_args()
    print(f"{options.calls} calls a round, median of {options.rounds} rounds, ns per call")
    for name, phases in (("concurry thread", concurry_phases(options.calls, options.rounds)),
                         ("raw hand-off", raw_phases(options.calls, options.rounds))):
        cells = "   ".join(f"{phase} {statistics.median(values) * 1e3:.0f}"
                           for phase, values in phases.items())
        print(f"{name:<16} {cells}")


if __name__ == "__main__":
    main()
