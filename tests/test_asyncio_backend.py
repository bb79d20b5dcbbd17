"""Asyncio mode: async methods concurrently on an event-loop thread, sync methods on a thread of their own.

Concurrency is proven by counting coroutines inside a method at once, never by timing.
"""

from __future__ import annotations

import asyncio
import gc
import os
import subprocess
import sys
import textwrap
import threading
import time
import weakref
from typing import Any, Callable

import pytest

from _processes import worker_threads

from concurry import CancelledError, ConcurrentFuture, TaskWorker, Worker, WorkerStoppedError

pytestmark = [pytest.mark.usefixtures("stop_workers"), pytest.mark.timeout(30)]

IN_FLIGHT = 30
WAIT = 10.0  # generous bound on waits that succeed at once when the backend is right


# -- the guide's examples ----------------------------------------------------------------------------------------

class DataProcessor(Worker):
    def __init__(self, multiplier: int):
        self.multiplier = multiplier
        self.count = 0

    def process(self, value: int) -> int:
        self.count += 1
        return value * self.multiplier


class AsyncDataFetcher(Worker):
    def __init__(self, base_url: str):
        self.base_url = base_url
        self.fetch_count = 0

    async def fetch_data(self, endpoint: str) -> dict:
        await asyncio.sleep(0.1)
        self.fetch_count += 1
        return {"url": f"{self.base_url}/{endpoint}", "data": "..."}

    def get_count(self) -> int:
        return self.fetch_count


class HybridWorker(Worker):
    def __init__(self):
        self.results = []

    async def async_operation(self, x: int) -> int:
        await asyncio.sleep(0.01)
        return x * 2

    def sync_operation(self, x: int) -> int:
        return x + 10

    async def process_batch(self, items: list) -> list:
        tasks = [self.async_operation(item) for item in items]
        return await asyncio.gather(*tasks)


class AsyncValidator(Worker):
    async def validate_async(self, value: int) -> int:
        await asyncio.sleep(0.01)
        if value < 0:
            raise ValueError("Value must be positive")
        return value


async def async_compute(x: int, y: int) -> int:
    await asyncio.sleep(0.01)
    return x**2 + y**2


def test_guide_asyncio_mode_runs_a_sync_worker() -> None:
    worker = DataProcessor.options(mode="asyncio").init(2)
    future = worker.process(10)
    assert isinstance(future, ConcurrentFuture)
    assert future.result() == 20
    assert worker.count == 1
    worker.stop()


def test_guide_async_data_fetcher() -> None:
    worker = AsyncDataFetcher.options(mode="asyncio").init("https://api.example.com")
    future = worker.fetch_data("users")
    assert isinstance(future, ConcurrentFuture)
    assert future.result() == {"url": "https://api.example.com/users", "data": "..."}
    assert worker.get_count().result() == 1
    worker.stop()


def test_guide_hybrid_worker() -> None:
    worker = HybridWorker.options(mode="asyncio").init()
    assert worker.async_operation(5).result() == 10
    assert worker.sync_operation(5).result() == 15
    assert worker.process_batch([1, 2, 3, 4, 5]).result() == [2, 4, 6, 8, 10]
    worker.stop()


def test_guide_async_validator_keeps_the_exception() -> None:
    worker = AsyncValidator.options(mode="asyncio").init()
    with pytest.raises(ValueError, match="^Value must be positive$"):
        worker.validate_async(-5).result()
    assert worker.validate_async(5).result() == 5
    worker.stop()


def test_guide_task_worker_with_an_async_function() -> None:
    worker = TaskWorker.options(mode="asyncio").init()
    future = worker.submit(async_compute, 3, 4)
    assert isinstance(future, ConcurrentFuture)
    assert future.result() == 25
    assert worker.submit(lambda x: x * 100, 5).result() == 500
    assert list(worker.map(async_compute, [1, 2, 3], [1, 1, 1])) == [2, 5, 10]
    worker.stop()


