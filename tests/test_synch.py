"""wait, gather, async_wait and async_gather over concurry and other futures; their progress bars."""

from __future__ import annotations

import asyncio
import concurrent.futures
import io
import threading
import time
from typing import Any

import pytest

from concurry import (
    ALL_COMPLETED,
    FIRST_COMPLETED,
    FIRST_EXCEPTION,
    SyncFuture,
    TaskWorker,
    Worker,
    async_gather,
    async_wait,
    gather,
    wait,
)

pytestmark = [pytest.mark.usefixtures("stop_workers"), pytest.mark.timeout(60)]


class Steps(Worker):
    def value(self, x: int) -> int:
        return x

    def after(self, gate: threading.Event, x: int) -> int:
        gate.wait(20)
        return x

    def fail(self, message: str) -> int:
        raise ValueError(message)


@pytest.fixture
def steps() -> Any:
    return Steps.options(mode="thread", max_workers=3).init()


def test_wait_all_completed(steps: Any) -> None:
    futures = [steps.value(i) for i in range(10)]
    done, not_done = wait(futures)
    assert done == set(futures) and not not_done


def test_wait_timeout_returns_what_is_done(steps: Any) -> None:
    gate = threading.Event()
    quick, held = steps.value(1), steps.after(gate, 2)
    start = time.monotonic()
    done, not_done = wait([quick, held], timeout=0.2)
    assert 0.15 < time.monotonic() - start < 5
    assert done == {quick} and not_done == {held}
    gate.set()


def test_wait_first_completed(steps: Any) -> None:
    gate = threading.Event()
    held = [steps.after(gate, i) for i in range(2)]
    quick = steps.value(5)
    done, not_done = wait([*held, quick], return_when=FIRST_COMPLETED, timeout=10)
    assert done == {quick} and not_done == set(held)
    gate.set()


def test_wait_first_exception(steps: Any) -> None:
    gate = threading.Event()
    held = steps.after(gate, 1)
    failing = steps.fail("boom")
    done, not_done = wait([held, failing], return_when=FIRST_EXCEPTION, timeout=10)
    assert done == {failing} and not_done == {held}
    gate.set()
    done, _ = wait([steps.value(1), steps.value(2)], return_when=FIRST_EXCEPTION)  # no failure: all of them
    assert len(done) == 2


def test_wait_over_a_dict_and_over_nothing(steps: Any) -> None:
    gate = threading.Event()
    done, not_done = wait({"a": steps.value(1), "b": steps.after(gate, 2)}, timeout=0.1)
    assert list(done) == ["a"] and list(not_done) == ["b"]
    gate.set()
    assert wait([]) == (set(), set())
    with pytest.raises(ValueError, match="return_when"):
        wait([], return_when="SOMETIMES")


def test_gather_keeps_input_order_over_mixed_futures(steps: Any) -> None:
    standard: concurrent.futures.Future[int] = concurrent.futures.Future()
    threading.Timer(0.05, standard.set_result, (30,)).start()
    mixed = [steps.value(10), SyncFuture.of_result(20), standard, 40]
    assert gather(mixed) == [10, 20, 30, 40]
    assert gather({"x": steps.value(1), "y": steps.value(2)}) == {"x": 1, "y": 2}
    assert gather([]) == []


def test_gather_raises_the_failure_or_returns_it(steps: Any) -> None:
    with pytest.raises(ValueError, match="boom"):
        gather([steps.value(1), steps.fail("boom")])
    results = gather([steps.value(1), steps.fail("boom")], return_exceptions=True)
    assert results[0] == 1 and isinstance(results[1], ValueError)


def test_gather_raises_on_timeout(steps: Any) -> None:
    gate = threading.Event()
    with pytest.raises(TimeoutError, match="1 of 2 futures"):
        gather([steps.value(1), steps.after(gate, 2)], timeout=0.1)
    gate.set()


def test_a_failure_ends_gather_before_the_slow_calls(steps: Any) -> None:
    gate = threading.Event()
    start = time.monotonic()
    with pytest.raises(ValueError):
        gather([steps.after(gate, 1), steps.fail("early")], timeout=10)
    assert time.monotonic() - start < 5
    gate.set()


def test_async_wait_and_gather(steps: Any) -> None:
    async def main() -> Any:
        gate = threading.Event()
        held = steps.after(gate, 2)
        done, not_done = await async_wait([steps.value(1), held], timeout=0.1)
        assert len(done) == 1 and not_done == {held}
        gate.set()
        gathered = await async_gather({"a": steps.value(1), "b": held})
        with pytest.raises(ValueError):
            await async_gather([steps.fail("x")])
        first, _ = await async_wait([steps.value(3)], return_when=FIRST_COMPLETED)
        return gathered, len(first)

    assert asyncio.run(main()) == ({"a": 1, "b": 2}, 1)


def test_progress_bars_advance_to_the_total(steps: Any) -> None:
    out = io.StringIO()
    assert gather([steps.value(i) for i in range(5)], progress={"file": out, "desc": "gathering"}) == list(range(5))
    assert "gathering" in out.getvalue() and "5/5" in out.getvalue()
    out = io.StringIO()
    done, _ = wait([steps.value(i) for i in range(4)], return_when=ALL_COMPLETED, progress={"file": out})
    assert len(done) == 4 and "4/4" in out.getvalue()


def test_progress_bar_counts_each_completion(monkeypatch: pytest.MonkeyPatch) -> None:
    import tqdm.auto

    updates: list[int] = []

    class Counting(tqdm.auto.tqdm):  # type: ignore[misc, name-defined]
        def update(self, n: float | None = 1) -> bool | None:
            updates.append(int(n or 0))
            return super().update(n)

    monkeypatch.setattr(tqdm.auto, "tqdm", Counting)
    pool = TaskWorker.options(mode="thread", max_workers=2).init()
    assert list(pool.map(abs, range(-6, 0), progress={"file": io.StringIO()})) == [6, 5, 4, 3, 2, 1]
    assert sum(updates) == 6
    updates.clear()
    gather([pool.submit(abs, -i) for i in range(9)], progress=True)
    assert sum(updates) == 9
