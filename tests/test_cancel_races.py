"""Races between the caller and a running worker thread: cancel() and stop() stay exact under contention.

The thread and asyncio backends take no lock on the call path (see ``concurry.core.future`` and
``concurry.backends.thread``), so these tests run thousands of calls while other threads cancel them or stop the
worker, and check the invariants that must hold whatever the interleaving: a call whose ``cancel()`` returned
True never ran; every other call ran exactly once and its future has its result; a call made while ``stop()``
runs is either refused at once with ``WorkerStoppedError`` or gets a future that resolves; nothing hangs.
(Process mode has its own version in ``test_process_backend.py``.)
"""

from __future__ import annotations

import sys
import threading
import time
from _thread import LockType
from collections import Counter
from concurrent.futures import CancelledError
from typing import Any, Iterator, Optional

import pytest

from concurry import Future, Worker, WorkerStoppedError

pytestmark = [pytest.mark.usefixtures("stop_workers"), pytest.mark.timeout(120)]

in_process_modes = pytest.mark.parametrize("mode", ["thread", "asyncio", "thread-pool"])
POOL_SIZE = 3


def recorder(mode: str, log: list[int], blocking: bool = False) -> Any:
    """A ``Recorder`` of ``mode``; "thread-pool" is a thread pool, whose call functions pick the member themselves."""
    if mode == "thread-pool":
        return Recorder.options(mode="thread", max_workers=POOL_SIZE, blocking=blocking).init(log)
    return Recorder.options(mode=mode, blocking=blocking).init(log)


@pytest.fixture(autouse=True)
def frequent_thread_switches() -> Iterator[None]:
    """Switch threads every few bytecodes instead of every 5 ms, so the races these tests are about do happen."""
    interval = sys.getswitchinterval()
    sys.setswitchinterval(1e-6)
    yield
    sys.setswitchinterval(interval)


class Recorder(Worker):
    """Appends each call's number to a list shared with the test (thread and asyncio workers share its memory)."""

    def __init__(self, log: list[int]) -> None:
        self.log = log

    def record(self, i: int) -> int:
        self.log.append(i)
        return i

    def record_pair(self, i: int, tag: str) -> tuple[int, str]:
        self.log.append(i)
        return i, tag

    def hold(self, gate: threading.Event) -> bool:
        return gate.wait(30)


def settle(worker: Any, futures: dict[int, Future[Any]], cancelled: set[int], log: list[int]) -> None:
    """Every call either was cancelled and never ran, or ran exactly once and returned its number."""
    results = {i: future.result(timeout=30) for i, future in futures.items() if i not in cancelled}
    for last in range(-1, -1 - POOL_SIZE, -1):  # queued last on each member (round robin): every call before has
        assert worker.record(last).result(timeout=30) == last  # been run or skipped
    counts = Counter(log)
    assert all(n == 1 for n in counts.values()), f"calls that ran twice: {[i for i, n in counts.items() if n > 1]}"
    for i in cancelled:
        assert futures[i].cancelled() and futures[i].done()
        with pytest.raises(CancelledError):
            futures[i].result(timeout=0)
        assert i not in counts, f"call {i} ran although cancel() returned True"
    for i, value in results.items():
        assert (value if isinstance(value, int) else value[0]) == i
        assert counts[i] == 1, f"call {i} has a result but did not run exactly once"


@in_process_modes
def test_cancel_while_the_worker_runs_through_the_queue_is_exact(mode: str) -> None:
    log: list[int] = []
    worker = recorder(mode, log)
    futures: dict[int, Future[Any]] = {}
    cancelled: set[int] = set()
    for start in range(0, 10_000, 2_000):
        batch = {i: (worker.record(i) if i % 3 else worker.record_pair(i, "t")) for i in range(start, start + 2_000)}
        futures.update(batch)
        cancelled.update(i for i in range(start + 1, start + 2_000, 2) if batch[i].cancel())
    settle(worker, futures, cancelled, log)  # and the worker keeps serving
    worker.stop()


@in_process_modes
def test_cancel_from_another_thread_while_calls_are_made_is_exact(mode: str) -> None:
    log: list[int] = []
    worker = recorder(mode, log)
    futures: dict[int, Future[Any]] = {}
    made = threading.Condition()
    cancelled: set[int] = set()
    total = 6_000

    def canceller() -> None:
        seen = 0
        while seen < total:
            with made:
                made.wait_for(lambda: len(futures) > seen, timeout=30)
                ready = list(futures.items())[seen:]
            for i, future in ready:
                if i % 2 and future.cancel():
                    cancelled.add(i)
            seen += len(ready)

    thread = threading.Thread(target=canceller)
    thread.start()
    for i in range(total):
        future = worker.record(i)
        with made:
            futures[i] = future
            made.notify()
    thread.join(60)
    assert not thread.is_alive()
    settle(worker, futures, cancelled, log)
    worker.stop()


