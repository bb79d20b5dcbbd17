"""The behaviour contract shared by every mode: futures, cancellation, proxies, options, stopping, reclaiming.

Tests that need a call to stay running use a file-based gate, which works the same across threads and processes.
"""

from __future__ import annotations

import asyncio
import gc
import inspect
import os
import subprocess
import sys
import textwrap
import threading
import time
import weakref
from _thread import LockType
from pathlib import Path
from typing import Any, Callable

import pytest

from _processes import child_pids, worker_threads

from concurry import BaseFuture, CancelledError, TaskWorker, Worker

pytestmark = [pytest.mark.usefixtures("stop_workers"), pytest.mark.timeout(60)]

ALL_MODES = ["sync", "thread", "process", "asyncio"]
CONCURRENT_MODES = ["thread", "process", "asyncio"]  # modes where a call runs while the caller goes on
all_modes = pytest.mark.parametrize("mode", ALL_MODES)
concurrent_modes = pytest.mark.parametrize("mode", CONCURRENT_MODES)

HOLD_LIMIT = 20.0  # a held call gives up after this long, so a failing test cannot leave a call running forever
REPO = Path(__file__).resolve().parents[1]


# -- helpers ---------------------------------------------------------------------------------------------------

def wait_until(predicate: Callable[[], bool], timeout: float = 10.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.005)
    return predicate()


class Gate:
    """A call passes ``started`` when it begins and waits for ``release()``; files make it work across processes."""

    def __init__(self, directory: Path, name: str = "gate") -> None:
        self.started = str(directory / f"{name}.started")
        self.released = str(directory / f"{name}.released")

    @property
    def paths(self) -> tuple[str, str]:
        return self.started, self.released

    def wait_started(self) -> None:
        assert wait_until(lambda: os.path.exists(self.started)), "the held call never started"

    def release(self) -> None:
        Path(self.released).touch()


@pytest.fixture
def gate(tmp_path: Path) -> Gate:
    return Gate(tmp_path)


class Busy(Worker):
    LIMIT = 5

    def __init__(self) -> None:
        self.log: list[Any] = []
        self.count = 0

    def hold(self, started: str, released: str) -> str:
        Path(started).touch()
        deadline = time.monotonic() + HOLD_LIMIT
        while not os.path.exists(released):
            if time.monotonic() > deadline:
                return "never released"
            time.sleep(0.002)
        return "released"

    def record(self, item: Any) -> Any:
        self.log.append(item)
        self.count += 1
        return item

    async def record_async(self, item: Any) -> Any:
        await asyncio.sleep(0)
        self.log.append(item)
        return item

    def history(self) -> list[Any]:
        return list(self.log)

    def fail(self, message: str) -> None:
        raise ValueError(message)

    def nap(self, seconds: float) -> float:
        time.sleep(seconds)
        return seconds

    def echo(self, value: Any) -> Any:
        return value

    @property
    def doubled_count(self) -> int:
        return 2 * self.count

    def _helper(self) -> str:
        return "hidden"


class Signatures(Worker):
    def mixed(self, a: int, /, b: str = "x", *args: float, c: bool = False, **kw: object) -> dict:
        """Collects its arguments."""
        return {"a": a, "b": b, "args": args, "c": c, "kw": kw}

    def keyword_only(self, *, name: str, values: list = [1, 2]) -> str:  # noqa: B006 - a default to compare
        return f"{name}={values}"

    def no_args(self) -> None:
        return None

    async def coro(self, delay: float = 0.0, *, label: str) -> str:
        await asyncio.sleep(delay)
        return label

    def shadows_self(self, self_: int, _self: int = 0) -> int:
        return self_ + _self

    @staticmethod
    def static(x: int, y: int = 2) -> int:
        return x * y

    @classmethod
    def klass(cls, suffix: str) -> str:
        return cls.__name__ + suffix


class FailingInit(Worker):
    def __init__(self, reason: str) -> None:
        raise PermissionError(f"cannot start: {reason}")

    def work(self) -> int:
        return 1


class SetupFailed(Exception):
    """A user-defined exception class raised from ``__init__``."""


class FailingInitCustom(Worker):
    def __init__(self) -> None:
        raise SetupFailed("custom setup failure")

    def work(self) -> int:
        return 1


class PydanticNames(Worker):
    """Plain worker methods whose names happen to be pydantic's deprecated model API."""

    def validate(self, value: int) -> str:
        return f"validated {value}"

    def json(self) -> str:
        return "my json"

    def copy(self) -> str:
        return "my copy"

    def dict(self) -> str:
        return "my dict"


def threads_and_children() -> tuple[set[threading.Thread], set[int]]:
    return worker_threads(), child_pids()


