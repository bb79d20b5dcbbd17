"""Process mode: the child process, pickling both ways, failures, cancellation, stopping and reclaiming.

Calls that must stay running wait for a file the test creates, which works the same across processes.
"""

from __future__ import annotations

import asyncio
import gc
import os
import pickle
import signal
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path
from typing import Any, Callable

import pytest

from concurry import CancelledError, ConcurrentFuture, RemoteTraceback, TaskWorker, Worker, WorkerDiedError
from concurry.backends.process import UnpicklableExceptionError

from _processes import child_pids, worker_threads

pytestmark = pytest.mark.usefixtures("stop_workers")

CONTEXTS = ["fork", "spawn", "forkserver"]
every_context = pytest.mark.parametrize("context", CONTEXTS)


# -- workers and helpers ---------------------------------------------------------------------------------------


class CustomError(Exception):
    def __init__(self, message: str, code: int) -> None:
        super().__init__(message, code)
        self.code = code


class ErrorHoldingLock(Exception):
    """Cannot be pickled: it holds a lock."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.lock = threading.Lock()


class NeedsTwoArguments(Exception):
    """Pickles, but cannot be rebuilt: ``BaseException`` pickles ``args`` (one string) and ``__init__`` wants two."""

    def __init__(self, first: str, second: str) -> None:
        super().__init__(f"{first} and {second}")


def _refuse_to_load() -> None:
    raise ValueError("this object refuses to be unpickled")


class LoadsBadly:
    def __reduce__(self) -> tuple[Callable[[], None], tuple[()]]:
        return _refuse_to_load, ()


class Counter(Worker):
    def __init__(self, start: int = 0) -> None:
        self.count = start
        self.log: list[Any] = []

    def add(self, n: int = 1, *, tag: Any = None) -> int:
        self.count += n
        self.log.append(tag)
        return self.count

    def record(self, tag: Any, payload: bytes = b"") -> int:
        self.log.append(tag)
        return len(payload)

    def get_log(self) -> list[Any]:
        return self.log

    def identity(self, value: Any) -> Any:
        return value

    def wait_for(self, path: str, limit: float = 20.0) -> bool:
        deadline = time.monotonic() + limit
        while not os.path.exists(path):
            if time.monotonic() > deadline:
                return False
            time.sleep(0.005)
        return True

    async def async_add(self, n: int) -> int:
        await asyncio.sleep(0.01)
        self.count += n
        return self.count

    def pid(self) -> int:
        return os.getpid()

    def fail_with_value_error(self, message: str) -> None:
        raise ValueError(message)

    def divide(self, a: float, b: float) -> float:
        return a / b

    def fail_with_custom_error(self) -> None:
        raise CustomError("custom failure", 42)

    def fail_with_lock(self) -> None:
        raise ErrorHoldingLock("the original message")

    def fail_with_two_arguments(self) -> None:
        raise NeedsTwoArguments("left", "right")

    def make_lock(self) -> threading.Lock:
        return threading.Lock()

    def fork_sleeper(self) -> int:
        """Fork a grandchild that holds this worker's pipes open for a while."""
        pid = os.fork()
        if pid == 0:
            time.sleep(20)
            os._exit(0)
        return pid


class BrokenInit(Worker):
    def __init__(self, reason: str) -> None:
        raise ValueError(f"cannot start: {reason}")

    def ping(self) -> str:
        return "pong"


def wait_until(predicate: Callable[[], bool], timeout: float = 10.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.005)
    return predicate()