def test_blocking_mode_returns_values() -> None:
    worker = HybridWorker.options(mode="asyncio", blocking=True).init()
    assert worker.async_operation(4) == 8
    assert worker.sync_operation(4) == 14
    worker.stop()


# -- routing and concurrency ---------------------------------------------------------------------------------------

class Gate(Worker):
    """Counts coroutines inside ``enter`` at once; the ``expected``-th one opens the gate for all."""

    def __init__(self, expected: int):
        self.expected = expected
        self.inside = 0
        self.peak = 0
        self.opened = asyncio.Event()
        self.loop = asyncio.get_running_loop()

    async def enter(self, tag: int) -> int:
        self.inside += 1
        self.peak = max(self.peak, self.inside)
        if self.inside == self.expected:
            self.opened.set()
        try:
            await asyncio.wait_for(self.opened.wait(), WAIT)
        finally:
            self.inside -= 1
        return tag

    def enter_via_sync(self, tag: int) -> Any:
        """A sync method that returns a coroutine: the coroutine must run on the loop, not block this thread."""
        return self.enter(tag)

    async def open_gate(self) -> None:
        self.opened.set()

    async def same_loop(self) -> bool:
        return asyncio.get_running_loop() is self.loop

    async def async_thread(self) -> str:
        return threading.current_thread().name

    def sync_thread(self) -> str:
        return threading.current_thread().name

    def hold_sync_thread(self, release: threading.Event, started: threading.Event) -> str:
        started.set()
        assert release.wait(WAIT)
        return "sync done"


def test_async_calls_run_concurrently() -> None:
    worker = Gate.options(mode="asyncio").init(IN_FLIGHT)
    futures = [worker.enter(i) for i in range(IN_FLIGHT)]
    assert [f.result() for f in futures] == list(range(IN_FLIGHT))
    assert worker.peak == IN_FLIGHT
    worker.stop()


def test_coroutines_returned_by_sync_methods_run_concurrently_on_the_loop() -> None:
    worker = Gate.options(mode="asyncio").init(IN_FLIGHT)
    futures = [worker.enter_via_sync(i) for i in range(IN_FLIGHT)]
    assert [f.result() for f in futures] == list(range(IN_FLIGHT))
    assert worker.peak == IN_FLIGHT
    worker.stop()


def test_sync_and_async_methods_run_on_separate_threads() -> None:
    worker = Gate.options(mode="asyncio").init(1)
    loop_thread = worker.async_thread().result()
    sync_thread = worker.sync_thread().result()
    assert loop_thread != sync_thread
    assert loop_thread != threading.current_thread().name
    assert worker.same_loop().result() is True  # __init__ ran on the worker's own loop
    worker.stop()


def test_a_long_async_call_does_not_block_sync_methods() -> None:
    worker = Gate.options(mode="asyncio").init(2)
    waiting = worker.enter(1)  # the gate opens only when a second coroutine enters, or on open_gate()
    assert worker.sync_thread().result(WAIT).startswith("concurry-asyncio-sync")
    assert not waiting.done()
    worker.open_gate().result(WAIT)
    assert waiting.result(WAIT) == 1
    worker.stop()


def test_a_long_sync_call_does_not_block_async_methods() -> None:
    worker = Gate.options(mode="asyncio").init(IN_FLIGHT)
    release, started = threading.Event(), threading.Event()
    held = worker.hold_sync_thread(release, started)
    assert started.wait(WAIT)
    futures = [worker.enter(i) for i in range(IN_FLIGHT)]
    assert [f.result(WAIT) for f in futures] == list(range(IN_FLIGHT))
    assert held.running()
    release.set()
    assert held.result(WAIT) == "sync done"
    worker.stop()