def assert_reclaimed(before: tuple[set[threading.Thread], set[int]], timeout: float = 10.0) -> None:
    threads, children = before
    assert wait_until(lambda: worker_threads() <= threads, timeout), (
        f"threads left behind: {worker_threads() - threads}"
    )
    assert wait_until(lambda: child_pids() <= children, timeout), (
        f"child processes left behind: {child_pids() - children}"
    )


def open_fds() -> int:
    return len(os.listdir("/proc/self/fd"))


# -- cancel, running, done, timeouts ---------------------------------------------------------------------------

@concurrent_modes
def test_cancel_queued_call_returns_true_and_it_never_runs(mode: str, gate: Gate) -> None:
    worker = Busy.options(mode=mode).init()
    held = worker.hold(*gate.paths)
    gate.wait_started()
    queued = worker.record("queued")
    assert queued.cancel() is True
    assert queued.cancelled() is True
    assert queued.done() is True
    assert queued.running() is False
    assert queued.cancel() is True  # cancelling again still reports cancelled
    with pytest.raises(CancelledError):
        queued.result()
    with pytest.raises(CancelledError):
        queued.exception()
    gate.release()
    assert held.result(timeout=30) == "released"
    assert worker.record("after").result(timeout=30) == "after"
    assert worker.history().result(timeout=30) == ["after"]  # the cancelled call never ran
    worker.stop()


@concurrent_modes
def test_cancel_running_call_returns_false_and_worker_keeps_serving(mode: str, gate: Gate) -> None:
    worker = Busy.options(mode=mode).init()
    held = worker.hold(*gate.paths)
    gate.wait_started()
    assert wait_until(held.running)
    assert held.cancel() is False
    assert held.cancelled() is False
    assert held.running() is True
    gate.release()
    assert held.result(timeout=30) == "released"
    assert held.cancel() is False
    assert worker.record(1).result(timeout=30) == 1
    worker.stop()


@all_modes
def test_cancel_finished_call_returns_false(mode: str) -> None:
    worker = Busy.options(mode=mode).init()
    future = worker.record(7)
    assert future.result(timeout=30) == 7
    assert future.cancel() is False
    assert future.cancelled() is False
    assert future.result() == 7
    worker.stop()


@concurrent_modes
def test_running_and_done_follow_the_call(mode: str, gate: Gate) -> None:
    worker = Busy.options(mode=mode).init()
    held = worker.hold(*gate.paths)
    gate.wait_started()
    queued = worker.record("next")
    assert wait_until(held.running)
    assert held.done() is False
    assert queued.running() is False  # waiting behind the held call
    assert queued.done() is False
    gate.release()
    assert queued.result(timeout=30) == "next"
    assert held.done() is True and held.running() is False
    assert queued.done() is True and queued.running() is False
    worker.stop()


@concurrent_modes
def test_result_and_exception_with_timeout_raise_timeout_error(mode: str, gate: Gate) -> None:
    worker = Busy.options(mode=mode).init()
    held = worker.hold(*gate.paths)
    gate.wait_started()
    with pytest.raises(TimeoutError):
        held.result(timeout=0.05)
    with pytest.raises(TimeoutError):
        held.exception(timeout=0.05)
    with pytest.raises(TimeoutError):
        held.result(timeout=0)
    assert held.done() is False
    gate.release()
    assert held.result(timeout=30) == "released"
    assert held.exception(timeout=0) is None
    worker.stop()


@concurrent_modes
def test_waiting_again_after_a_timeout_reuses_the_waiters_lock(mode: str, gate: Gate) -> None:
    """A waiter's lock is kept with the done-callbacks (``concurry.core.future``): a caller that polls with short
    timeouts adds one, not one per attempt."""
    worker = Busy.options(mode=mode).init()
    held = worker.hold(*gate.paths)
    gate.wait_started()
    for _ in range(50):
        with pytest.raises(TimeoutError):
            held.result(timeout=0.001)
    watchers = list(held._callbacks or [])
    assert [type(w) for w in watchers] == [LockType]
    gate.release()
    assert held.result(timeout=30) == "released"
    worker.stop()


def test_sync_mode_futures_are_complete_on_return() -> None:
    worker = Busy.options(mode="sync").init()
    future = worker.record(1)
    assert future.done() is True
    assert future.running() is False
    assert future.result(timeout=0) == 1
    worker.stop()


@all_modes
def test_exception_returns_the_error_or_none(mode: str) -> None:
    worker = Busy.options(mode=mode).init()
    ok = worker.record(3)
    bad = worker.fail("broken")
    assert ok.exception(timeout=30) is None
    error = bad.exception(timeout=30)
    assert type(error) is ValueError
    assert error.args == ("broken",)
    with pytest.raises(ValueError, match="^broken$"):
        bad.result()
    assert ok.result() == 3
    worker.stop()


# -- callbacks -------------------------------------------------------------------------------------------------

