# pyright: reportPrivateUsage=false
# Private names here are shared within the package: the backend drives its futures' internal state on the hot path
# (package-private protocol).
"""Thread mode: one dedicated thread per worker, fed through a ``SimpleQueue``.

Habits taken from ``concurrent.futures.thread``: a queued call whose future was cancelled is skipped, never run;
the thread holds no reference to the proxy, so a dropped proxy is collected and its finalizer stops the thread;
a ``None`` sentinel ends the loop; references to finished calls are dropped at once.

The hot path takes no lock. A queued call is its own ``ConcurrentFuture`` (see ``concurry.core.future`` for how
the thread claims it against ``cancel()`` and completes it). ``submit`` and the proxy's call functions come from
``concurry/codegen/templates/calls.py.j2``; they check the stopped flag *after* queueing: ``stop()`` sets the
flag before it queues the sentinel, so a call that sees no flag is ahead of the sentinel and will run, and a call
that sees it is cancelled unless the thread has already started it.
"""

from __future__ import annotations

import threading
from queue import Empty, SimpleQueue
from typing import TYPE_CHECKING, Any, Callable, Mapping, Optional, TypeVar

from concurry.codegen.calls import Flavor, flavor_namespace
from concurry.codegen.spec import MethodSpec, WorkerSpec
from concurry.core.backend import make_instance
from concurry.core.execution import CoroutineRunner, CoroutineType, bind_methods
from concurry.core.future import FINISHED, RUNNING, ConcurrentFuture, Future
from concurry.core.options import WorkerOptions
from concurry.core.proxy import stopped_error
from concurry.core.unwrap import Submit
from concurry.core.worker_side import WorkerSideConfig, worker_side_config

__all__ = [
    "NEW_THREAD_FUTURE", "CallQueue", "KeywordCall", "ThreadBackend", "ThreadFuture", "refuse_queued",
    "run_queued", "serve_calls", "stop_thread",
]

T = TypeVar("T")


class ThreadFuture(ConcurrentFuture[T]):
    """The future of a thread-mode call, which also carries the call (see ``ConcurrentFuture``).

    Made only by this backend's ``submit`` and the proxy's call functions, which set every field themselves, so its
    constructor is the C-level ``object.__init__``: ``NEW_THREAD_FUTURE()`` costs about two thirds of
    ``object.__new__(ConcurrentFuture)``, on every call.
    """

    __slots__ = ()
    if not TYPE_CHECKING:  # for checkers, the constructor of ConcurrentFuture
        __init__ = object.__init__


NEW_THREAD_FUTURE: Callable[[], ThreadFuture[Any]] = type.__call__.__get__(ThreadFuture)  # pyright: ignore[reportAttributeAccessIssue, reportUnknownMemberType, reportUnknownVariableType]
"""``ThreadFuture()`` through ``type.__call__`` bound to the class: the cheapest way to make one."""

class KeywordCall:
    """``_call_args`` of a queued call with keyword arguments (made only by ``submit``; see ``run_queued``)."""

    __slots__ = ("args", "kwargs")

    def __init__(self, args: tuple[Any, ...], kwargs: dict[str, Any]) -> None:
        self.args = args
        self.kwargs = kwargs


class CallQueue:
    """A worker thread's inbox, with the protocol every caller follows (see the module docstring): calls are queued
    by ``submit`` and by call functions (``flavor``) and read the stopping flag after the put, and ``close()`` raises
    the flag before it queues the sentinel. Thread mode's backend and asyncio mode's sync thread each have one."""

    __slots__ = ("queue", "stopping", "worker_name", "submit")

    submit: Submit

    def __init__(self, worker_name: str) -> None:
        self.queue: SimpleQueue[Optional[ConcurrentFuture[Any]]] = SimpleQueue()
        self.stopping: list[bool] = []  # non-empty once closed
        self.worker_name = worker_name
        self.submit = flavor_namespace("thread")["submit_function"](self.queue.put, self.stopping, worker_name)

    @property
    def target(self) -> tuple[Callable[[ConcurrentFuture[Any]], None], list[bool], str]:
        """What a call function needs to queue a call here: the queue's ``put``, the stopping flag and the worker's
        name (for the stopped-worker error). A thread pool's call functions hold one per member."""
        return self.queue.put, self.stopping, self.worker_name

    def flavor(self, others: Submit) -> Flavor:
        """The call functions of calls queued here (see ``concurry.codegen.calls``)."""
        put, stopping, worker_name = self.target
        return "thread", {"put": put, "stopping": stopping, "worker_name": worker_name, "others": others}

    def close(self) -> bool:
        """Raise the stopping flag, then queue the sentinel; False if it was closed already. Callers serialise it."""
        if self.stopping:
            return False
        self.stopping.append(True)
        self.queue.put(None)
        return True


