"""A tour of concurry: one worker class on every backend, futures and blocking mode, TaskWorker, async methods,
futures passed between workers, pools, retries and limits.

Run it with ``sh scripts/demo.sh`` (sets up .venv first) or ``.venv/bin/python examples/tour.py``.
"""

from __future__ import annotations

import asyncio
import time

from concurry import Executor, ResourceLimit, TaskWorker, Worker, gather, worker

MODES = ("sync", "thread", "asyncio", "process", "ray")


class DataProcessor(Worker):
    """A stateful worker: each instance keeps its own count."""

    def __init__(self, multiplier: int) -> None:
        self.multiplier = multiplier
        self.count = 0

    def process(self, value: int) -> int:
        self.count += 1
        return value * self.multiplier

    async def fetch(self, key: str) -> str:
        await asyncio.sleep(0.05)  # stands in for network I/O
        return f"{key}:{self.multiplier}"


@worker
class Greeter:
    """A plain class made a worker by the decorator."""

    def __init__(self, greeting: str) -> None:
        self.greeting = greeting

    def greet(self, name: str) -> str:
        return f"{self.greeting}, {name}!"


class Validator(Worker):
    def check(self, value: int) -> int:
        if value < 0:
            raise ValueError(f"value must be positive, got {value}")
        return value


def square(x: int) -> int:
    return x * x


async def slow_add(x: int, y: int) -> int:
    await asyncio.sleep(0.01)
    return x + y


def heading(text: str) -> None:
    print(f"\n== {text} ==")


def tour_modes() -> None:
    heading("One worker class, five backends (future mode)")
    for mode in MODES:
        started = time.perf_counter()
        with DataProcessor.options(mode=mode).init(3) as processor:
            future = processor.process(10)
            futures = [processor.process(i) for i in range(5)]
            results = [f.result() for f in futures]
            print(
                f"{mode:>8}: process(10) -> {future.result()} ({type(future).__name__}); "
                f"batch -> {results}; count={processor.count}; "
                f"fetch -> {processor.fetch('users').result()!r} "
                f"[{(time.perf_counter() - started) * 1000:.0f} ms incl. start/stop]"
            )


def tour_blocking() -> None:
    heading("Blocking mode: results instead of futures")
    for mode in MODES:
        with DataProcessor.options(mode=mode, blocking=True).init(5) as processor:
            print(f"{mode:>8}: process(10) -> {processor.process(10)}")


def tour_task_worker() -> None:
    heading("TaskWorker: submit and map arbitrary functions")
    for mode in MODES:
        with TaskWorker.options(mode=mode).init() as tasks:
            print(
                f"{mode:>8}: submit(lambda) -> {tasks.submit(lambda x: x * 100, 5).result()}, "
                f"map(square) -> {list(tasks.map(square, range(6)))}, "
                f"async fn -> {tasks.submit(slow_add, 3, 4).result()}"
            )


def tour_asyncio_concurrency() -> None:
    heading("Async methods run concurrently in asyncio mode")
    for mode in ("thread", "asyncio"):
        with DataProcessor.options(mode=mode).init(2) as processor:
            started = time.perf_counter()
            keys = [processor.fetch(f"k{i}") for i in range(20)]
            [k.result() for k in keys]
            print(f"{mode:>8}: 20 calls of a 50 ms async method took {time.perf_counter() - started:.2f} s")


def tour_errors_and_decorator() -> None:
    heading("Original exception types, in every mode")
    for mode in MODES:
        with Validator.options(mode=mode).init() as validator:
            try:
                validator.check(-5).result()
            except ValueError as error:
                print(f"{mode:>8}: caught ValueError: {error}")
    heading("@worker on a plain class")
    with Greeter.options(mode="thread").init("Hello") as greeter:
        print(greeter.greet("concurry").result())


class FlakyService(Worker):
    """Fails twice, then answers: retries run inside the worker, whatever the mode."""

    def __init__(self) -> None:
        self.attempts = 0

    def call(self) -> str:
        self.attempts += 1
        if self.attempts < 3:
            raise ConnectionError(f"attempt {self.attempts} failed")
        with self.limits.acquire(requested={"connections": 1}):
            return f"answered on attempt {self.attempts}"


def tour_composition() -> None:
    heading("Futures passed between workers of different modes are unwrapped")
    with DataProcessor.options(mode="thread").init(10) as source, DataProcessor.options(mode="process").init(2) as sink:
        pending = source.process(5)  # a thread-mode future: 50
        chained = sink.process(pending)  # returns at once; runs in the child once 50 is ready
        print(f"thread -> process: {chained.result()}")
    with DataProcessor.options(mode="ray").init(3) as first, DataProcessor.options(mode="ray").init(7) as second:
        print(f"ray -> ray (object reference passed, not fetched): {second.process(first.process(2)).result()}")


def tour_pools() -> None:
    heading("Pools: the same typed methods, N workers wide")
    for mode in ("thread", "process", "ray"):
        with DataProcessor.options(mode=mode, max_workers=2).init(4) as pool:
            print(f"{mode:>8}: gather of 6 calls -> {gather([pool.process(i) for i in range(6)])}")
    with Executor(mode="process", max_workers=2) as executor:
        print(f"Executor (a concurrent.futures.Executor): {list(executor.map(square, range(5)))}")


def tour_retries() -> None:
    heading("Retries and limits run inside the worker")
    for mode in MODES:
        with FlakyService.options(
            mode=mode,
            num_retries=3,
            retry_on=[ConnectionError],
            retry_wait=0.01,
            limits=[ResourceLimit(key="connections", capacity=1)],
        ).init() as service:
            print(f"{mode:>8}: {service.call().result()}")


def main() -> None:
    import ray

    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    try:
        tour_modes()
        tour_blocking()
        tour_task_worker()
        tour_asyncio_concurrency()
        tour_errors_and_decorator()
        tour_composition()
        tour_pools()
        tour_retries()
    finally:
        ray.shutdown()


if __name__ == "__main__":
    main()