@concurrent_modes
def test_done_callback_added_before_completion_is_called_once(mode: str, gate: Gate) -> None:
    worker = Busy.options(mode=mode).init()
    held = worker.hold(*gate.paths)
    gate.wait_started()
    calls: list[Any] = []
    called = threading.Event()

    def callback(future: Any) -> None:
        calls.append(future)
        called.set()

    held.add_done_callback(callback)
    assert calls == []  # not while the call runs
    gate.release()
    assert called.wait(30)
    assert held.result() == "released"
    worker.stop()  # any second invocation would have happened by now
    assert calls == [held]


@all_modes
def test_done_callback_added_after_completion_is_called_at_once(mode: str) -> None:
    worker = Busy.options(mode=mode).init()
    future = worker.record(5)
    future.result(timeout=30)
    calls: list[Any] = []
    future.add_done_callback(calls.append)
    assert calls == [future]
    failed = worker.fail("x")
    failed.exception(timeout=30)
    failed.add_done_callback(calls.append)
    assert calls == [future, failed]
    worker.stop()
    assert calls == [future, failed]


@concurrent_modes
def test_done_callback_of_a_cancelled_call(mode: str, gate: Gate) -> None:
    worker = Busy.options(mode=mode).init()
    held = worker.hold(*gate.paths)
    gate.wait_started()
    queued = worker.record("queued")
    calls: list[Any] = []
    queued.add_done_callback(calls.append)
    assert queued.cancel() is True
    assert calls == [queued]
    gate.release()
    held.result(timeout=30)
    worker.stop()
    assert calls == [queued]


@concurrent_modes
def test_a_failing_callback_does_not_break_others_or_the_worker(mode: str, gate: Gate) -> None:
    worker = Busy.options(mode=mode).init()
    held = worker.hold(*gate.paths)
    gate.wait_started()
    good = threading.Event()

    def bad(_: Any) -> None:
        raise RuntimeError("callback failure")

    held.add_done_callback(bad)
    held.add_done_callback(lambda _: good.set())
    gate.release()
    assert good.wait(30)
    assert held.result() == "released"
    assert worker.record(2).result(timeout=30) == 2
    worker.stop()


# -- awaiting --------------------------------------------------------------------------------------------------

@all_modes
def test_await_worker_futures_inside_asyncio_code(mode: str) -> None:
    worker = Busy.options(mode=mode).init()

    async def main() -> tuple[Any, ...]:
        first = await worker.record(1)
        from_async_method = await worker.record_async(2)
        gathered = await asyncio.gather(worker.record(3), worker.echo("x"), worker.record_async(4))
        with pytest.raises(ValueError, match="^awaited failure$"):
            await worker.fail("awaited failure")
        return first, from_async_method, gathered

    assert asyncio.run(main()) == (1, 2, [3, "x", 4])
    worker.stop()


@concurrent_modes
def test_await_does_not_block_the_event_loop(mode: str, gate: Gate) -> None:
    worker = Busy.options(mode=mode).init()

    async def release_when_started() -> None:
        while not os.path.exists(gate.started):
            await asyncio.sleep(0.005)
        gate.release()

    async def main() -> str:
        held = worker.hold(*gate.paths)
        releaser = asyncio.create_task(release_when_started())  # can only run if awaiting yields to the loop
        value = await held
        await releaser
        return value

    assert asyncio.run(main()) == "released"
    worker.stop()


@concurrent_modes
def test_waiting_does_not_spin(mode: str) -> None:
    """Awaiting (or waiting on ``result()``) a long call costs almost no CPU in the caller's process."""
    worker = Busy.options(mode=mode).init()
    assert worker.echo(0).result(timeout=30) == 0  # started and warm

    async def main() -> float:
        return await worker.nap(0.5)

    cpu = time.process_time()
    assert asyncio.run(main()) == 0.5
    assert time.process_time() - cpu < 0.05
    cpu = time.process_time()
    assert worker.nap(0.5).result() == 0.5
    assert time.process_time() - cpu < 0.05
    worker.stop()


# -- identity --------------------------------------------------------------------------------------------------

@all_modes
def test_uuid_is_a_unique_string(mode: str) -> None:
    first = Busy.options(mode=mode).init()
    second = Busy.options(mode=mode).init()
    futures = [first.record(i) for i in range(50)] + [second.record(i) for i in range(50)]
    ids = [f.uuid for f in futures]
    assert all(isinstance(i, str) and i for i in ids)
    assert len(set(ids)) == len(ids)
    assert [f.uuid for f in futures] == ids  # stable
    for f in futures:
        f.result(timeout=30)
    assert [f.uuid for f in futures] == ids  # and unchanged by completion
    first.stop()
    second.stop()


# -- errors in __init__ ----------------------------------------------------------------------------------------

