"""Futures returned by worker calls.

One generic ``Future[T]`` with the ``concurrent.futures.Future`` interface plus ``__await__`` and a ``uuid``.
Backends complete futures from their own threads. Futures are on every call's path, so they are built to be
cheap: a ``SyncFuture`` is created complete, and a ``ConcurrentFuture`` takes no lock on the common path:

- everything that watches a call goes into its one ``_callbacks`` list, None until someone watches: done-callbacks,
  and the ``_thread`` lock a waiter blocks on (made only when someone waits on a call that is not done yet). So a
  call nobody watches costs the thread that completes it one test, and the collector one slot;
- the thread that starts a call claims it without the global lock: it announces itself (``_started``), then
  looks for a cancel in progress, while ``cancel()`` makes ``_callbacks`` a list and raises ``_cancelling``,
  then looks for the announcement. Under the GIL one of the two always sees the other, so a queued call is
  either cancelled (``cancel()`` returns True and the call never runs) or started (``cancel()`` returns False),
  never both. ``_cancelling`` stays unset until a cancel, and is only read once ``_callbacks`` is a list;
- a running call is completed only by the thread running it, so its completion needs no lock either; waiters
  and done-callbacks are published before the state is read again, and are taken from their list one ``pop`` at
  a time, so each runs exactly once whichever side runs it.

Transitions from PENDING straight to FINISHED or CANCELLED (a call failed before it started, a process-mode
answer, ``Future.cancel``) take ``_transition_lock`` as before.
"""

from __future__ import annotations

import itertools
from _thread import LockType, allocate_lock
from concurrent.futures import CancelledError
from typing import TYPE_CHECKING, Any, Callable, Generator, Generic, Optional, TypeVar

if TYPE_CHECKING:
    import asyncio

__all__ = ["BaseFuture", "CancelledError", "ConcurrentFuture", "FailedSyncFuture", "Future", "SyncFuture"]

T = TypeVar("T")
R = TypeVar("R")

if TYPE_CHECKING:
    from typing import Protocol

    T_co = TypeVar("T_co", covariant=True)

    class FutureOf(Protocol[T_co]):
        """For type checkers: a concurry future whose result is a ``T`` or a subtype of it. A proxy method accepts
        one wherever the worker method takes a ``T``, since futures passed as arguments are unwrapped before
        the call runs (``Future`` itself is invariant, so ``Future[int]`` alone would not do for a ``float``)."""

        @property
        def uuid(self) -> str: ...

        def result(self, timeout: Optional[float] = None) -> T_co: ...

PENDING = 0
RUNNING = 1
FINISHED = 2
CANCELLED = 3

_STATE_NAMES = {PENDING: "pending", RUNNING: "running", FINISHED: "finished", CANCELLED: "cancelled"}

# Guards the PENDING -> RUNNING / CANCELLED race between a worker starting a call and a caller cancelling it.
_transition_lock = allocate_lock()
_ids = itertools.count(1)
_NO_TIMEOUT = -1