def test_task_worker_async_functions_skip_the_sync_thread_and_run_concurrently() -> None:
    state = {"inside": 0, "peak": 0}
    opened = asyncio.Event()

    async def enter(tag: int) -> int:
        state["inside"] += 1
        state["peak"] = max(state["peak"], state["inside"])
        if state["inside"] == IN_FLIGHT:
            opened.set()
        await asyncio.wait_for(opened.wait(), WAIT)
        state["inside"] -= 1
        return tag

    release, started = threading.Event(), threading.Event()
    worker = TaskWorker.options(mode="asyncio").init()
    held = worker.submit(lambda: (started.set(), release.wait(WAIT))[1])  # occupies the sync thread
    assert started.wait(WAIT)
    futures = [worker.submit(enter, i) for i in range(IN_FLIGHT)]
    assert [f.result(WAIT) for f in futures] == list(range(IN_FLIGHT))
    assert state["peak"] == IN_FLIGHT
    assert not held.done()
    release.set()
    assert held.result(WAIT) is True
    worker.stop()


class OwnSubmit(TaskWorker):
    def submit(self, fn: Callable[..., Any], /, *args: Any, **kwargs: Any) -> Any:
        return fn(*args, **kwargs)


def test_an_overridden_submit_still_runs_async_functions_on_the_loop() -> None:
    state = {"inside": 0, "peak": 0}
    opened = asyncio.Event()

    async def enter() -> int:
        state["inside"] += 1
        state["peak"] = max(state["peak"], state["inside"])
        if state["inside"] == IN_FLIGHT:
            opened.set()
        await asyncio.wait_for(opened.wait(), WAIT)
        return state["peak"]

    worker = OwnSubmit.options(mode="asyncio").init()
    futures = [worker.submit(enter) for _ in range(IN_FLIGHT)]
    assert max(f.result(WAIT) for f in futures) == IN_FLIGHT
    worker.stop()


def test_futures_passed_as_arguments_are_unwrapped() -> None:
    worker = HybridWorker.options(mode="asyncio").init()
    assert worker.async_operation(worker.async_operation(1)).result() == 4
    assert worker.sync_operation(worker.async_operation(1)).result() == 12
    worker.stop()


# -- errors ----------------------------------------------------------------------------------------------------------

class QuotaExceeded(Exception):
    pass


class Failing(Worker):
    async def async_fail(self, n: int) -> int:
        await asyncio.sleep(0)
        raise QuotaExceeded(f"quota {n} exceeded")

    def sync_fail(self, key: str) -> int:
        return {}[key]


def test_exceptions_keep_their_type_and_message() -> None:
    worker = Failing.options(mode="asyncio").init()
    with pytest.raises(QuotaExceeded, match="^quota 3 exceeded$"):
        worker.async_fail(3).result()
    error = worker.sync_fail("missing").exception()
    assert type(error) is KeyError and error.args == ("missing",)
    worker.stop()


def test_task_worker_async_function_errors_keep_their_type() -> None:
    async def bad(n: int) -> int:
        raise QuotaExceeded(f"task quota {n}")

    worker = TaskWorker.options(mode="asyncio").init()
    with pytest.raises(QuotaExceeded, match="^task quota 7$"):
        worker.submit(bad, 7).result()
    worker.stop()


class BrokenSetup(Worker):
    def __init__(self, reason: str):
        raise PermissionError(f"cannot open {reason}")

    async def never(self) -> None:
        pass


def worker_threads() -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name.startswith("concurry-asyncio")]


def test_setup_errors_raise_at_init_and_leave_no_threads() -> None:
    before = len(worker_threads())
    with pytest.raises(PermissionError, match="^cannot open the vault$"):
        BrokenSetup.options(mode="asyncio").init("the vault")
    assert len(worker_threads()) == before


# -- cancel and running() ---------------------------------------------------------------------------------------------

class Recorder(Worker):
    def __init__(self):
        self.log: list[str] = []
        self.gate = asyncio.Event()

    def hold(self, release: threading.Event, started: threading.Event) -> str:
        started.set()
        assert release.wait(WAIT)
        return "held"

    def record(self, item: str) -> str:
        self.log.append(item)
        return item

    async def record_async(self, item: str) -> str:
        self.log.append(item)
        return item

    async def block_loop(self, release: threading.Event, started: threading.Event) -> str:
        started.set()
        assert release.wait(WAIT)  # deliberately blocks the loop so the next async call stays queued
        return "loop released"

    async def wait_gate(self, started: threading.Event) -> str:
        started.set()
        await self.gate.wait()
        return "gate passed"

    async def open_gate(self) -> None:
        self.gate.set()

    def get_log(self) -> list[str]:
        return list(self.log)