@pytest.mark.parametrize("mode", ["sync", "asyncio"])
def test_init_error_raises_at_init_with_its_original_type(mode: str) -> None:
    before = threads_and_children()
    with pytest.raises(PermissionError, match="^cannot start: no key$") as info:
        FailingInit.options(mode=mode).init("no key")
    assert type(info.value) is PermissionError
    with pytest.raises(SetupFailed, match="^custom setup failure$"):
        FailingInitCustom.options(mode=mode).init()
    assert_reclaimed(before)  # nothing was left running by the failed start


@pytest.mark.parametrize("mode", ["thread", "process"])
def test_init_error_reaches_the_first_result_with_its_original_type(mode: str) -> None:
    before = threads_and_children()
    worker = FailingInit.options(mode=mode).init("no key")
    futures = [worker.work() for _ in range(3)]
    with pytest.raises(PermissionError, match="^cannot start: no key$") as info:
        futures[0].result(timeout=30)
    assert type(info.value) is PermissionError
    for future in futures[1:]:
        assert future.exception(timeout=30) is not None  # none of them hangs or succeeds
    custom = FailingInitCustom.options(mode=mode).init()
    with pytest.raises(SetupFailed, match="^custom setup failure$"):
        custom.work().result(timeout=30)
    worker.stop()
    custom.stop()
    assert_reclaimed(before)


# -- proxy surface ---------------------------------------------------------------------------------------------

@all_modes
@pytest.mark.parametrize(
    "name", ["stop", "blocking", "mode", "worker_cls", "init_args", "init_kwargs", "param_names", "model_fields"]
)
def test_method_colliding_with_a_proxy_member_is_rejected_at_options(mode: str, name: str) -> None:
    colliding = type(f"Colliding_{name}", (Worker,), {name: lambda self: "mine"})
    with pytest.raises(TypeError) as info:
        colliding.options(mode=mode)
    message = str(info.value)
    assert message.startswith(f"Colliding_{name}.{name} clashes with the worker proxy's own attribute {name!r}")


def test_process_only_field_collides_in_process_mode() -> None:
    colliding = type("CollidingMpContext", (Worker,), {"mp_context": lambda self: "mine"})
    with pytest.raises(TypeError, match="CollidingMpContext.mp_context"):
        colliding.options(mode="process")


@all_modes
def test_methods_named_like_pydantic_model_api_are_the_workers_own(mode: str) -> None:
    """A plain worker's ``validate``/``json``/``copy``/``dict`` are its methods, not the proxy model's."""
    worker = PydanticNames.options(mode=mode).init()
    assert worker.validate(3).result(timeout=30) == "validated 3"
    assert worker.json().result(timeout=30) == "my json"
    assert worker.copy().result(timeout=30) == "my copy"
    assert worker.dict().result(timeout=30) == "my dict"
    worker.stop()


@all_modes
@pytest.mark.parametrize("blocking", [False, True])
def test_public_attributes_read_through_the_proxy(mode: str, blocking: bool) -> None:
    worker = Busy.options(mode=mode, blocking=blocking).init()
    assert worker.count == 0
    for expected in (1, 2, 3):
        outcome = worker.record(expected)
        if not blocking:
            outcome.result(timeout=30)
        assert worker.count == expected
    assert worker.log == [1, 2, 3]
    assert worker.doubled_count == 6  # properties are read like attributes
    assert worker.LIMIT == 5  # class attributes too
    worker.stop()


@all_modes
def test_hasattr_of_unknown_names_is_false(mode: str) -> None:
    worker = Busy.options(mode=mode).init()
    assert hasattr(worker, "no_such_name") is False
    assert hasattr(worker, "_no_such_private_name") is False
    assert hasattr(worker, "record") is True
    assert hasattr(worker, "count") is True
    assert getattr(worker, "no_such_name", "fallback") == "fallback"
    worker.stop()


@all_modes
def test_repr_str_and_dir(mode: str) -> None:
    worker = Busy.options(mode=mode).init()
    for text in (repr(worker), str(worker)):
        assert isinstance(text, str)
        assert "Busy" in text
    listing = dir(worker)
    for method in ("hold", "record", "record_async", "history", "fail", "nap", "echo", "stop"):
        assert method in listing
    assert "_helper" not in listing
    worker.stop()
    assert "Busy" in repr(worker)  # still works once stopped
    assert "Busy" in str(worker)