@in_process_modes
def test_waiters_and_callbacks_racing_completion_each_get_the_outcome_once(mode: str) -> None:
    """Waiters' locks and done-callbacks share one list, which the worker empties as it completes a call while
    other threads add to it: each callback runs exactly once and each waiter returns its call's result, including
    waiters that time out and wait again."""
    log: list[int] = []
    worker = recorder(mode, log)
    total = 2_000
    gate = threading.Event()
    held = [worker.hold(gate) for _ in range(POOL_SIZE if mode == "thread-pool" else 1)]  # one per pool member
    futures = [worker.record(i) for i in range(total)]
    outcomes: Counter[int] = Counter()
    counted = threading.Condition()
    returned: list[list[int]] = [[], []]

    def on_done(future: Future[Any]) -> None:
        with counted:
            outcomes[future.result(timeout=0)] += 1
            counted.notify_all()

    def blocking_watcher(order: range, returned: list[int]) -> None:
        for i in order:
            futures[i].add_done_callback(on_done)
            returned.append(futures[i].result())  # a lost wake-up leaves this thread waiting: join() fails

    def polling_watcher(order: range, returned: list[int]) -> None:
        for i in order:
            futures[i].add_done_callback(on_done)
            while True:
                try:
                    returned.append(futures[i].result(timeout=0.0005))
                    break
                except TimeoutError:
                    continue

    orders = (range(total), range(total - 1, -1, -1))  # from both ends, so each meets calls running and queued
    threads = [
        threading.Thread(target=watcher, args=(order, into), daemon=True)
        for watcher, order, into in zip((blocking_watcher, polling_watcher), orders, returned)
    ]
    for thread in threads:
        thread.start()
    waiting = (futures[0], futures[-1])  # the calls are held: both watchers come to wait on their first one
    deadline = time.monotonic() + 30
    while not all(any(type(w) is LockType for w in list(f._callbacks or [])) for f in waiting):
        assert time.monotonic() < deadline, "the watchers never waited"
        time.sleep(0.001)
    gate.set()
    assert [h.result(timeout=30) for h in held] == [True] * len(held)
    for thread in threads:
        thread.join(60)
        assert not thread.is_alive()
    assert returned == [list(orders[0]), list(orders[1])]
    with counted:
        assert counted.wait_for(lambda: sum(outcomes.values()) == 2 * total, timeout=30)
    assert outcomes == Counter({i: 2 for i in range(total)})
    worker.stop()


@in_process_modes
@pytest.mark.parametrize("blocking", [False, True])
def test_calls_racing_stop_are_refused_or_resolve(mode: str, blocking: bool) -> None:
    for attempt in range(20):
        log: list[int] = []
        worker = recorder(mode, log, blocking)
        outcomes: dict[int, Optional[Any]] = {}  # None: refused at the call
        failures: list[BaseException] = []
        started = threading.Event()

        def caller() -> None:
            try:
                for i in range(2_000):
                    if i == 50:
                        started.set()
                    try:
                        outcomes[i] = worker.record(i)
                    except WorkerStoppedError:
                        outcomes[i] = None
                    except CancelledError:  # blocking mode: the call was queued, then cancelled by stop()
                        outcomes[i] = CancelledError()
            except BaseException as error:  # reported below
                failures.append(error)
            finally:
                started.set()

        thread = threading.Thread(target=caller)
        thread.start()
        started.wait(30)
        worker.stop(timeout=None if attempt % 2 else 0.0)
        thread.join(60)
        assert not thread.is_alive() and failures == []
        assert len(outcomes) == 2_000
        if not blocking:  # first wait for every call: after stop(timeout=0.0) the one started may still be running
            outcomes = {i: _settled(outcome) for i, outcome in outcomes.items()}
        counts = Counter(log)
        assert all(n == 1 for n in counts.values())
        for i, outcome in outcomes.items():
            if outcome is None:
                assert i not in counts, f"call {i} was refused but ran"
            elif isinstance(outcome, CancelledError):
                assert i not in counts, f"call {i} was cancelled by stop() but ran"
            else:
                assert outcome == i and counts[i] == 1


def _settled(outcome: Optional[Any]) -> Optional[Any]:
    """A call's outcome once it has settled: None (refused), its result, or the CancelledError stop() gave it."""
    if outcome is None:
        return None
    try:
        return outcome.result(timeout=30)
    except CancelledError as error:
        return error
