"""Worker pools: the guide's example, balancing, back-pressure, member death, TaskWorker pools, Executor, @task."""

from __future__ import annotations

import concurrent.futures
import io
import os
import signal
import threading
import time
from typing import Any

import pytest

from concurry import (
    Executor,
    TaskWorker,
    Worker,
    WorkerDiedError,
    WorkerStoppedError,
    task,
)

pytestmark = [pytest.mark.usefixtures("stop_workers"), pytest.mark.timeout(120)]


class DataProcessor(Worker):
    def __init__(self, multiplier: int) -> None:
        self.multiplier = multiplier

    def process(self, value: int) -> int:
        return value * self.multiplier


class Member(Worker):
    """Tells which member served a call: its thread in thread mode, its process in process mode."""

    def who(self) -> int:
        return threading.get_ident()

    def pid(self) -> int:
        return os.getpid()

    def hold(self, gate: threading.Event) -> int:
        gate.wait(30)
        return threading.get_ident()

    def sleep(self, seconds: float) -> int:
        time.sleep(seconds)
        return os.getpid()

    def echo(self, value: int) -> int:
        return value

    def tagged(self, tag: Any) -> int:
        return threading.get_ident()


# -- the guide ----------------------------------------------------------------------------------------------------
def test_guide_pool_example() -> None:
    with DataProcessor.options(mode="thread", max_workers=5).init(2) as pool:
        results = [pool.process(i).result() for i in range(10)]
    assert results == [i * 2 for i in range(10)]
    assert not pool._backend.alive
    assert all(not member.alive for member in pool._backend.members)


@pytest.mark.parametrize("mode", ["thread", "process"])
def test_pool_has_the_single_workers_generated_methods(mode: str) -> None:
    single = DataProcessor.options(mode=mode).init(3)
    pool = DataProcessor.options(mode=mode, max_workers=2).init(3)
    assert type(pool) is type(single)  # one generated class: the same methods and signatures
    assert pool.process(4).result() == 12
    assert pool.multiplier == 3  # attributes are read from a member
    blocking = DataProcessor.options(mode=mode, max_workers=2, blocking=True).init(3)
    assert blocking.process(5) == 15
    for proxy in (single, pool, blocking):
        proxy.stop()


def test_stop_stops_every_member_and_later_calls_raise() -> None:
    pool = Member.options(mode="thread", max_workers=3).init()
    members = pool._backend.members
    assert all(member.alive for member in members)
    pool.stop()
    pool.stop()  # idempotent
    assert not any(member.alive for member in members)
    with pytest.raises(WorkerStoppedError):
        pool.who()
    assert "stopped" in repr(pool)


@pytest.mark.parametrize("mode", ["sync", "asyncio"])
def test_pools_need_a_mode_that_runs_several_workers(mode: str) -> None:
    with pytest.raises(ValueError, match=rf"max_workers=4 with mode='{mode}'.*pools need mode='thread'"):
        Member.options(mode=mode, max_workers=4)
    Member.options(mode=mode, max_workers=1).init().stop()  # one worker is fine in every mode


def test_invalid_pool_options_are_named() -> None:
    with pytest.raises(ValueError, match="load_balancing"):
        Member.options(mode="thread", max_workers=2, load_balancing="fastest")
    with pytest.raises(ValueError, match="max_workers"):
        Member.options(mode="thread", max_workers=0)
    with pytest.raises(ValueError, match="max_queued_tasks"):
        Member.options(mode="thread", max_queued_tasks=0)
    with pytest.raises(ValueError, match="max_queued_tasks=3, which applies only to mode='thread'"):
        Member.options(mode="sync", max_queued_tasks=3)


# -- balancing ----------------------------------------------------------------------------------------------------
def _members(pool: Any) -> list[int]:
    """Each member's thread id, in member order (a member's first call goes to its own thread)."""
    return [member.submit("who", (), None).result() for member in pool._backend.members]


def test_round_robin_serves_members_in_turn() -> None:
    pool = Member.options(mode="thread", max_workers=3).init()
    members = _members(pool)
    assert len(set(members)) == 3
    served = [pool.who().result() for _ in range(9)]
    assert served == members * 3


def test_call_functions_and_submit_share_one_rotation() -> None:
    """A thread pool's call functions queue on the member themselves; a call with a list argument (which may hold
    futures) goes through the pool's submit. Both take their turn from the same round robin."""
    pool = Member.options(mode="thread", max_workers=3).init()
    members = _members(pool)
    assert [pool.tagged(tag).result() for tag in (1, [2], 3, [4], 5, [6])] == members * 2
    assert [pool.tagged(tag=tag).result() for tag in ([7], 8, [9])] == members


def test_round_robin_with_a_bound_still_serves_in_turn() -> None:
    pool = Member.options(mode="thread", max_workers=3, max_queued_tasks=2).init()
    members = _members(pool)
    assert [pool.who().result() for _ in range(6)] == members * 2