def test_cancel_a_queued_sync_call_and_not_a_running_one() -> None:
    worker = Recorder.options(mode="asyncio").init()
    release, started = threading.Event(), threading.Event()
    running = worker.hold(release, started)
    assert started.wait(WAIT)
    queued = worker.record("never")
    assert running.running()
    assert running.cancel() is False
    assert queued.cancel() is True
    assert queued.cancelled()
    release.set()
    assert running.result(WAIT) == "held"
    with pytest.raises(CancelledError):
        queued.result()
    assert worker.record("after").result(WAIT) == "after"
    assert worker.get_log().result() == ["after"]
    worker.stop()


def test_cancel_a_queued_async_call_and_not_a_running_one() -> None:
    worker = Recorder.options(mode="asyncio").init()
    release, started = threading.Event(), threading.Event()
    blocker = worker.block_loop(release, started)
    assert started.wait(WAIT)
    queued = worker.record_async("never")
    assert blocker.running()
    assert blocker.cancel() is False
    assert queued.cancel() is True
    release.set()
    assert blocker.result(WAIT) == "loop released"
    with pytest.raises(CancelledError):
        queued.result()
    assert worker.record_async("after").result(WAIT) == "after"
    assert worker.get_log().result() == ["after"]

    started = threading.Event()
    waiting = worker.wait_gate(started)
    assert started.wait(WAIT)
    assert waiting.running()
    assert waiting.cancel() is False
    worker.open_gate().result(WAIT)
    assert waiting.result(WAIT) == "gate passed"
    assert not waiting.running()
    worker.stop()


# -- awaiting from async code ------------------------------------------------------------------------------------------

class Sleeper(Worker):
    async def sleep_then(self, seconds: float, value: int) -> int:
        await asyncio.sleep(seconds)
        return value

    def sleep_sync(self, seconds: float, value: int) -> int:
        time.sleep(seconds)
        return value


def test_awaiting_a_call_does_not_spin() -> None:
    worker = Sleeper.options(mode="asyncio").init()

    async def main() -> tuple[int, int]:
        return await worker.sleep_then(1.0, 7), await worker.sleep_sync(0.01, 8)

    cpu = time.process_time()
    assert asyncio.run(main()) == (7, 8)
    assert time.process_time() - cpu < 0.05
    worker.stop()


# -- stop -------------------------------------------------------------------------------------------------------------

def test_stop_is_idempotent_and_later_calls_raise() -> None:
    worker = HybridWorker.options(mode="asyncio").init()
    worker.stop()
    worker.stop()
    for call in (lambda: worker.async_operation(1), lambda: worker.sync_operation(1)):
        with pytest.raises(WorkerStoppedError, match="^worker HybridWorker is stopped; create a new one"):
            call()
    assert "stopped" in repr(worker)


def test_stop_lets_pending_calls_finish_and_closes_the_loop() -> None:
    worker = Gate.options(mode="asyncio").init(IN_FLIGHT)
    loop = worker.loop
    threads = worker_threads()
    async_calls = [worker.enter(i) for i in range(IN_FLIGHT)]
    sync_calls = [worker.sync_thread() for _ in range(5)]
    worker.stop(timeout=WAIT)
    assert [f.result(0) for f in async_calls] == list(range(IN_FLIGHT))
    assert all(f.result(0).startswith("concurry-asyncio-sync") for f in sync_calls)
    assert loop.is_closed()
    assert not any(t.is_alive() for t in threads if t.name.endswith("-Gate"))