class Future(Generic[T]):
    """The result of a worker call, completed by the backend that ran it.

    ``BaseFuture`` is this class; per-backend subclasses differ only in how waiting works.
    """

    __slots__ = ("_state", "_result", "_exception", "_callbacks", "_uuid", "__weakref__")

    _kind = "future"

    _state: int
    _result: Any
    _exception: Optional[BaseException]
    _callbacks: Optional[list[Any]]  # done-callbacks; a ConcurrentFuture's also holds the lock of any waiter
    _uuid: Optional[str]

    def __init__(self) -> None:
        self._state = PENDING
        self._result = None
        self._exception = None
        self._callbacks = None
        self._uuid = None

    # -- identity -----------------------------------------------------------------------------------------------
    @property
    def uuid(self) -> str:
        """A string unique within this process, made on first use so calls that never ask pay nothing."""
        uuid = getattr(self, "_uuid", None)  # fast constructors leave the slot unset
        if uuid is None:
            uuid = self._uuid = f"{self._kind}-future-{next(_ids)}-{id(self):x}"
        return uuid

    def __repr__(self) -> str:
        state = _STATE_NAMES[self._state]
        if self._state == FINISHED:
            if self._exception is not None:
                return f"<{type(self).__name__} {state} raised {type(self._exception).__name__}>"
            return f"<{type(self).__name__} {state} returned {type(self._result).__name__}>"
        return f"<{type(self).__name__} {state}>"

    # -- state --------------------------------------------------------------------------------------------------
    def done(self) -> bool:
        return self._state >= FINISHED

    def running(self) -> bool:
        return self._state == RUNNING

    def cancelled(self) -> bool:
        return self._state == CANCELLED

    def cancel(self) -> bool:
        """Cancel a call that has not started. Returns False once it runs or has finished."""
        with _transition_lock:
            state = self._state
            if state == CANCELLED:
                return True
            if state != PENDING:
                return False
            self._state = CANCELLED
        self._on_complete()
        return True

    # -- results ------------------------------------------------------------------------------------------------
    def _wait(self, timeout: Optional[float]) -> None:
        """Block until done or raise ``TimeoutError``. Overridden by futures completed in other threads."""

    def result(self, timeout: Optional[float] = None) -> T:
        state = self._state
        if state != FINISHED:
            if state < FINISHED:
                self._wait(timeout)
            if self._state == CANCELLED:
                raise CancelledError()
        exc = self._exception
        if exc is not None:
            raise exc
        return self._result  # type: ignore[no-any-return]

    def exception(self, timeout: Optional[float] = None) -> Optional[BaseException]:
        if self._state < FINISHED:
            self._wait(timeout)
        if self._state == CANCELLED:
            raise CancelledError()
        return self._exception

    def add_done_callback(self, fn: Callable[[Future[T]], object]) -> None:
        """Call ``fn(future)`` when the future completes; at once if it already has."""
        with _transition_lock:
            if self._state >= FINISHED:
                pending = False
            else:
                pending = True
                if self._callbacks is None:
                    self._callbacks = [fn]
                else:
                    self._callbacks.append(fn)
        if not pending:
            _invoke_callback(fn, self)
        elif self._state >= FINISHED:  # completed without the lock after fn was added: fn may have been missed
            self._run_callbacks()

    def __await__(self) -> Generator[Any, None, T]:
        if self._state < FINISHED:
            import asyncio  # imported on first await: most programs never await a worker call

            loop = asyncio.get_running_loop()
            waiter: asyncio.Future[None] = loop.create_future()

            def wake(_: Future[T]) -> None:
                loop.call_soon_threadsafe(_resolve_waiter, waiter)

            self.add_done_callback(wake)
            yield from waiter.__await__()
        return self.result()

    # -- completion (backends only) -----------------------------------------------------------------------------
    def set_running_or_notify_cancel(self) -> bool:
        """Mark the call as started; False if it was cancelled first and must not run."""
        with _transition_lock:
            state = self._state
            if state == CANCELLED:
                return False
            if state == PENDING:
                self._state = RUNNING
            return True

    def set_result(self, value: T) -> None:
        self._finish(value, None)

    def set_exception(self, exception: BaseException) -> None:
        self._finish(None, exception)

    def _finish(self, value: Any, exception: Optional[BaseException]) -> None:
        """Complete the future unless it already is (a cancelled call's late outcome is dropped)."""
        with _transition_lock:
            if self._state >= FINISHED:
                return
            self._result = value
            self._exception = exception
            self._state = FINISHED
        self._on_complete()

    def _on_complete(self) -> None:
        if self._callbacks is not None:
            self._run_callbacks()

    def _run_callbacks(self) -> None:
        """Run the callbacks not yet run, in order; ``pop`` is atomic, so concurrent runs share them out."""
        callbacks = self._callbacks
        if callbacks is None:
            return
        while True:
            try:
                fn = callbacks.pop(0)
            except IndexError:
                return
            if type(fn) is LockType:  # a waiter's lock (ConcurrentFuture._wait)
                fn.release()
            else:
                _invoke_callback(fn, self)


def _invoke_callback(fn: Callable[[Future[Any]], object], future: Future[Any]) -> None:
    try:
        fn(future)
    except Exception:  # a failing callback must not break the backend that completed the future
        import logging

        logging.getLogger("concurry").exception("done callback %r of %r raised", fn, future)


def _resolve_waiter(waiter: asyncio.Future[None]) -> None:
    if not waiter.done():
        waiter.set_result(None)


BaseFuture = Future


if TYPE_CHECKING:
    from concurry.backends.ray import RayFuture as RayFuture
else:
    # Hidden from type checkers, which would otherwise accept any name imported from this module.

    def __getattr__(name: str) -> Any:
        """``RayFuture`` lives with the Ray backend; importing it on first use keeps ray out of ``import concurry``."""
        if name == "RayFuture":
            from concurry.backends.ray import RayFuture

            return RayFuture
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