def process_gone(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as stat:
            return stat.read().rsplit(")", 1)[1].split()[0] == "Z"
    except FileNotFoundError:
        return True


def open_fds() -> set[str]:
    return set(os.listdir("/proc/self/fd"))


def run_script(tmp_path: Path, source: str, *args: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    script = tmp_path / "script.py"
    script.write_text(textwrap.dedent(source))
    return subprocess.run(
        [sys.executable, str(script), *args], capture_output=True, text=True, timeout=timeout, cwd=tmp_path
    )


# -- calls -----------------------------------------------------------------------------------------------------


@pytest.mark.timeout(60)
@every_context
def test_calls_run_in_a_child_process(context: str) -> None:
    worker = Counter.options(mode="process", mp_context=context).init(10)
    future = worker.add(5, tag="a")
    assert isinstance(future, ConcurrentFuture)
    assert future.result(timeout=30) == 15
    assert worker.add(tag="b").result() == 16
    assert worker.async_add(4).result() == 20
    assert worker.count == 20  # a public attribute, read from the child
    assert worker.get_log().result() == ["a", "b"]
    assert worker.pid().result() != os.getpid()
    worker.stop()


@pytest.mark.timeout(30)
def test_blocking_mode_returns_results() -> None:
    worker = Counter.options(mode="process", blocking=True).init()
    assert worker.add(3) == 3
    assert worker.async_add(2) == 5
    worker.stop()


@pytest.mark.timeout(60)
@every_context
def test_task_worker_runs_lambdas_local_and_async_functions(context: str) -> None:
    offset = 7

    def local_add(x: int) -> int:
        return x + offset

    async def async_square(x: int) -> int:
        await asyncio.sleep(0.001)
        return x * x

    worker = TaskWorker.options(mode="process", mp_context=context).init()
    assert worker.submit(lambda x: x * 100, 5).result(timeout=30) == 500
    assert worker.submit(local_add, 1).result() == 8
    assert worker.submit(async_square, 6).result() == 36
    assert worker.submit(divmod, 17, 5).result() == (3, 2)
    assert list(worker.map(lambda x: x**2, range(10))) == [x**2 for x in range(10)]
    assert list(worker.map(local_add, [1, 2], timeout=30)) == [8, 9]
    worker.stop()


@pytest.mark.timeout(60)
@pytest.mark.parametrize("context", ["spawn", "forkserver"])
def test_fresh_children_build_local_classes_and_import_little(context: str) -> None:
    class Local(Worker):
        def __init__(self, base: int) -> None:
            self.base = base

        def add(self, x: int) -> int:
            return self.base + x

        def heavy_modules(self) -> list[str]:
            return sorted(name for name in ("pydantic", "morphic", "jinja2") if name in sys.modules)

    worker = Local.options(mode="process", mp_context=context).init(100)
    assert worker.add(1).result(timeout=30) == 101
    assert worker.heavy_modules().result() == []
    worker.stop()


@pytest.mark.timeout(30)
def test_large_arguments_and_results_round_trip() -> None:
    worker = Counter.options(mode="process").init()
    payload = os.urandom(3_000_000)
    assert worker.identity(payload).result(timeout=20) == payload
    assert worker.record("big", payload).result() == len(payload)
    worker.stop()


MAIN_SCRIPT = """
    import os, sys
    from dataclasses import dataclass
    from concurry import TaskWorker, Worker

    print("top level ran", flush=True)  # unguarded: a child must not run this again

    @dataclass
    class Point:
        x: int
        y: int

    class OutOfRange(Exception):
        pass

    class Scaler(Worker):
        def __init__(self, factor):
            self.factor = factor

        def scale(self, point):
            if not isinstance(point, Point):
                raise TypeError(f"expected a Point, got {type(point)}")
            return Point(point.x * self.factor, point.y * self.factor)

        def check(self, value):
            if value > 10:
                raise OutOfRange(f"{value} is out of range")
            return value

    context = sys.argv[1]
    scaler = Scaler.options(mode="process", mp_context=context).init(3)
    result = scaler.scale(Point(1, 2)).result()
    print("scaled", result, type(result) is Point)
    try:
        scaler.check(11).result()
    except OutOfRange as error:
        print("raised", type(error).__name__, error)

    def square(x):  # defined after the worker started: a forked child does not have it either
        return x * x

    tasks = TaskWorker.options(mode="process", mp_context=context).init()
    print("squares", list(tasks.map(square, range(5))))
    print("child pid differs", tasks.submit(os.getpid).result() != os.getpid())
    scaler.stop()
    tasks.stop()
    print("done")
"""


@pytest.mark.timeout(90)
@every_context
def test_main_module_classes_work_and_the_script_runs_once(tmp_path: Path, context: str) -> None:
    completed = run_script(tmp_path, MAIN_SCRIPT, context)
    assert completed.returncode == 0, completed.stderr
    assert completed.stdout.splitlines() == [
        "top level ran",
        "scaled Point(x=3, y=6) True",
        "raised OutOfRange 11 is out of range",
        "squares [0, 1, 4, 9, 16]",
        "child pid differs True",
        "done",
    ]


# -- errors ----------------------------------------------------------------------------------------------------


@pytest.mark.timeout(60)
@pytest.mark.parametrize("context", ["fork", "spawn"])
def test_init_error_arrives_at_the_first_result_and_every_later_call(context: str) -> None:
    worker = BrokenInit.options(mode="process", mp_context=context).init("no disk")  # does not raise here
    with pytest.raises(ValueError, match="cannot start: no disk") as first:
        worker.ping().result(timeout=30)
    assert isinstance(first.value.__cause__, RemoteTraceback)
    assert "__init__" in str(first.value.__cause__)
    for _ in range(2):
        with pytest.raises(ValueError, match="cannot start: no disk"):
            worker.ping().result(timeout=5)
    worker.stop()


@pytest.mark.timeout(30)
def test_exceptions_keep_their_type_message_and_remote_traceback() -> None:
    worker = Counter.options(mode="process").init()
    with pytest.raises(ValueError, match="^Value must be positive$") as raised:
        worker.fail_with_value_error("Value must be positive").result(timeout=20)
    cause = raised.value.__cause__
    assert isinstance(cause, RemoteTraceback)
    assert "fail_with_value_error" in str(cause) and 'raise ValueError(message)' in str(cause)
    with pytest.raises(ZeroDivisionError, match="division by zero"):
        worker.divide(10, 0).result()
    with pytest.raises(CustomError) as custom:
        worker.fail_with_custom_error().result()
    assert custom.value.code == 42 and custom.value.args == ("custom failure", 42)
    assert worker.add(1).result() == 1  # the worker carries on
    worker.stop()


@pytest.mark.timeout(30)
def test_exceptions_that_cannot_travel_arrive_as_a_named_stand_in() -> None:
    worker = Counter.options(mode="process").init()
    with pytest.raises(UnpicklableExceptionError) as unpicklable:
        worker.fail_with_lock().result(timeout=20)
    assert unpicklable.value.type_name.endswith("ErrorHoldingLock")
    assert unpicklable.value.message == "the original message"
    assert "ErrorHoldingLock: the original message" in str(unpicklable.value)
    assert "Counter.fail_with_lock()" in str(unpicklable.value)
    assert isinstance(unpicklable.value.__cause__, RemoteTraceback)
    with pytest.raises(UnpicklableExceptionError, match="NeedsTwoArguments: left and right"):
        worker.fail_with_two_arguments().result()
    assert worker.add(1).result() == 1
    worker.stop()


@pytest.mark.timeout(30)
@pytest.mark.parametrize("context", ["fork", "spawn"])
def test_unpicklable_argument_fails_that_call_only(context: str) -> None:
    worker = Counter.options(mode="process", mp_context=context).init()
    future = worker.identity(threading.Lock())
    with pytest.raises(pickle.PicklingError, match=r"Counter\.identity\(\).*cannot be pickled.*lock"):
        future.result(timeout=20)
    with pytest.raises(pickle.UnpicklingError, match=r"could not unpickle the arguments of identity\(\)"):
        worker.identity(LoadsBadly()).result(timeout=20)
    assert worker.add(2).result(timeout=20) == 2
    worker.stop()


@pytest.mark.timeout(30)
def test_unpicklable_init_arguments_fail_at_init_under_spawn() -> None:
    with pytest.raises(TypeError, match=r"cannot start Counter with mp_context='spawn'.*cannot be pickled"):
        Counter.options(mode="process", mp_context="spawn").init(threading.Lock())


@pytest.mark.timeout(30)
def test_unpicklable_result_fails_that_call_only() -> None:
    worker = Counter.options(mode="process").init()
    with pytest.raises(pickle.PicklingError, match=r"result of Counter\.make_lock\(\).*lock"):
        worker.make_lock().result(timeout=20)
    assert worker.add(2).result() == 2
    worker.stop()


# -- death -----------------------------------------------------------------------------------------------------


@pytest.mark.timeout(60)
@pytest.mark.parametrize("context", ["fork", "spawn", "forkserver"])
def test_sigkill_fails_pending_calls_quickly_and_later_calls_at_once(tmp_path: Path, context: str) -> None:
    worker = Counter.options(mode="process", mp_context=context).init()
    pid = worker.pid().result(timeout=30)
    pending = [worker.wait_for(str(tmp_path / "never"))] + [worker.add(1) for _ in range(5)]
    assert wait_until(pending[0].running)
    killed_at = time.monotonic()
    os.kill(pid, signal.SIGKILL)
    for future in pending:
        error = future.exception(timeout=5)
        assert isinstance(error, WorkerDiedError)
        assert "worker Counter died" in str(error)
    assert time.monotonic() - killed_at < 2.0
    if context != "forkserver":  # a fork-server child's status is collected by the server
        assert "killed by signal SIGKILL" in str(pending[0].exception())
    with pytest.raises(WorkerDiedError, match="worker Counter died"):
        worker.add(1)
    worker.stop()  # still fine after a death
    assert pid not in child_pids()


@pytest.mark.timeout(30)
def test_death_is_noticed_while_a_grandchild_holds_the_pipes(tmp_path: Path) -> None:
    worker = Counter.options(mode="process").init()
    pid = worker.pid().result(timeout=20)
    grandchild = worker.fork_sleeper().result()
    try:
        pending = worker.wait_for(str(tmp_path / "never"))
        assert wait_until(pending.running)
        os.kill(pid, signal.SIGKILL)
        assert isinstance(pending.exception(timeout=2), WorkerDiedError)
    finally:
        os.kill(grandchild, signal.SIGKILL)


# -- cancel and running ----------------------------------------------------------------------------------------


@pytest.mark.timeout(30)
def test_cancel_queued_call_never_runs_and_running_call_cannot_be_cancelled(tmp_path: Path) -> None:
    gate = str(tmp_path / "gate")
    worker = Counter.options(mode="process").init()
    held = worker.wait_for(gate)
    assert wait_until(held.running), "running() never became True while the call executed"
    queued = worker.add(1, tag="cancelled")
    assert not queued.running()
    assert queued.cancel() is True
    assert queued.cancelled() and queued.done() and queued.cancel() is True
    with pytest.raises(CancelledError):
        queued.result()
    assert held.cancel() is False
    assert held.running() and not held.cancelled()
    Path(gate).touch()
    assert held.result(timeout=20) is True
    assert not held.running()
    assert worker.add(1, tag="after").result(timeout=20) == 1  # the cancelled call never ran
    assert worker.get_log().result() == ["after"]
    worker.stop()


@pytest.mark.timeout(60)
def test_cancel_is_exact_while_the_child_races_through_calls(tmp_path: Path) -> None:
    gate = tmp_path / "gate"
    worker = Counter.options(mode="process").init()
    held = worker.wait_for(str(gate))
    futures = [worker.record(i) for i in range(3000)]
    cancelled = set()
    for i in range(1, 3000, 2):
        if i == 501:
            gate.touch()
            assert held.result(timeout=30) is True  # from here on the child runs calls while they are cancelled
        if futures[i].cancel():
            cancelled.add(i)
    for i, future in enumerate(futures):
        if i in cancelled:
            assert future.cancelled()
        else:
            assert future.result(timeout=30) == 0
    assert set(range(1, 501, 2)) <= cancelled
    assert set(worker.get_log().result()) == set(range(3000)) - cancelled
    worker.stop()


@pytest.mark.timeout(30)
def test_calls_beyond_the_pipe_wait_without_blocking_and_can_be_cancelled(tmp_path: Path) -> None:
    gate = str(tmp_path / "gate")
    worker = Counter.options(mode="process").init()
    held = worker.wait_for(gate)
    assert wait_until(held.running)
    payload = b"x" * 100_000
    queued = [worker.record(i, payload) for i in range(40)]  # 4 MB while the child is busy: submit must not block
    cancelled = {i for i in range(0, 40, 3) if queued[i].cancel()}
    assert cancelled == set(range(0, 40, 3))  # none of them had started
    Path(gate).touch()
    assert held.result(timeout=20) is True
    for i, future in enumerate(queued):
        if i in cancelled:
            assert future.cancelled()
        else:
            assert future.result(timeout=20) == len(payload)
    assert worker.get_log().result() == [i for i in range(40) if i not in cancelled]
    worker.stop()


@pytest.mark.timeout(30)
def test_result_times_out_and_waiters_in_several_threads_all_get_their_answers(tmp_path: Path) -> None:
    gate = tmp_path / "gate"
    worker = Counter.options(mode="process").init()
    held = worker.wait_for(str(gate))
    with pytest.raises(TimeoutError):
        held.result(timeout=0.05)
    answers: dict[int, Any] = {}

    def wait_for_answer(i: int) -> None:
        answers[i] = worker.identity(i).result(timeout=20)

    threads = [threading.Thread(target=wait_for_answer, args=(i,)) for i in range(6)]
    for thread in threads:
        thread.start()
    gate.touch()
    for thread in threads:
        thread.join(20)
    assert held.result(timeout=20) is True
    assert answers == {i: i for i in range(6)}
    worker.stop()


# -- stopping and reclaiming -----------------------------------------------------------------------------------


@pytest.mark.timeout(30)
def test_stop_lets_queued_calls_finish_and_is_idempotent() -> None:
    worker = Counter.options(mode="process").init()
    futures = [worker.add(1) for _ in range(50)]
    pid = worker.pid().result(timeout=20)
    worker.stop(timeout=20)
    assert [future.result(timeout=0) for future in futures] == list(range(1, 51))
    worker.stop()
    worker.stop(timeout=0)
    with pytest.raises(RuntimeError, match="worker Counter is stopped"):
        worker.add(1)
    assert pid not in child_pids()


@pytest.mark.timeout(30)
def test_stop_past_its_timeout_terminates_and_resolves_every_call(tmp_path: Path) -> None:
    worker = Counter.options(mode="process").init()
    pid = worker.pid().result(timeout=20)
    running = worker.wait_for(str(tmp_path / "never"))
    queued = [worker.add(1) for _ in range(3)]
    assert wait_until(running.running)
    worker.stop(timeout=0.2)
    assert running.done() and all(future.done() for future in queued)
    error = running.exception()
    assert isinstance(error, RuntimeError) and "stop() timed out" in str(error)
    assert all(future.cancelled() for future in queued)
    assert pid not in child_pids()


@pytest.mark.timeout(30)
def test_stop_from_a_done_callback_does_not_deadlock() -> None:
    worker = Counter.options(mode="process").init()
    stopped = threading.Event()

    def stop_worker(_: Any) -> None:
        worker.stop()
        stopped.set()

    worker.add(1).add_done_callback(stop_worker)
    assert stopped.wait(20)
    with pytest.raises(RuntimeError, match="is stopped"):
        worker.add(1)


@pytest.mark.timeout(30)
def test_dropped_proxy_reclaims_its_child() -> None:
    worker = Counter.options(mode="process").init()
    pid = worker.pid().result(timeout=20)
    assert pid in child_pids()
    del worker
    gc.collect()
    assert wait_until(lambda: pid not in child_pids(), timeout=10)


@pytest.mark.timeout(30)
def test_forked_copy_of_the_parent_cannot_use_its_workers() -> None:
    worker = Counter.options(mode="process").init()
    assert worker.add(1).result(timeout=20) == 1
    pid = os.fork()
    if pid == 0:
        try:
            worker.add(1)
        except RuntimeError as error:
            os._exit(0 if "a process forked from it cannot call it" in str(error) else 2)
        os._exit(1)
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0
    assert worker.add(1).result(timeout=20) == 2  # the forked copy left the parent's pipes alone
    worker.stop()


EXIT_SCRIPT = """
    import os
    from concurry import Worker

    class Sleeper(Worker):
        def nap(self, seconds):
            import time
            time.sleep(seconds)
            return os.getpid()

    workers = [Sleeper.options(mode="process", mp_context=c).init() for c in ("fork", "spawn", "forkserver")]
    pids = [w.nap(0).result() for w in workers]
    pending = [w.nap(0.2) for w in workers]  # still queued when the script ends; never stopped
    print(*pids, flush=True)
"""


@pytest.mark.timeout(90)
def test_interpreter_exits_cleanly_with_live_workers(tmp_path: Path) -> None:
    completed = run_script(tmp_path, EXIT_SCRIPT, timeout=60)
    assert completed.returncode == 0, completed.stderr
    assert completed.stderr == ""
    pids = [int(pid) for pid in completed.stdout.split()]
    assert len(pids) == 3
    assert wait_until(lambda: all(process_gone(pid) for pid in pids), timeout=10)


@pytest.mark.timeout(120)
def test_start_stop_cycles_leave_no_threads_processes_or_descriptors() -> None:
    warm = Counter.options(mode="process").init()
    warm.add(1).result(timeout=20)
    warm.stop()
    threads, children, fds = worker_threads(), child_pids(), open_fds()
    for cycle in range(200):
        worker = Counter.options(mode="process").init(cycle)
        if cycle % 20 == 0:
            assert worker.add(1).result(timeout=20) == cycle + 1
        worker.stop()
    assert wait_until(lambda: worker_threads() <= threads), worker_threads() - threads
    assert child_pids() <= children, child_pids() - children
    assert open_fds() <= fds, open_fds() - fds


@pytest.mark.timeout(60)
def test_a_forked_child_ignores_the_parents_sigterm_handler(tmp_path: Path) -> None:
    """stop(timeout) ends an overdue child with SIGTERM; a handler the parent installed must not run there."""
    done = run_script(
        tmp_path,
        """
        import signal, sys, time
        from concurry import Worker

        signal.signal(signal.SIGTERM, lambda *a: sys.exit(1))

        class Job(Worker):
            def work(self, seconds: float) -> float:
                time.sleep(seconds)
                return seconds

        worker = Job.options(mode="process", mp_context="fork").init()
        calls = [worker.work(0.5) for _ in range(3)]
        while not calls[0].running():
            time.sleep(0.01)
        worker.stop(timeout=0.05)
        print([f.cancelled() or type(f.exception(timeout=5)).__name__ for f in calls])
        """,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "['WorkerStoppedError', True, True]"