@all_modes
def test_signatures_match_the_worker_methods(mode: str) -> None:
    worker = Signatures.options(mode=mode).init()
    instance = Signatures()
    for name in ("mixed", "keyword_only", "no_args", "coro", "shadows_self", "static", "klass"):
        assert inspect.signature(getattr(worker, name)) == inspect.signature(getattr(instance, name)), name
    assert worker.mixed.__doc__ == "Collects its arguments."
    assert worker.mixed(1, "y", 2.0, 3.0, c=True, extra=4).result(timeout=30) == {
        "a": 1, "b": "y", "args": (2.0, 3.0), "c": True, "kw": {"extra": 4}
    }
    assert worker.mixed(1).result(timeout=30) == {"a": 1, "b": "x", "args": (), "c": False, "kw": {}}
    assert worker.keyword_only(name="n").result(timeout=30) == "n=[1, 2]"
    assert worker.no_args().result(timeout=30) is None
    assert worker.coro(label="L").result(timeout=30) == "L"
    assert worker.shadows_self(2, _self=3).result(timeout=30) == 5
    assert worker.static(3).result(timeout=30) == 6
    assert worker.klass("!").result(timeout=30) == "Signatures!"
    worker.stop()


@all_modes
@pytest.mark.parametrize("blocking", [False, True])
def test_wrong_arity_raises_type_error_at_the_call(mode: str, blocking: bool) -> None:
    worker = Signatures.options(mode=mode, blocking=blocking).init()
    busy = Busy.options(mode=mode, blocking=blocking).init()
    calls: list[Callable[[], Any]] = [
        lambda: worker.mixed(),  # missing a
        lambda: worker.mixed(a=1),  # positional-only passed by keyword
        lambda: worker.mixed(1, "b", b="again"),  # b given twice
        lambda: worker.keyword_only("positional"),
        lambda: worker.keyword_only(),
        lambda: worker.no_args(1),
        lambda: worker.coro(0.0),  # label is keyword-only and required
        lambda: worker.static(),
        lambda: busy.record(),
        lambda: busy.record(1, 2),
        lambda: busy.record(item=1, other=2),
    ]
    for call in calls:
        with pytest.raises(TypeError):
            call()
    history = busy.history()
    assert (history if blocking else history.result(timeout=30)) == []  # nothing reached the worker
    worker.stop()
    busy.stop()


@all_modes
def test_private_methods_are_not_exposed(mode: str) -> None:
    worker = Busy.options(mode=mode).init()
    assert not hasattr(worker, "_helper")
    with pytest.raises(AttributeError):
        worker._helper()
    assert "_helper" not in type(worker).__dict__
    worker.stop()


# -- option errors ---------------------------------------------------------------------------------------------

def test_unknown_option_names_option_value_and_allowed_options() -> None:
    with pytest.raises(ValueError) as info:
        Busy.options(mode="thread", colour="red")
    message = str(info.value)
    assert "colour" in message
    assert "'red'" in message
    for allowed in ("mode", "blocking", "unwrap_futures", "mp_context"):
        assert allowed in message


@pytest.mark.parametrize("bad_mode", ["invalid", "threads", "Thread", "", None, 3])
def test_invalid_mode_names_value_and_allowed_modes(bad_mode: object) -> None:
    with pytest.raises(ValueError) as info:
        Busy.options(mode=bad_mode)
    message = str(info.value)
    assert "mode" in message
    assert repr(bad_mode) in message
    for allowed in ALL_MODES:
        assert repr(allowed) in message or allowed in message


@pytest.mark.parametrize(
    ("option", "value", "mode", "applies_to"),
    [
        ("mp_context", "spawn", "thread", "process"),
        ("mp_context", "fork", "sync", "process"),
        ("mp_context", "forkserver", "asyncio", "process"),
        ("num_cpus", 2, "thread", "ray"),
        ("num_gpus", 1, "process", "ray"),
        ("resources", {"special_hardware": 1}, "sync", "ray"),
        ("actor_options", {"name": "a"}, "asyncio", "ray"),
    ],
)
def test_mode_specific_option_on_the_wrong_mode(option: str, value: object, mode: str, applies_to: str) -> None:
    with pytest.raises(ValueError) as info:
        Busy.options(mode=mode, **{option: value})
    message = str(info.value)
    assert option in message
    assert repr(value) in message
    assert applies_to in message
    assert mode in message


def test_invalid_value_of_a_known_option_names_option_value_and_allowed_values() -> None:
    with pytest.raises(ValueError) as info:
        Busy.options(mode="process", mp_context="bogus")
    message = str(info.value)
    assert "mp_context" in message and "'bogus'" in message
    for allowed in ("fork", "spawn", "forkserver"):
        assert allowed in message
    with pytest.raises(ValueError) as info:
        Busy.options(mode="thread", blocking="maybe")
    message = str(info.value)
    assert "blocking" in message and "'maybe'" in message and "bool" in message
    with pytest.raises(ValueError) as info:
        Busy.options(mode="thread", unwrap_futures=[1])
    assert "unwrap_futures" in str(info.value)


