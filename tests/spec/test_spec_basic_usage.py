"""Guide section "Basic Usage": defining a worker and using it."""

from __future__ import annotations

import pytest

from concurry import BaseFuture, Worker

pytestmark = [pytest.mark.usefixtures("stop_workers"), pytest.mark.timeout(60)]

MODES = pytest.mark.parametrize("mode", ["sync", "thread", "process", "asyncio"])


class DataProcessor(Worker):
    def __init__(self, multiplier: int):
        self.multiplier = multiplier
        self.count = 0

    def process(self, value: int) -> int:
        self.count += 1
        return value * self.multiplier

    def get_count(self) -> int:
        return self.count


def test_using_a_worker_as_written() -> None:
    # Initialize worker with thread execution
    worker = DataProcessor.options(mode="thread").init(3)

    # Call methods (returns futures)
    future = worker.process(10)
    result = future.result()  # 30
    assert isinstance(future, BaseFuture)
    assert result == 30

    # Check state
    count = worker.get_count().result()  # 1
    assert count == 1

    # Clean up
    worker.stop()
    with pytest.raises(RuntimeError):
        worker.process(10)


@MODES
def test_same_worker_same_results_in_every_mode(mode: str) -> None:
    """The overview: one API over every backend, futures for every call, isolated state, stoppable."""
    worker = DataProcessor.options(mode=mode).init(3)
    futures = [worker.process(v) for v in (10, 11, 12)]
    assert all(isinstance(f, BaseFuture) for f in futures)
    assert [f.result() for f in futures] == [30, 33, 36]
    count_future = worker.get_count()
    assert isinstance(count_future, BaseFuture)
    assert count_future.result() == 3
    worker.stop()
    with pytest.raises(RuntimeError):
        worker.get_count()


@MODES
def test_each_call_runs_once_in_submission_order(mode: str) -> None:
    worker = DataProcessor.options(mode=mode).init(1)
    results = [worker.process(v) for v in range(50)]
    assert [f.result() for f in results] == list(range(50))
    assert worker.get_count().result() == 50
    worker.stop()