class ThreadBackend:
    __slots__ = ("_spec", "_init_args", "_init_kwargs", "call_queue", "_lock", "_thread", "submit", "_worker_side")

    submit: Submit

    stops_at_once = False

    def __init__(
        self, spec: WorkerSpec, init_args: tuple[Any, ...], init_kwargs: Mapping[str, Any], options: WorkerOptions
    ) -> None:
        self._spec = spec
        self._init_args = init_args
        self._init_kwargs = dict(init_kwargs)
        self.call_queue = CallQueue(spec.name)
        self._lock = threading.Lock()  # serialises stop() calls only
        self._thread: Optional[threading.Thread] = None
        self.submit = self.call_queue.submit
        self._worker_side = worker_side_config(spec, options)

    def call_flavor(self, others: Submit, method: MethodSpec) -> Flavor:
        """What the proxy's call functions are made of (see ``concurry.codegen.calls``): the same for every method."""
        return self.call_queue.flavor(others)

    def start(self) -> None:
        self._thread = threading.Thread(
            target=serve_calls,
            args=(self.call_queue.queue, self._spec, self._init_args, self._init_kwargs, self._worker_side),
            name=f"concurry-thread-{self._spec.name}",
            daemon=True,
        )
        self._thread.start()

    def stop(self, timeout: Optional[float]) -> None:
        with self._lock:
            if not self.call_queue.close():
                return
        stop_thread(self._thread, self.call_queue.queue, timeout)

    @property
    def alive(self) -> bool:
        return not self.call_queue.stopping and self._thread is not None and self._thread.is_alive()


def refuse_queued(future: ConcurrentFuture[Any], worker_name: str) -> Future[Any]:
    """A call queued while ``stop()`` ran: it stands only if the thread already took it."""
    if future.cancel():
        raise stopped_error(worker_name)
    return future


def stop_thread(thread: Optional[threading.Thread], queue: SimpleQueue[Any], timeout: Optional[float]) -> None:
    """Wait for the thread to finish its queue; past ``timeout``, cancel whatever it has not started."""
    if thread is None or thread is threading.current_thread():
        return
    thread.join(timeout)
    if thread.is_alive():
        while True:
            try:
                call = queue.get_nowait()
            except Empty:
                break
            if call is not None:
                call.cancel()
        queue.put(None)  # the drain may have taken the sentinel; the thread still needs one to exit


def serve_calls(
    queue: SimpleQueue[Optional[ConcurrentFuture[Any]]],
    spec: WorkerSpec,
    init_args: tuple[Any, ...],
    init_kwargs: dict[str, Any],
    worker_side: Optional[WorkerSideConfig] = None,
) -> None:
    """The worker thread: build the instance, then run calls in order until the sentinel."""
    try:
        methods = bind_methods(make_instance(spec.cls, init_args, init_kwargs), spec, worker_side)
    except BaseException as error:  # reported through the futures of the calls that follow
        _fail_queued(queue, error)
    else:
        run_queued(queue, methods)


def run_queued(
    queue: SimpleQueue[Optional[ConcurrentFuture[Any]]],
    methods: dict[str, Any],
    hand_off: Optional[Callable[[ConcurrentFuture[Any], CoroutineType[Any, Any, Any]], None]] = None,
) -> None:
    """Run queued calls (futures carrying their call, as ``ThreadBackend.submit`` makes them) until the sentinel.

    A call's ``_call_args`` is a tuple of its positional arguments, a ``KeywordCall``, or else its one argument
    itself: a call function of a one-parameter method queues a lone argument so (no tuple to build, free or unpack),
    and only when it is a leaf (``concurry.core.unwrap.LEAF_TYPES``), which a tuple never is.
    The future's claim and completion are inlined from ``ConcurrentFuture.set_running_or_notify_cancel`` and
    ``set_result``/``set_exception``: at one call per iteration, two method calls are a fair share of the loop.
    With ``hand_off`` (asyncio mode), a coroutine returned by a call is passed on with the call's future instead of
    being run here, so a backend with an event loop of its own can run it without blocking this thread.
    """
    runner = CoroutineRunner()
    get = queue.get
    try:
        while True:
            future = get()
            if future is None:
                break
            future._started = True
            if future._callbacks is not None and future._cancel_won():
                continue
            future._state = RUNNING
            args = future._call_args
            future._call_args = ()  # the future outlives the call; its arguments need not
            try:
                form = type(args)  # pyright: ignore[reportUnknownVariableType]  # of an Any
                if form is tuple:
                    result = methods[future._call_name](*args)
                elif form is KeywordCall:
                    result = methods[future._call_name](*args.args, **args.kwargs)
                else:
                    result = methods[future._call_name](args)
                if type(result) is CoroutineType:
                    if hand_off is not None:
                        hand_off(future, result)  # pyright: ignore[reportUnknownArgumentType]  # whoever took the coroutine completes the future
                        del future, args, result
                        continue
                    result = runner.run(result)  # pyright: ignore[reportUnknownArgumentType]  # a coroutine narrowed from Any
            except BaseException as error:
                future._exception = error
                del error
            else:
                future._result = result
                del result
            future._state = FINISHED
            if future._callbacks is not None:
                future._on_complete()
            del future, args
    finally:
        runner.close()


def _fail_queued(queue: SimpleQueue[Optional[ConcurrentFuture[Any]]], error: BaseException) -> None:
    """After a failed ``__init__``: every call fails with its error, until the sentinel."""
    while True:
        future = queue.get()
        if future is None:
            return
        if future.set_running_or_notify_cancel():
            future.set_exception(error)