def test_invalid_options_start_nothing() -> None:
    before = threads_and_children()
    for bad in ({"mode": "nope"}, {"mode": "thread", "mp_context": "spawn"}, {"mode": "thread", "x": 1}):
        with pytest.raises(ValueError):
            Busy.options(**bad).init()
    assert worker_threads() <= before[0]


# -- stop ------------------------------------------------------------------------------------------------------

@all_modes
def test_stop_is_idempotent(mode: str) -> None:
    worker = Busy.options(mode=mode).init()
    assert worker.record(1).result(timeout=30) == 1
    worker.stop()
    worker.stop()
    worker.stop(timeout=0)
    with worker:
        pass  # exiting the context manager stops once more
    with pytest.raises(RuntimeError):
        worker.record(2)


@concurrent_modes
def test_concurrent_stops_all_return(mode: str) -> None:
    worker = Busy.options(mode=mode).init()
    futures = [worker.record(i) for i in range(100)]
    errors: list[BaseException] = []

    def stop() -> None:
        try:
            worker.stop()
        except BaseException as error:  # collected for the assertion below
            errors.append(error)

    stoppers = [threading.Thread(target=stop) for _ in range(4)]
    for t in stoppers:
        t.start()
    for t in stoppers:
        t.join(30)
    assert not any(t.is_alive() for t in stoppers)
    assert errors == []
    assert all(f.done() for f in futures)


@all_modes
@pytest.mark.parametrize("blocking", [False, True])
def test_calls_after_stop_raise_runtime_error(mode: str, blocking: bool) -> None:
    worker = Busy.options(mode=mode, blocking=blocking).init()
    worker.stop()
    for call in (lambda: worker.record(1), lambda: worker.record_async(1), lambda: worker.echo("x")):
        with pytest.raises(RuntimeError, match="stopped"):
            call()


@all_modes
def test_task_worker_calls_after_stop_raise_runtime_error(mode: str) -> None:
    worker = TaskWorker.options(mode=mode).init()
    assert worker.submit(abs, -1).result(timeout=30) == 1
    worker.stop()
    with pytest.raises(RuntimeError, match="stopped"):
        worker.submit(abs, -1)
    with pytest.raises(RuntimeError, match="stopped"):
        worker.map(abs, [-1, -2])


@concurrent_modes
def test_stop_lets_queued_calls_finish(mode: str) -> None:
    worker = Busy.options(mode=mode).init()
    futures = [worker.record(i) for i in range(300)]
    worker.stop()
    assert all(f.done() for f in futures)
    assert [f.result(timeout=0) for f in futures] == list(range(300))


@concurrent_modes
def test_stop_with_timeout_leaves_no_future_pending(mode: str, gate: Gate) -> None:
    worker = Busy.options(mode=mode).init()
    held = worker.hold(*gate.paths)
    gate.wait_started()
    queued = [worker.record(i) for i in range(300)]
    worker.stop(timeout=0.2)  # the held call outlives the timeout: what is still queued must not stay pending
    assert all(f.done() for f in queued), "queued futures left pending after stop()"
    for future in queued:
        assert future.cancelled() or future.result(timeout=0) in range(300)
    gate.release()
    # The held call is resolved either way: it finished, or stop() ended the worker under it (a process can be).
    error = held.exception(timeout=30)
    if error is None:
        assert held.result() == "released"
    else:
        assert isinstance(error, RuntimeError)
        assert "stop" in str(error)
    with pytest.raises(RuntimeError):
        worker.record(0)


@all_modes
def test_stop_reclaims_threads_and_processes(mode: str) -> None:
    before = threads_and_children()
    worker = Busy.options(mode=mode).init()
    assert worker.record_async(1).result(timeout=30) == 1  # async calls may start extra machinery
    assert worker.record(2).result(timeout=30) == 2
    worker.stop()
    assert_reclaimed(before)


# -- reclaiming and exiting ------------------------------------------------------------------------------------

@all_modes
def test_dropped_proxy_is_reclaimed(mode: str) -> None:
    before = threads_and_children()
    worker = Busy.options(mode=mode).init()
    assert worker.record(1).result(timeout=30) == 1
    ref = weakref.ref(worker)
    del worker
    gc.collect()
    assert ref() is None
    assert_reclaimed(before)


@all_modes
def test_call_on_a_temporary_proxy_still_completes(mode: str) -> None:
    before = threads_and_children()
    future = Busy.options(mode=mode).init().record(42)  # the proxy is dropped at once
    gc.collect()
    assert future.result(timeout=30) == 42
    assert_reclaimed(before)


