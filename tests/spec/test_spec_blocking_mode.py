"""Guide section "Blocking Mode": ``blocking=True`` returns results instead of futures."""

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

    def fail(self, message: str) -> int:
        raise KeyError(message)

    async def process_async(self, value: int) -> int:
        return value * self.multiplier


def test_blocking_mode_as_written() -> None:
    # Non-blocking (default)
    worker = DataProcessor.options(mode="thread").init(5)
    future = worker.process(10)  # Returns future
    result = future.result()  # Wait for result
    assert isinstance(future, BaseFuture)
    assert result == 50
    assert worker.blocking is False
    worker.stop()

    # Blocking mode
    worker = DataProcessor.options(mode="thread", blocking=True).init(5)
    result = worker.process(10)  # Returns 50 directly
    assert result == 50
    assert type(result) is int
    assert worker.blocking is True
    worker.stop()


@MODES
def test_blocking_mode_returns_values_in_every_mode(mode: str) -> None:
    worker = DataProcessor.options(mode=mode, blocking=True).init(5)
    assert worker.process(10) == 50
    assert worker.process(11) == 55
    assert worker.get_count() == 2
    assert worker.process_async(3) == 15
    worker.stop()


@MODES
def test_default_is_future_mode_in_every_mode(mode: str) -> None:
    worker = DataProcessor.options(mode=mode).init(5)
    future = worker.process(10)
    assert isinstance(future, BaseFuture)
    assert future.result() == 50
    worker.stop()


@MODES
def test_blocking_mode_raises_the_original_exception_at_the_call(mode: str) -> None:
    worker = DataProcessor.options(mode=mode, blocking=True).init(5)
    with pytest.raises(KeyError) as info:
        worker.fail("missing")
    assert info.value.args == ("missing",)
    assert worker.process(1) == 5  # the worker keeps serving
    worker.stop()