def test_least_active_avoids_busy_members() -> None:
    pool = Member.options(mode="thread", max_workers=3, load_balancing="least_active").init()
    members = _members(pool)
    gate = threading.Event()
    held = [pool.hold(gate), pool.hold(gate)]  # the first two members are busy until the gate opens
    served = {pool.who().result() for _ in range(20)}
    assert served == {members[2]}
    gate.set()
    assert [f.result() for f in held] == members[:2]


def test_least_total_spreads_by_calls_sent() -> None:
    pool = Member.options(mode="thread", max_workers=3, load_balancing="least_total").init()
    members = _members(pool)
    gate = threading.Event()
    first = pool.hold(gate)  # member 0: one call sent, still running
    served = [pool.who().result() for _ in range(2)]
    assert served == [members[1], members[2]]  # the members with fewer calls sent, in index order
    gate.set()
    assert first.result() == members[0]
    assert [pool.who().result() for _ in range(6)] == members * 2  # totals tie at 1: index order again


def test_random_uses_every_member() -> None:
    pool = Member.options(mode="thread", max_workers=3, load_balancing="random").init()
    members = set(_members(pool))
    served = {pool.who().result() for _ in range(300)}
    assert served == members


# -- back-pressure ------------------------------------------------------------------------------------------------
def test_max_queued_tasks_bounds_calls_in_flight_under_100k_pipelined_calls() -> None:
    workers, bound, calls = 4, 8, 100_000
    pool = Member.options(mode="thread", max_workers=workers, max_queued_tasks=bound).init()
    futures = []
    peak = 0
    for i in range(calls):
        futures.append(pool.echo(i))
        if i % 4999 == 0:  # a completed call frees its slot only after it is done, so this count is exact
            peak = max(peak, sum(1 for f in futures if not f.done()))
            assert peak <= workers * bound
    assert all(f.result() == i for i, f in enumerate(futures[-1000:], calls - 1000))
    assert max(pool._backend._active) <= bound
    pool.stop()


def test_a_producer_waits_when_every_member_is_full() -> None:
    pool = Member.options(mode="thread", max_workers=2, max_queued_tasks=1).init()
    gate = threading.Event()
    held = [pool.hold(gate), pool.hold(gate)]
    third: list[Any] = []
    producer = threading.Thread(target=lambda: third.append(pool.echo(3)))
    producer.start()
    producer.join(0.3)
    assert producer.is_alive() and not third  # waiting for room, not queueing
    gate.set()
    producer.join(10)
    assert third[0].result(10) == 3
    assert len({f.result() for f in held}) == 2