@concurrent_modes
def test_dropping_a_proxy_with_a_call_running_does_not_wait_for_it(mode: str) -> None:
    """The finalizer of a dropped proxy stops its worker on a thread of its own: the thread that dropped it (any
    thread, an event loop's too) goes on at once, the call in flight still completes, then the worker is gone."""
    before = threads_and_children()
    worker = Busy.options(mode=mode).init()
    assert worker.record(0).result(timeout=30) == 0
    future = worker.nap(1.5)
    started = time.monotonic()
    del worker  # the last reference: the finalizer runs here (a proxy is in no reference cycle)
    assert time.monotonic() - started < 1.0
    assert not future.done()
    assert future.result(timeout=30) == 1.5
    assert_reclaimed(before)


@concurrent_modes
def test_many_callers_one_worker(mode: str) -> None:
    worker = Busy.options(mode=mode).init()
    failures: list[BaseException] = []

    def caller(offset: int) -> None:
        try:
            futures = [worker.record(offset + i) for i in range(100)]
            assert [f.result(timeout=30) for f in futures] == [offset + i for i in range(100)]
        except BaseException as error:  # collected for the assertion below
            failures.append(error)

    callers = [threading.Thread(target=caller, args=(1000 * n,)) for n in range(8)]
    for t in callers:
        t.start()
    for t in callers:
        t.join(60)
    assert failures == []
    assert worker.count == 800
    worker.stop()


EXIT_SCRIPT = """
import sys
from concurry import TaskWorker, Worker

class Echo(Worker):
    def echo(self, value):
        return value

    async def echo_async(self, value):
        return value

mode = sys.argv[1]
workers = [Echo.options(mode=mode).init() for _ in range(3)]
print([w.echo(i).result() for i, w in enumerate(workers)])
pending = [w.echo_async(i) for i, w in enumerate(workers)]  # never waited for
blocking = Echo.options(mode=mode, blocking=True).init()
print(blocking.echo("b"))
tasks = TaskWorker.options(mode=mode).init()
print(tasks.submit(abs, -3).result())
cycle = [workers[0]]
cycle.append(cycle)  # a proxy only reachable through a reference cycle
print("end of script", flush=True)
"""


@all_modes
def test_interpreter_exits_cleanly_with_live_workers(mode: str, tmp_path: Path) -> None:
    script = tmp_path / "live_workers.py"
    script.write_text(textwrap.dedent(EXIT_SCRIPT))
    completed = subprocess.run(
        [sys.executable, str(script), mode], capture_output=True, text=True, timeout=60, cwd=REPO
    )
    assert completed.returncode == 0, completed.stderr
    assert completed.stdout.splitlines() == ["[0, 1, 2]", "b", "3", "end of script"]
    assert "Traceback" not in completed.stderr
    assert "Exception ignored" not in completed.stderr


DROPPED_AT_EXIT_SCRIPT = """
import pathlib, sys, time
from concurry import Worker

class Writer(Worker):
    def write(self, path, seconds):
        time.sleep(seconds)
        pathlib.Path(path).write_text("written")

worker = Writer.options(mode=sys.argv[1]).init()
worker.write(sys.argv[2], 0.5)
del worker  # dropped with its call running: stopped on a thread of its own, which exit waits for
print("end of script", flush=True)
"""


@concurrent_modes
def test_exit_lets_a_dropped_workers_calls_finish(mode: str, tmp_path: Path) -> None:
    script = tmp_path / "dropped_at_exit.py"
    script.write_text(textwrap.dedent(DROPPED_AT_EXIT_SCRIPT))
    written = tmp_path / "written.txt"
    completed = subprocess.run(
        [sys.executable, str(script), mode, str(written)], capture_output=True, text=True, timeout=60, cwd=REPO
    )
    assert completed.returncode == 0, completed.stderr
    assert completed.stdout.splitlines() == ["end of script"]
    assert "Traceback" not in completed.stderr and "Exception ignored" not in completed.stderr
    assert written.read_text() == "written"


NO_NEW_THREADS_AT_EXIT_SCRIPT = """
import pathlib, sys, threading, time
from concurry import Worker

start = threading.Thread.start

def refuse_stop_threads(thread):  # what Python 3.12+ does once interpreter shutdown has begun
    if thread.name == "concurry-stop":
        raise RuntimeError("can't create new thread at interpreter shutdown")
    start(thread)

threading.Thread.start = refuse_stop_threads

class Writer(Worker):
    def write(self, path, seconds):
        time.sleep(seconds)
        pathlib.Path(path).write_text("written")

worker = Writer.options(mode="thread").init()
worker.write(sys.argv[1], 0.5)
del worker
print("end of script", flush=True)
"""


