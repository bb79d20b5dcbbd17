"""Asyncio mode: async methods run concurrently on an event-loop thread, sync methods on a thread of their own.

Routing is decided once, from the worker's spec: names in ``spec.async_methods`` go to the loop, every other
call to the sync thread, so a slow sync method never stalls the loop and a long async call never holds up a sync
one. The sync thread is thread mode's: its calls go through a ``CallQueue`` (queued by the proxy's call functions
and by ``submit``, with thread mode's stop protocol) and are run by ``run_queued``. A coroutine returned by a sync
method is handed back to the loop rather than run on the sync thread; ``TaskWorker.submit`` of an async function
goes to the loop directly.

Calls reach the loop through an inbox drained in batches: a burst of submissions costs one loop wake-up, not
one each. The instance is created on the loop before ``start()`` returns, so setup errors raise at ``init()``
and asyncio objects made in ``__init__`` (locks, queues, client sessions) belong to the worker's loop. Model
workers are the exception: ``init()`` builds and validates them in the caller (see ``concurry.core.backend.Built``).
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections import deque
from inspect import iscoroutinefunction
from typing import Any, Awaitable, Callable, Mapping, Optional

from concurry.backends.thread import CallQueue, run_queued, stop_thread
from concurry.codegen.calls import Flavor
from concurry.codegen.spec import MethodSpec, WorkerSpec
from concurry.core.backend import make_instance
from concurry.core.execution import CoroutineType, bind_methods
from concurry.core.worker_side import worker_side_config
from concurry.core.future import CancelledError, ConcurrentFuture, Future
from concurry.core.options import WorkerOptions
from concurry.core.proxy import stopped_error
from concurry.core.task import TaskWorker
from concurry.core.unwrap import Submit

__all__ = ["AsyncioBackend"]

# A loop call: the future, what to call, its arguments. The callable returns the awaitable the loop runs.
LoopCall = tuple[ConcurrentFuture[Any], Callable[..., Awaitable[Any]], tuple[Any, ...], Optional[dict[str, Any]]]

# How long coroutines cancelled by stop() get to unwind before their calls are failed regardless.
STOP_GRACE = 1.0


class AsyncioBackend:
    """Runs one worker on two threads of its own: an event loop for async methods, a thread for the rest."""

    __slots__ = (
        "_spec",
        "_name",
        "_init_args",
        "_init_kwargs",
        "_methods",
        "_async_methods",
        "_task_submit",
        "_worker_side",
        "_lock",
        "_stopped",
        "_sync_calls",
        "_sync_thread",
        "_loop",
        "_loop_thread",
        "_call_soon",
        "_loop_open",
        "_inbox",
        "_wakeup_pending",
        "_calls",
        "_closing",
    )

    stops_at_once = False

    def __init__(
        self, spec: WorkerSpec, init_args: tuple[Any, ...], init_kwargs: Mapping[str, Any], options: WorkerOptions
    ) -> None:
        self._spec = spec
        self._name = spec.name
        self._init_args = init_args
        self._init_kwargs = dict(init_kwargs)
        self._methods: dict[str, Callable[..., Any]] = {}
        self._async_methods = spec.async_methods
        self._worker_side = worker_side_config(spec, options)
        # TaskWorker.submit of an async function skips the sync thread, unless it must go through its retries.
        retried = self._worker_side is not None and "submit" in self._worker_side.retries
        is_task_submit = getattr(spec.cls, "submit", None) is TaskWorker.submit
        self._task_submit = "submit" if is_task_submit and not retried else None
        # Guards _stopped/_loop_open against submissions, so nothing is queued once shutdown has begun.
        self._lock = threading.Lock()
        self._stopped = False
        self._sync_calls = CallQueue(spec.name)
        self._sync_thread: Optional[threading.Thread] = None
        self._loop: Optional[asyncio.AbstractEventLoop] = None
        self._loop_thread: Optional[threading.Thread] = None
        self._call_soon: Callable[..., Any]  # the loop's call_soon_threadsafe, set by start()
        self._loop_open = False
        self._inbox: deque[LoopCall] = deque()
        self._wakeup_pending = False
        self._calls: dict[ConcurrentFuture[Any], asyncio.Task[None]] = {}  # loop thread only
        self._closing = False

    # -- lifecycle (caller's thread) ----------------------------------------------------------------------------
    def start(self) -> None:
        loop = self._loop = asyncio.new_event_loop()
        self._call_soon = loop.call_soon_threadsafe
        self._loop_open = True
        self._loop_thread = threading.Thread(
            target=self._serve_loop, name=f"concurry-asyncio-{self._name}", daemon=True
        )
        self._loop_thread.start()
        created: ConcurrentFuture[Any] = ConcurrentFuture()
        self._call_soon(self._create_instance, created)
        try:
            instance = created.result()
        except BaseException:
            self._stopped = True
            self._call_soon(loop.stop)
            self._loop_thread.join()
            raise
        self._methods = bind_methods(instance, self._spec, self._worker_side)
        self._sync_thread = threading.Thread(
            target=run_queued,
            args=(self._sync_calls.queue, self._methods, self._hand_off),
            name=f"concurry-asyncio-sync-{self._name}",
            daemon=True,
        )
        self._sync_thread.start()

    def submit(self, method: str, args: tuple[Any, ...], kwargs: Optional[dict[str, Any]]) -> Future[Any]:
        if method in self._async_methods:
            call: Callable[..., Awaitable[Any]] = self._methods[method]
        elif method == self._task_submit and iscoroutinefunction(args[0]):
            call, args = args[0], args[1:]
        else:
            return self._sync_calls.submit(method, args, kwargs)
        future: ConcurrentFuture[Any] = ConcurrentFuture()
        with self._lock:
            if self._stopped:
                raise stopped_error(self._name)
            self._send((future, call, args, kwargs))
        return future

    def call_flavor(self, others: Submit, method: MethodSpec) -> Flavor:
        """What the proxy's call functions are made of (see ``concurry.codegen.calls``): a sync method's call is
        queued for the sync thread as in thread mode; an async method's goes through ``submit`` to the loop."""
        if method.name in self._async_methods:
            return "forward", {"submit": self.submit, "others": others}
        return self._sync_calls.flavor(others)

    def stop(self, timeout: Optional[float]) -> None:
        with self._lock:
            if self._stopped:
                return
            self._stopped = True
            self._sync_calls.close()
        if self._loop_thread is None:
            return
        if threading.current_thread() is self._loop_thread:
            # Called from a call running on the loop: waiting here would stall the loop that must finish it.
            threading.Thread(
                target=self._shut_down, args=(timeout,), name=f"concurry-asyncio-stop-{self._name}", daemon=True
            ).start()
        else:
            self._shut_down(timeout)

    @property
    def alive(self) -> bool:
        return not self._stopped and self._loop_thread is not None and self._loop_thread.is_alive()

    def _shut_down(self, timeout: Optional[float]) -> None:
        """Finish the sync thread's queue, then let the loop finish its calls; the timeout covers both."""
        deadline = None if timeout is None else time.monotonic() + timeout
        stop_thread(self._sync_thread, self._sync_calls.queue, timeout)
        remaining = None if deadline is None else max(deadline - time.monotonic(), 0.0)
        self._call_soon(self._begin_settling, remaining)
        assert self._loop_thread is not None
        # The loop takes up to ``remaining`` to settle, then up to STOP_GRACE to unwind what it had to cancel.
        self._loop_thread.join(None if remaining is None else remaining + 2 * STOP_GRACE)

    def _send(self, call: LoopCall) -> None:
        """Queue a call for the loop, waking it only if no drain is already scheduled. Hold ``_lock``."""
        self._inbox.append(call)
        if not self._wakeup_pending:
            self._wakeup_pending = True
            self._call_soon(self._drain)

    # -- sync thread ----------------------------------------------------------------------------------------------
    def _hand_off(self, future: ConcurrentFuture[Any], coroutine: CoroutineType[Any, Any, Any]) -> None:
        """Run a coroutine a sync method returned on the loop, so the sync thread moves on to its next call."""
        with self._lock:
            if self._loop_open:
                self._send((future, _as_is, (coroutine,), None))
                return
        coroutine.close()
        raise _interrupted(self._name)

    # -- loop thread ----------------------------------------------------------------------------------------------
    def _serve_loop(self) -> None:
        loop = self._loop
        assert loop is not None
        asyncio.set_event_loop(loop)
        try:
            loop.run_forever()
        finally:
            self._close_loop(loop)
            asyncio.set_event_loop(None)

    def _create_instance(self, created: ConcurrentFuture[Any]) -> None:
        try:
            instance = make_instance(self._spec.cls, self._init_args, self._init_kwargs)
        except BaseException as error:
            created.set_exception(error)
        else:
            created.set_result(instance)

    def _drain(self) -> None:
        self._wakeup_pending = False  # cleared first: a call queued from now on schedules another drain
        inbox = self._inbox
        calls = self._calls
        create_task = self._loop.create_task  # type: ignore[union-attr]
        run = self._run
        while inbox:
            future, fn, args, kwargs = inbox.popleft()
            calls[future] = create_task(run(future, fn, args, kwargs))

    async def _run(
        self,
        future: ConcurrentFuture[Any],
        fn: Callable[..., Awaitable[Any]],
        args: tuple[Any, ...],
        kwargs: Optional[dict[str, Any]],
    ) -> None:
        """One call on the loop: honour a cancel that came first, await the call, complete its future."""
        try:
            if not future.set_running_or_notify_cancel():
                return
            try:
                result = await (fn(*args, **kwargs) if kwargs else fn(*args))
            except BaseException as error:
                if self._closing and type(error) is asyncio.CancelledError:
                    future.set_exception(_interrupted(self._name))
                else:
                    future.set_exception(error)
            else:
                future.set_result(result)
        finally:
            self._calls.pop(future, None)
            del future, fn, args, kwargs  # a failed call's traceback keeps this frame: it must not keep the call

    def _begin_settling(self, timeout: Optional[float]) -> None:
        self._loop.create_task(self._settle(timeout))  # type: ignore[union-attr]

    async def _settle(self, timeout: Optional[float]) -> None:
        """Let the calls in flight finish, for at most ``timeout`` seconds, then end the loop."""
        if self._calls:
            await asyncio.wait(tuple(self._calls.values()), timeout=timeout)
        self._loop.stop()  # type: ignore[union-attr]

    def _close_loop(self, loop: asyncio.AbstractEventLoop) -> None:
        """Resolve every call still pending, cancel what still runs, and close the loop."""
        with self._lock:
            self._loop_open = False
        while self._inbox:  # queued but never picked up: cancel; a handed-off coroutine's call has started
            future, _, args, _ = self._inbox.popleft()
            if not future.cancel():
                args[0].close()
                future.set_exception(_interrupted(self._name))
        tasks = asyncio.all_tasks(loop)
        if tasks:
            self._closing = True
            for task in tasks:
                task.cancel()
            loop.run_until_complete(asyncio.wait(tasks, timeout=STOP_GRACE))
        loop.run_until_complete(loop.shutdown_asyncgens())
        loop.run_until_complete(loop.shutdown_default_executor())
        for future in self._calls:  # never started, or ignored the cancellation: the loop runs no more
            if not future.cancel():
                future.set_exception(_interrupted(self._name))
        self._calls.clear()
        loop.close()


def _as_is(awaitable: Awaitable[Any]) -> Awaitable[Any]:
    """The loop-side callable of a handed-off coroutine: the call already ran, only the awaiting is left."""
    return awaitable


def _interrupted(worker_name: str) -> CancelledError:
    return CancelledError(f"worker {worker_name} was stopped before this call finished")