def test_blocking_pools_skip_the_bound() -> None:
    pool = Member.options(mode="thread", max_workers=2, max_queued_tasks=1, blocking=True).init()
    assert [pool.echo(i) for i in range(5)] == list(range(5))
    results: list[int] = []
    threads = [threading.Thread(target=lambda i=i: results.append(pool.echo(i))) for i in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(10)
    assert sorted(results) == list(range(8))


def test_stopping_a_full_pool_releases_a_waiting_producer() -> None:
    pool = Member.options(mode="thread", max_workers=1, max_queued_tasks=1).init()
    gate = threading.Event()
    held = pool.hold(gate)
    outcome: list[Any] = []

    def produce() -> None:
        try:
            outcome.append(pool.echo(1))
        except WorkerStoppedError as error:
            outcome.append(error)

    producer = threading.Thread(target=produce)
    producer.start()
    time.sleep(0.1)
    stopper = threading.Thread(target=pool.stop, args=(5,))
    stopper.start()
    gate.set()
    producer.join(10)
    stopper.join(10)
    assert not producer.is_alive() and outcome
    assert held.result() > 0


# -- member death -------------------------------------------------------------------------------------------------
def test_a_killed_member_fails_its_calls_and_the_rest_keep_serving() -> None:
    pool = Member.options(mode="process", max_workers=2).init()
    first, second = pool.pid().result(), pool.pid().result()
    assert first != second
    doomed = pool.sleep(30)  # round robin: the first member again
    time.sleep(0.2)
    os.kill(first, signal.SIGKILL)
    with pytest.raises(WorkerDiedError):
        doomed.result(20)
    assert [pool.pid().result(20) for _ in range(10)] == [second] * 10
    assert [pool.echo(i).result(20) for i in range(4)] == list(range(4))
    os.kill(second, signal.SIGKILL)
    time.sleep(0.5)
    deadline = time.monotonic() + 20
    while True:  # the last member's death is known once its pipe closes
        try:
            pool.pid().result(20)
        except WorkerDiedError as error:
            assert "died" in str(error)
            break
        assert time.monotonic() < deadline
        time.sleep(0.05)
    with pytest.raises(WorkerDiedError, match="every worker of the Member pool of 2 died"):
        pool.pid()
    pool.stop()


def test_a_killed_member_of_a_counted_pool_is_taken_out_of_rotation() -> None:
    pool = Member.options(mode="process", max_workers=2, load_balancing="least_active", max_queued_tasks=4).init()
    victim, survivor = (m.submit("pid", (), None).result(20) for m in pool._backend.members)
    doomed = pool.sleep(30)  # least active, ties to the lowest index: the first member
    time.sleep(0.2)
    os.kill(victim, signal.SIGKILL)
    with pytest.raises(WorkerDiedError):
        doomed.result(20)
    assert {pool.pid().result(20) for _ in range(10)} == {survivor}
    pool.stop()


# -- TaskWorker pools, Executor, @task ------------------------------------------------------------------------------
def _nap(x: int) -> int:
    time.sleep(0.2)
    return x


def _square(x: int) -> int:
    return x * x


def test_task_worker_pool_spreads_submit_and_map() -> None:
    pool = TaskWorker.options(mode="thread", max_workers=4).init()
    start = time.monotonic()
    assert [f.result() for f in [pool.submit(_nap, i) for i in range(8)]] == list(range(8))
    assert time.monotonic() - start < 1.0  # 8 x 0.2 s over 4 workers: about 0.4 s, not 1.6 s
    start = time.monotonic()
    assert list(pool.map(_nap, range(8))) == list(range(8))  # input order kept
    assert time.monotonic() - start < 1.0


def test_process_task_pool_map_keeps_order() -> None:
    pool = TaskWorker.options(mode="process", max_workers=2).init()
    assert list(pool.map(_square, range(20))) == [x * x for x in range(20)]


def test_map_progress_bar_advances_to_the_total() -> None:
    pool = TaskWorker.options(mode="thread", max_workers=2).init()
    out = io.StringIO()
    assert list(pool.map(_square, range(7), progress={"file": out, "desc": "squares"})) == [x * x for x in range(7)]
    assert "squares" in out.getvalue() and "7/7" in out.getvalue()


def test_executor_is_a_concurrent_futures_executor() -> None:
    with Executor(mode="thread", max_workers=4) as executor:
        assert isinstance(executor, concurrent.futures.Executor)
        futures = [executor.submit(_square, i) for i in range(10)]
        assert sorted(f.result() for f in concurrent.futures.as_completed(futures)) == [x * x for x in range(10)]
        done, not_done = concurrent.futures.wait(futures)
        assert len(done) == 10 and not not_done
        assert list(executor.map(_square, range(5))) == [0, 1, 4, 9, 16]
        failing = executor.submit(int, "x")
        with pytest.raises(ValueError):
            failing.result()
    with pytest.raises(RuntimeError, match="after shutdown"):
        executor.submit(_square, 2)


def test_executor_process_mode_and_cancel_futures() -> None:
    executor = Executor(mode="process", max_workers=2)
    assert executor.submit(_square, 7).result() == 49
    gate_calls = [executor.submit(time.sleep, 0.5) for _ in range(2)]
    queued = [executor.submit(_square, i) for i in range(6)]
    executor.shutdown(wait=True, cancel_futures=True)
    assert all(f.done() for f in gate_calls + queued)
    assert any(f.cancelled() for f in queued)


def test_executor_cancel_cancels_the_queued_call() -> None:
    with Executor(mode="thread", max_workers=1) as executor:
        gate = threading.Event()
        running = executor.submit(gate.wait, 10)
        queued = executor.submit(_square, 3)
        assert queued.cancel() and queued.cancelled()
        assert concurrent.futures.wait([queued], timeout=1).done == {queued}
        gate.set()
        assert running.result(5) is True


@task(mode="thread", max_workers=4)
def nap(x: int) -> int:
    time.sleep(0.2)
    return x


@task(mode="process", max_workers=2)
def cube(x: int) -> int:
    return x**3


@task
def add_one(x: int) -> int:
    return x + 1


def test_task_decorator() -> None:
    try:
        assert add_one(1).result() == 2 and add_one.submit(2).result() == 3
        assert add_one.__name__ == "add_one"
        start = time.monotonic()
        assert list(nap.map(range(8))) == list(range(8))
        assert time.monotonic() - start < 1.0
        assert cube(3).result() == 27
        assert list(cube.map(range(5))) == [0, 1, 8, 27, 64]
    finally:
        for fn in (add_one, nap, cube):
            fn.stop()


# -- Ray ----------------------------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def local_ray() -> Any:
    ray = pytest.importorskip("ray")
    import logging
    import sys

    ray.cloudpickle.register_pickle_by_value(sys.modules[__name__])
    started = not ray.is_initialized()
    if started:
        ray.init(num_cpus=2, include_dashboard=False, logging_level=logging.WARNING)
    yield ray
    if started:
        ray.shutdown()


class Actor(Worker):
    def pid(self) -> int:
        return os.getpid()

    def echo(self, value: int) -> int:
        return value


def test_ray_pool_round_robin_and_gather_over_ray_futures(local_ray: Any) -> None:
    from concurry import gather

    pool = Actor.options(mode="ray", max_workers=2, num_cpus=0.5).init()
    pids = [member.submit("pid", (), None).result(60) for member in pool._backend.members]
    assert len(set(pids)) == 2
    assert gather([pool.pid() for _ in range(4)], timeout=60) == pids * 2
    bounded = Actor.options(mode="ray", max_workers=2, num_cpus=0.5, max_queued_tasks=2).init()
    assert gather({i: bounded.echo(i) for i in range(20)}, timeout=60) == {i: i for i in range(20)}
    pool.stop()
    bounded.stop()
    assert not any(member.alive for member in pool._backend.members)