def test_a_dropped_worker_is_stopped_even_when_no_thread_can_be_started(tmp_path: Path) -> None:
    """Python 3.12+ refuses new threads once shutdown has begun, which a drop just before exit can meet: the
    reaper then stops the worker itself."""
    script = tmp_path / "no_new_threads.py"
    script.write_text(textwrap.dedent(NO_NEW_THREADS_AT_EXIT_SCRIPT))
    written = tmp_path / "written.txt"
    completed = subprocess.run(
        [sys.executable, str(script), str(written)], capture_output=True, text=True, timeout=60, cwd=REPO
    )
    assert completed.returncode == 0, completed.stderr
    assert completed.stdout.splitlines() == ["end of script"]
    assert "Traceback" not in completed.stderr and "Exception ignored" not in completed.stderr
    assert written.read_text() == "written"


BUSY_AT_EXIT_SCRIPT = """
import os, sys, time
import concurry.core.reaper
from concurry import Worker

concurry.core.reaper.DEFAULT_STOP_TIMEOUT = 1.5  # the exit's one timeout, shortened for the test

class Napper(Worker):
    def pid(self):
        return os.getpid()

    def nap(self, seconds):
        time.sleep(seconds)

workers = [Napper.options(mode=sys.argv[1]).init() for _ in range(3)]
print(*sorted({w.pid().result() for w in workers}), flush=True)
naps = [w.nap(60) for w in workers]  # still running at exit
time.sleep(0.2)
print(time.monotonic(), flush=True)  # the script's end: what follows is the exit
"""


@concurrent_modes
def test_exit_gives_every_busy_worker_one_shared_timeout(mode: str, tmp_path: Path) -> None:
    """Three workers each running a 60 s call at exit: exit waits one timeout in all, not one per worker, and
    leaves no process behind."""
    script = tmp_path / "busy_at_exit.py"
    script.write_text(textwrap.dedent(BUSY_AT_EXIT_SCRIPT))
    completed = subprocess.run(
        [sys.executable, str(script), mode], capture_output=True, text=True, timeout=60, cwd=REPO
    )
    exit_took = time.monotonic() - float(completed.stdout.splitlines()[-1])  # one monotonic clock per machine
    assert completed.returncode == 0, completed.stderr
    assert "Traceback" not in completed.stderr and "Exception ignored" not in completed.stderr
    assert 1.4 <= exit_took < 4.0  # one timeout of 1.5 s; three in a row would be 4.5 s
    if mode == "process":
        for pid in map(int, completed.stdout.splitlines()[0].split()):
            assert wait_until(lambda: not os.path.exists(f"/proc/{pid}"), 10), f"worker process {pid} outlived exit"


@all_modes
@pytest.mark.timeout(120)
def test_start_stop_cycles_leave_nothing_behind(mode: str) -> None:
    worker = Busy.options(mode=mode).init()  # first start outside the count: lazy imports, pools, loops
    worker.record(0).result(timeout=30)
    worker.stop()
    before = threads_and_children()
    fds = open_fds()
    for i in range(200):
        worker = Busy.options(mode=mode).init()
        assert worker.record(i).result(timeout=30) == i
        worker.stop()
    assert_reclaimed(before)
    assert open_fds() <= fds + 5


# -- arguments and results that cannot cross a process boundary -----------------------------------------------

@pytest.mark.parametrize("mode", ["sync", "thread", "asyncio"])
def test_in_memory_modes_pass_objects_themselves(mode: str) -> None:
    worker = Busy.options(mode=mode).init()
    lock = threading.Lock()
    assert worker.echo(lock).result(timeout=30) is lock
    worker.stop()


def test_process_mode_unpicklable_argument_fails_that_call_only() -> None:
    worker = Busy.options(mode="process").init()
    future_or_error: Any
    try:
        future_or_error = worker.echo(threading.Lock())
    except Exception as error:  # raising at the call is as good as failing the future
        future_or_error = error
    if isinstance(future_or_error, BaseFuture):
        assert future_or_error.exception(timeout=30) is not None
    else:
        assert "pickle" in str(future_or_error).lower() or "lock" in str(future_or_error).lower()
    assert worker.echo(5).result(timeout=30) == 5  # the worker survives
    worker.stop()


def test_the_cleanup_fixture_sees_every_started_worker(stop_workers: list[Any]) -> None:
    first = Busy.options(mode="thread").init()
    second = TaskWorker.options(mode="sync", blocking=True).init()
    assert stop_workers[-2]() is first
    assert stop_workers[-1]() is second


@pytest.mark.parametrize("mode", ["sync", "thread", "asyncio", "process"])
def test_attribute_reads_on_a_stopped_worker_raise_attribute_error(mode: str) -> None:
    class Holder(Worker):
        def __init__(self) -> None:
            self.count = 7

        def ping(self) -> int:
            return 1

    proxy = Holder.options(mode=mode).init()
    assert proxy.count == 7
    proxy.stop()
    assert hasattr(proxy, "count") is False
    assert getattr(proxy, "count", "default") == "default"
    with pytest.raises(AttributeError, match=r"Holder worker is stopped, so its attribute 'count' cannot be read"):
        proxy.count
