"""Pools have the single worker's method types; Executor, @task, wait and gather keep result types."""

from __future__ import annotations

import concurrent.futures
from typing import Any, Iterator

from typing_extensions import assert_type

from concurry import Executor, Future, TaskWorker, gather, task, wait
from workers import DataProcessor, square

pool = DataProcessor.options(mode="thread", max_workers=4).init(2)
assert_type(pool.process(3), Future[int])
bounded = DataProcessor.options(mode="process", max_workers=2, load_balancing="least_active", max_queued_tasks=8).init(2)
assert_type(bounded.process(3), Future[int])
blocking = DataProcessor.options(mode="ray", max_workers=2, blocking=True).init(2)
assert_type(blocking.process(3), int)
assert_type(DataProcessor.options(mode="sync", max_workers=1).init(2).process(1), Future[int])

tasks = TaskWorker.options(mode="thread", max_workers=4).init()
assert_type(tasks.submit(square, 3), Future[int])
assert_type(tasks.map(square, [1, 2], progress=True), Iterator[int])

with Executor(mode="process", max_workers=2) as executor:
    assert_type(executor.submit(square, 2), concurrent.futures.Future[int])


@task(mode="thread", max_workers=2)
def double(x: int) -> int:
    return 2 * x


assert_type(double(2), Future[int])
assert_type(double.submit(2), Future[int])
assert_type(double.map([1, 2]), Iterator[int])

futures = [pool.process(i) for i in range(3)]
assert_type(wait(futures), tuple[set[Future[int]], set[Future[int]]])
assert_type(wait({"a": futures[0]}), tuple[dict[str, Future[int]], dict[str, Future[int]]])
assert_type(gather(futures), list[Any])

pool.process("3")  # E: process takes an int
DataProcessor.options(mode="thread", load_balancing="fastest")  # E: not a balancing policy
DataProcessor.options(mode="sync", max_queued_tasks=4)  # E: pools only
double("x")  # E: double takes an int
