"""Guide section "Execution Modes" (sync, thread, process, asyncio; ray has its own suite)."""

from __future__ import annotations

import asyncio
import os
import threading

import pytest

from concurry import ConcurrentFuture, SyncFuture, Worker

pytestmark = [pytest.mark.usefixtures("stop_workers"), pytest.mark.timeout(60)]


def future_kind(future: object) -> type:
    """``SyncFuture`` or ``ConcurrentFuture``: the kind the guide names (a backend may return a subclass of it)."""
    kinds = [kind for kind in (SyncFuture, ConcurrentFuture) if isinstance(future, kind)]
    assert len(kinds) == 1, f"{type(future).__name__} is not exactly one of SyncFuture and ConcurrentFuture"
    return kinds[0]


class DataProcessor(Worker):
    def __init__(self, multiplier: int):
        self.multiplier = multiplier
        self.count = 0

    def process(self, value: int) -> int:
        self.count += 1
        return value * self.multiplier

    def get_count(self) -> int:
        return self.count


class Where(Worker):
    """Reports where its methods run."""

    def __init__(self) -> None:
        self.flag = threading.Event()

    def sync_thread(self) -> int:
        return threading.get_ident()

    async def async_thread(self) -> int:
        return threading.get_ident()

    def pid(self) -> int:
        return os.getpid()

    def wait_for_flag(self) -> bool:
        """A sync method that blocks until an async method sets the flag."""
        return self.flag.wait(10)

    async def set_flag(self) -> bool:
        self.flag.set()
        return True


class Rendezvous(Worker):
    """Two async calls that can only finish if they run concurrently."""

    def __init__(self) -> None:
        self.events: dict[str, asyncio.Event] = {}

    def _event(self, name: str) -> asyncio.Event:
        if name not in self.events:
            self.events[name] = asyncio.Event()
        return self.events[name]

    async def meet(self, mine: str, theirs: str) -> str:
        self._event(mine).set()
        await asyncio.wait_for(self._event(theirs).wait(), 10)
        return f"{mine} met {theirs}"


def test_sync_mode_as_written() -> None:
    worker = DataProcessor.options(mode="sync").init(2)
    future = worker.process(10)
    assert future.done()  # already computed
    result = future.result()  # 20 (already computed)
    assert result == 20
    assert future_kind(future) is SyncFuture
    worker.stop()


def test_sync_mode_runs_in_the_callers_thread() -> None:
    worker = Where.options(mode="sync").init()
    assert worker.sync_thread().result() == threading.get_ident()
    worker.stop()


def test_thread_mode_as_written() -> None:
    worker = DataProcessor.options(mode="thread").init(2)
    future = worker.process(10)
    result = future.result()  # Blocks until complete
    assert result == 20
    assert future_kind(future) is ConcurrentFuture
    worker.stop()


def test_thread_mode_runs_in_one_dedicated_thread() -> None:
    worker = Where.options(mode="thread").init()
    idents = {worker.sync_thread().result() for _ in range(5)}
    assert len(idents) == 1
    assert threading.get_ident() not in idents
    worker.stop()


@pytest.mark.parametrize("mp_context", ["fork", "spawn", "forkserver"])
def test_process_mode_as_written(mp_context: str) -> None:
    worker = DataProcessor.options(
        mode="process",
        mp_context=mp_context,  # or "spawn", "forkserver"
    ).init(2)
    future = worker.process(10)
    result = future.result()
    assert result == 20
    assert future_kind(future) is ConcurrentFuture
    assert worker.mp_context == mp_context
    worker.stop()


@pytest.mark.parametrize("mp_context", ["fork", "spawn", "forkserver"])
def test_process_mode_runs_in_another_process(mp_context: str) -> None:
    worker = Where.options(mode="process", mp_context=mp_context).init()
    child = worker.pid().result()
    assert child != os.getpid()
    assert worker.pid().result() == child  # one child per worker
    worker.stop()


def test_process_mode_default_context_is_fork() -> None:
    worker = DataProcessor.options(mode="process").init(2)
    assert worker.mp_context == "fork"
    assert worker.process(10).result() == 20
    worker.stop()


def test_asyncio_mode_as_written() -> None:
    worker = DataProcessor.options(mode="asyncio").init(2)
    future = worker.process(10)
    result = future.result()
    assert result == 20
    assert future_kind(future) is ConcurrentFuture
    worker.stop()


def test_asyncio_mode_routes_sync_and_async_methods_to_different_threads() -> None:
    """Event loop thread for async methods, a dedicated thread for sync methods."""
    worker = Where.options(mode="asyncio").init()
    sync_future = worker.sync_thread()
    async_future = worker.async_thread()
    assert future_kind(sync_future) is ConcurrentFuture
    assert future_kind(async_future) is ConcurrentFuture
    sync_thread, loop_thread = sync_future.result(), async_future.result()
    assert sync_thread != loop_thread
    assert threading.get_ident() not in (sync_thread, loop_thread)
    assert worker.sync_thread().result() == sync_thread  # always the same dedicated thread
    assert worker.async_thread().result() == loop_thread
    worker.stop()


def test_asyncio_mode_sync_methods_do_not_block_the_event_loop() -> None:
    worker = Where.options(mode="asyncio").init()
    waiting = worker.wait_for_flag()  # blocks the sync thread until the event loop sets the flag
    assert worker.set_flag().result(timeout=10) is True
    assert waiting.result(timeout=10) is True
    worker.stop()


def test_asyncio_mode_runs_async_methods_concurrently() -> None:
    worker = Rendezvous.options(mode="asyncio").init()
    first = worker.meet("a", "b")  # can only finish once "b" has started
    second = worker.meet("b", "a")
    assert first.result(timeout=20) == "a met b"
    assert second.result(timeout=20) == "b met a"
    worker.stop()
