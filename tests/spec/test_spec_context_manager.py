"""Guide section "Context Manager (Recommended)": ``with ... as worker`` stops the worker on exit."""

from __future__ import annotations

import pytest

from concurry import Worker

pytestmark = [pytest.mark.usefixtures("stop_workers"), pytest.mark.timeout(60)]

# "Works with all modes (sync, thread, process, asyncio, ray)"; ray is covered by its own suite.
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


def assert_stopped(worker: DataProcessor) -> None:
    with pytest.raises(RuntimeError):
        worker.process(10)


def test_context_manager_as_written() -> None:
    # Context manager automatically calls .stop() on exit
    with DataProcessor.options(mode="thread").init(3) as worker:
        future = worker.process(10)
        result = future.result()  # 30
        assert result == 30
    # Worker is automatically stopped here
    assert_stopped(worker)

    # Works with blocking mode
    with DataProcessor.options(mode="thread", blocking=True).init(3) as worker:
        result = worker.process(10)  # Returns 30 directly
        assert result == 30
        assert type(result) is int
    # Worker automatically stopped
    assert_stopped(worker)

    # Cleanup happens even on exceptions
    with pytest.raises(ValueError, match="^Result too small$"):
        with DataProcessor.options(mode="thread").init(3) as worker:
            result = worker.process(10).result()
            if result < 50:
                raise ValueError("Result too small")
    # Worker is still stopped despite exception
    assert_stopped(worker)


@MODES
def test_with_returns_the_proxy_and_stops_it(mode: str) -> None:
    builder = DataProcessor.options(mode=mode)
    proxy = builder.init(3)
    with proxy as worker:
        assert worker is proxy
        assert worker.process(10).result() == 30
    assert_stopped(worker)


@MODES
def test_with_blocking_mode(mode: str) -> None:
    with DataProcessor.options(mode=mode, blocking=True).init(3) as worker:
        result = worker.process(10)
        assert result == 30
        assert worker.get_count() == 1
    assert_stopped(worker)


@MODES
def test_with_stops_even_on_exceptions_and_does_not_swallow_them(mode: str) -> None:
    with pytest.raises(ValueError, match="^Result too small$"):
        with DataProcessor.options(mode=mode).init(3) as worker:
            result = worker.process(10).result()
            if result < 50:
                raise ValueError("Result too small")
    assert_stopped(worker)


@MODES
def test_explicit_stop_inside_with_is_fine(mode: str) -> None:
    with DataProcessor.options(mode=mode).init(3) as worker:
        assert worker.process(1).result() == 3
        worker.stop()
    assert_stopped(worker)