class SyncFuture(Future[T]):
    """A future that is complete when created: sync mode runs the call before returning.

    A call that returned gets a ``SyncFuture``; one that raised gets a ``FailedSyncFuture``, its subclass. So each
    holds one outcome, and ``result()`` tests nothing: ``_exception`` is None for the class, not per instance.
    Built with ``of_result``/``of_exception`` (or the sync backend's inlined equivalent): the constructor is the
    C-level ``object.__init__``, because a Python ``__init__`` would be a noticeable share of a sync call.
    """

    __slots__ = ()
    _kind = "sync"
    # For the class, not per instance: one store less per call (nothing ever changes them).
    _state = FINISHED
    _exception: Optional[BaseException] = None
    if not TYPE_CHECKING:  # the same signature as Future.__init__, without its Python frame
        __init__ = object.__init__

    def _wait(self, timeout: Optional[float]) -> None:
        raise AssertionError("a SyncFuture is created complete")  # pragma: no cover

    def result(self, timeout: Optional[float] = None) -> T:
        return self._result  # type: ignore[no-any-return]

    def add_done_callback(self, fn: Callable[[Future[T]], object]) -> None:
        _invoke_callback(fn, self)

    def __reduce__(self) -> tuple[Any, ...]:
        """Pickled and copied by its outcome and uuid (the default would set the class's ``_state``). The uuid is
        made now if it was not yet, so the copy in another process has the same one."""
        return SyncFuture._rebuilt, (self._result, self._exception, self.uuid)

    @staticmethod
    def _rebuilt(result: Any, exception: Optional[BaseException], uuid: str) -> SyncFuture[Any]:
        future = SyncFuture.of_exception(exception) if exception is not None else SyncFuture.of_result(result)
        future._uuid = uuid
        return future

    @staticmethod
    def of_result(value: R) -> SyncFuture[R]:
        future: SyncFuture[R] = SyncFuture()
        future._result = value
        return future

    @staticmethod
    def of_exception(exception: BaseException) -> SyncFuture[Any]:
        """A ``FailedSyncFuture``: the outcome picks the class."""
        future: SyncFuture[Any] = FailedSyncFuture()
        future._exception = exception
        return future


class FailedSyncFuture(SyncFuture[T]):
    """A sync-mode future whose call raised: ``result()`` raises the call's exception."""

    __slots__ = ()
    # The slot SyncFuture's class attribute hides, back in place; a failed call has no result.
    if not TYPE_CHECKING:
        _exception = Future.__dict__["_exception"]
    _result = None

    def result(self, timeout: Optional[float] = None) -> T:
        raise self._exception  # type: ignore[misc]


class ConcurrentFuture(Future[T]):
    """A future completed by another thread (thread, asyncio and process modes).

    A queued thread-mode call is its own future: ``_call_name`` and ``_call_args`` carry it, so a call costs one
    object rather than a future and a tuple (see ``concurry.backends.thread.run_queued`` for the forms of
    ``_call_args``). See the module docstring for the claiming protocol.
    """

    __slots__ = ("_cancelling", "_started", "_call_name", "_call_args")
    _kind = "concurrent"

    _cancelling: bool  # unset until cancel() runs
    _started: bool  # unset until a runner claims the call
    _call_name: str
    _call_args: Any

    def cancel(self) -> bool:
        """Cancel a call that has not started. Returns False once it runs or has finished."""
        with _transition_lock:  # serialises cancellers; the runner takes it only when it sees the flag
            state = self._state
            if state == CANCELLED:
                return True
            if state != PENDING:
                return False
            if self._callbacks is None:
                self._callbacks = []  # where the runner looks before it looks for _cancelling
            self._cancelling = True
            if getattr(self, "_started", False):
                return False  # the runner announced itself first: the call runs
            self._state = CANCELLED
        self._on_complete()
        return True

    def set_running_or_notify_cancel(self) -> bool:
        """Claim the call for the runner; False if it was cancelled and must not run."""
        self._started = True
        if self._callbacks is not None and self._cancel_won():
            return False
        self._state = RUNNING
        return True

    def _cancel_won(self) -> bool:
        """For a runner that announced itself and then found the call watched: True if a cancel came first (the
        call must not run). A cancel still under way when the runner announced itself decides under the lock."""
        if not getattr(self, "_cancelling", False):
            return False
        with _transition_lock:
            return self._state == CANCELLED

    def set_result(self, value: T) -> None:
        if self._state == RUNNING:  # only the runner completes a running call: no one to race with
            self._result = value
            self._state = FINISHED
            self._on_complete()
        else:
            self._finish(value, None)

    def set_exception(self, exception: BaseException) -> None:
        if self._state == RUNNING:
            self._exception = exception
            self._state = FINISHED
            self._on_complete()
        else:
            self._finish(None, exception)

    def _wait(self, timeout: Optional[float]) -> None:
        # The lock is made before taking the global one, which is taken without a with-block: a caller that waits at
        # once on a call it just queued holds the GIL for this stretch, while the woken worker needs it.
        made = allocate_lock()
        made.acquire()
        _transition_lock.acquire()
        try:
            waiter = self._waiter_lock(made)
        finally:
            _transition_lock.release()
        if self._state >= FINISHED:  # completed before it could see the waiter: nothing will release it
            return
        if waiter.acquire(True, _NO_TIMEOUT if timeout is None else max(timeout, 0.0)):
            waiter.release()  # let every other waiter through as well
        elif self._state < FINISHED:
            raise TimeoutError(f"{self!r} did not complete within {timeout} seconds")

    def _waiter_lock(self, made: LockType) -> LockType:
        """The lock waiters block on, which completion releases: the one in ``_callbacks``, or ``made``, added
        there. One per future, however often a caller times out and waits again. Called under the global lock."""
        callbacks = self._callbacks
        if callbacks is None:
            self._callbacks = [made]
            return made
        for fn in callbacks:
            if type(fn) is LockType:
                return fn
        callbacks.append(made)
        return made
