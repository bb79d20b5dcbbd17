"""Pool rows: what dispatching through a pool costs beside one worker, and what a process pool buys for CPU work.

    python benchmarks/pool_overhead.py               # both tables
    python benchmarks/pool_overhead.py --rounds 9    # more rounds for steadier medians

Dispatch: a thread pool of 4 (round robin, and with ``max_queued_tasks``) against one thread worker, each call
made and its result awaited one at a time, and pipelined (submit N, then wait for all). Throughput: N CPU-bound
calls on a process pool of 2 against one process worker, beside ``ProcessPoolExecutor`` with 2 and 1 processes
(what the machine gives two processes at the time). Rows are measured in alternation, each figure is the
median of its rounds and each ratio the median of the per-round ratios. Targets: pool dispatch
≤ 1.5× a single worker's call; a process pool of 2 ≥ 1.8× the CPU-bound throughput of one worker (2 cores).
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from concurrent.futures import ProcessPoolExecutor
from typing import Any, Callable

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from concurry import Worker, wait  # noqa: E402


class Echo(Worker):
    def echo(self, x: int) -> int:
        return x


class Crunch(Worker):
    def crunch(self, n: int) -> int:
        total = 0
        for i in range(n):
            total += i * i % 7
        return total


def one_at_a_time(proxy: Any, calls: int) -> float:
    call = proxy.echo
    start = time.perf_counter()
    for i in range(calls):
        call(i).result()
    return (time.perf_counter() - start) / calls


def pipelined(proxy: Any, calls: int) -> float:
    call = proxy.echo
    start = time.perf_counter()
    futures = [call(i) for i in range(calls)]
    for future in futures:
        future.result()
    return (time.perf_counter() - start) / calls


def crunch(n: int) -> int:
    return Crunch().crunch(n)


def executor_throughput(executor: ProcessPoolExecutor, tasks: int, size: int) -> float:
    """The machine's own scaling, for reference: the same calls on ``ProcessPoolExecutor``."""
    start = time.perf_counter()
    list(executor.map(crunch, [size] * tasks))
    return tasks / (time.perf_counter() - start)


def throughput(proxy: Any, tasks: int, size: int) -> float:
    start = time.perf_counter()
    wait([proxy.crunch(size) for _ in range(tasks)])
    return tasks / (time.perf_counter() - start)


def _rounds(measures: dict[str, Callable[[], float]], rounds: int) -> dict[str, list[float]]:
    for measure in measures.values():  # warm-up
        measure()
    samples: dict[str, list[float]] = {name: [] for name in measures}
    for _ in range(rounds):
        for name, measure in measures.items():
            samples[name].append(measure())
    return samples


def _ratio(samples: dict[str, list[float]], row: str, floor: str) -> float:
    return statistics.median(a / b for a, b in zip(samples[row], samples[floor]))


def dispatch(rounds: int, calls: int) -> None:
    single = Echo.options(mode="thread").init()
    pool = Echo.options(mode="thread", max_workers=4).init()
    bounded = Echo.options(mode="thread", max_workers=4, max_queued_tasks=64).init()
    proxies = {"single thread worker": single, "thread pool of 4": pool, "pool of 4, max_queued_tasks=64": bounded}
    try:
        for kind, measure, n in (("one at a time", one_at_a_time, calls), ("pipelined", pipelined, calls * 5)):
            samples = _rounds(
                {name: (lambda p=proxy, m=measure: m(p, n)) for name, proxy in proxies.items()},  # type: ignore[misc]
                rounds,
            )
            print(f"\nthread dispatch, {kind} ({n} calls per round, median of {rounds} rounds)")
            for name in proxies:
                ratio = _ratio(samples, name, "single thread worker")
                print(f"  {name:34} {statistics.median(samples[name]) * 1e6:8.2f} µs/call   {ratio:5.2f}×")
            target = _ratio(samples, "thread pool of 4", "single thread worker")
            verdict = "meets" if target <= 1.5 else "misses"
            print(f"  pool of 4 / single: {target:.2f}× ({verdict} the ≤ 1.5× target)")
    finally:
        for proxy in proxies.values():
            proxy.stop()


def cpu_throughput(rounds: int, tasks: int, size: int) -> None:
    single = Crunch.options(mode="process").init()
    pool = Crunch.options(mode="process", max_workers=2).init()
    one, two = ProcessPoolExecutor(1), ProcessPoolExecutor(2)
    try:
        samples = _rounds(
            {"process worker": lambda: throughput(single, tasks, size),
             "process pool of 2": lambda: throughput(pool, tasks, size),
             "ProcessPoolExecutor(1)": lambda: executor_throughput(one, tasks, size),
             "ProcessPoolExecutor(2)": lambda: executor_throughput(two, tasks, size)},
            rounds,
        )
    finally:
        single.stop()
        pool.stop()
        one.shutdown()
        two.shutdown()
    print(f"\nCPU-bound throughput ({tasks} calls of crunch({size}) per round, {os.cpu_count()} cores)")
    for name, values in samples.items():
        print(f"  {name:34} {statistics.median(values):8.1f} calls/s")
    gain = _ratio(samples, "process pool of 2", "process worker")
    print(f"  pool of 2 / one worker: {gain:.2f}× ({'meets' if gain >= 1.8 else 'misses'} the ≥ 1.8× target)")
    machine = _ratio(samples, "ProcessPoolExecutor(2)", "ProcessPoolExecutor(1)")
    print(f"  ProcessPoolExecutor 2 / 1: {machine:.2f}× (what this machine gives two processes now)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--calls", type=int, default=20_000, help="calls per dispatch round (×5 pipelined)")
    parser.add_argument("--tasks", type=int, default=40, help="CPU-bound calls per throughput round")
    parser.add_argument("--size", type=int, default=300_000, help="loop length of one CPU-bound call")
    args = parser.parse_args()
    dispatch(args.rounds, args.calls)
    cpu_throughput(args.rounds, args.tasks, args.size)


if __name__ == "__main__":
    main()