def test_stop_past_its_timeout_resolves_every_call() -> None:
    worker = Recorder.options(mode="asyncio").init()
    release, sync_started, async_started = threading.Event(), threading.Event(), threading.Event()
    running_sync = worker.hold(release, sync_started)
    queued_sync = worker.record("never")
    running_async = worker.wait_gate(async_started)
    assert sync_started.wait(WAIT) and async_started.wait(WAIT)
    release_later = threading.Timer(0.5, release.set)
    release_later.start()
    worker.stop(timeout=0.2)
    assert queued_sync.cancelled()
    with pytest.raises(CancelledError, match="^worker Recorder was stopped before this call finished$"):
        running_async.result(0)
    assert not running_async.cancelled()  # it had started: it was interrupted, not cancelled
    assert running_sync.result(WAIT) == "held"  # a sync call cannot be interrupted; it finishes on its own
    release_later.join()


class Stubborn(Worker):
    async def ignore_cancel(self, started: threading.Event) -> str:
        started.set()
        while True:
            try:
                await asyncio.sleep(10)
            except asyncio.CancelledError:
                continue


def test_a_coroutine_that_ignores_cancellation_does_not_hold_stop() -> None:
    worker = Stubborn.options(mode="asyncio").init()
    started = threading.Event()
    future = worker.ignore_cancel(started)
    assert started.wait(WAIT)
    worker.stop(timeout=0)
    with pytest.raises(CancelledError, match="was stopped before this call finished"):
        future.result(0)


class SelfStopping(Worker):
    async def stop_from_loop(self, proxy: Any) -> str:
        proxy.stop()
        return "stopped from the loop"

    def stop_from_sync_thread(self, proxy: Any) -> str:
        proxy.stop()
        return "stopped from the sync thread"


@pytest.mark.parametrize(
    ("method", "expected"),
    [("stop_from_loop", "stopped from the loop"), ("stop_from_sync_thread", "stopped from the sync thread")],
)
def test_stop_from_inside_the_worker_does_not_deadlock(method: str, expected: str) -> None:
    worker = SelfStopping.options(mode="asyncio").init()
    threads = worker_threads()
    future = getattr(worker, method)(worker)
    assert future.result(WAIT) == expected
    with pytest.raises(WorkerStoppedError):
        worker.stop_from_loop(worker)
    deadline = time.monotonic() + WAIT
    while any(t.is_alive() for t in threads if t.name.endswith("-SelfStopping")) and time.monotonic() < deadline:
        time.sleep(0.01)
    assert not any(t.is_alive() for t in threads if t.name.endswith("-SelfStopping"))


def test_a_dropped_proxy_is_reclaimed_and_its_threads_end() -> None:
    worker = HybridWorker.options(mode="asyncio").init()
    assert worker.async_operation(1).result() == 2
    threads = [t for t in worker_threads() if t.name.endswith("-HybridWorker")]
    assert len(threads) == 2
    ref = weakref.ref(worker)
    del worker
    gc.collect()
    assert ref() is None
    for thread in threads:
        thread.join(WAIT)
        assert not thread.is_alive()


@pytest.mark.timeout(60)
def test_200_start_stop_cycles_leave_no_threads_or_file_descriptors() -> None:
    threads_before = worker_threads()  # a thread of an earlier test may end meanwhile; none may start
    fds_before = len(os.listdir("/proc/self/fd"))
    for i in range(200):
        worker = HybridWorker.options(mode="asyncio").init()
        assert worker.sync_operation(i).result() == i + 10
        worker.async_operation(i)  # left pending: stop() finishes it
        worker.stop()
    assert worker_threads() <= threads_before
    assert len(os.listdir("/proc/self/fd")) <= fds_before


def test_the_interpreter_exits_cleanly_with_a_live_worker() -> None:
    script = textwrap.dedent(
        """
        import asyncio
        from concurry import Worker

        class Live(Worker):
            async def late(self):
                await asyncio.sleep(0.2)
                print("pending call finished", flush=True)

            def now(self):
                return "sync ok"

        worker = Live.options(mode="asyncio").init()
        print(worker.now().result(), flush=True)
        worker.late()
        """
    )
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=20)
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines() == ["sync ok", "pending call finished"]
    assert done.stderr == ""
