"""Cost of the unwrapping scan on calls without futures: a call with 10 plain int arguments beside one with none.

    python benchmarks/unwrap_scan.py                    # thread mode
    python benchmarks/unwrap_scan.py --mode sync --rounds 15

Calls are measured one at a time (``f(...).result()``), pipelined (submit N, then wait for the last) and, outside
sync mode, as the caller's submission alone (the worker held meanwhile), in alternating rounds; each ratio to the
call without arguments is the median of the per-round ratios. The budget is 1.2x. The ``unwrap_futures=False`` row
passes the same arguments without any scan: the difference between the two 10-argument rows is what the scan costs,
the rest is what passing ten arguments costs at all.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import threading
import time
from typing import Any, Callable

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from concurry import Worker  # noqa: E402


class Target(Worker):
    def hold(self, event: threading.Event) -> None:
        event.wait()

    def none(self) -> int:
        return 0

    def ten(self, a0: int, a1: int, a2: int, a3: int, a4: int, a5: int, a6: int, a7: int, a8: int, a9: int) -> int:
        return a0


def _one_at_a_time(call: Callable[[], Any], n: int) -> float:
    start = time.perf_counter()
    for _ in range(n):
        call().result()
    return (time.perf_counter() - start) / n


def _pipelined(call: Callable[[], Any], n: int) -> float:
    start = time.perf_counter()
    last = None
    for _ in range(n):
        last = call()
    assert last is not None
    last.result()
    return (time.perf_counter() - start) / n


def _submitted_while_held(call: Callable[[], Any], n: int, workers: list[Any]) -> float:
    """The caller's side alone: the workers are held, so nothing runs while the calls are submitted."""
    event = threading.Event()
    for worker in workers:
        worker.hold(event)
    start = time.perf_counter()
    for _ in range(n):
        call()
    elapsed = time.perf_counter() - start
    event.set()
    for worker in workers:
        worker.none().result()
    return elapsed / n


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--mode", default="thread")
    parser.add_argument("--calls", type=int, default=20_000)
    parser.add_argument("--rounds", type=int, default=9)
    options = parser.parse_args()
    worker = Target.options(mode=options.mode).init()
    plain = Target.options(mode=options.mode, unwrap_futures=False).init()
    calls = {
        "no arguments": lambda: worker.none(),
        "10 int arguments": lambda: worker.ten(0, 1, 2, 3, 4, 5, 6, 7, 8, 9),
        "10 int arguments, unwrap_futures=False": lambda: plain.ten(0, 1, 2, 3, 4, 5, 6, 7, 8, 9),
    }
    def held(call: Callable[[], Any], n: int) -> float:
        return _submitted_while_held(call, n, [worker, plain])

    how_to_measure: list[tuple[str, Callable[[Callable[[], Any], int], float]]] = [
        ("one at a time", _one_at_a_time),
        ("pipelined", _pipelined),
    ]
    if options.mode != "sync":
        how_to_measure.append(("submission only (worker held)", held))
    for how, measure in how_to_measure:
        for call in calls.values():
            measure(call, options.calls // 10)  # warm-up
        times: dict[str, list[float]] = {name: [] for name in calls}
        for _ in range(options.rounds):
            for name, call in calls.items():
                times[name].append(measure(call, options.calls))
        print(f"{options.mode}, {how}:")
        for name, samples in times.items():
            ratios = [sample / none for sample, none in zip(samples, times["no arguments"])]
            print(f"  {name:40} {statistics.median(samples) * 1e6:7.2f} us  {statistics.median(ratios):.3f}x")
    worker.stop()
    plain.stop()


if __name__ == "__main__":
    main()
