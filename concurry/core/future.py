"""Futures returned by worker calls.

One generic ``Future[T]`` with the ``concurrent.futures.Future`` interface plus ``__await__`` and a ``uuid``.
Backends complete futures from their own threads; waiting is a single pre-acquired lock that completion
releases, which is several times cheaper than the ``Condition`` per future of ``concurrent.futures``.
"""

from __future__ import annotations

import itertools
from _thread import allocate_lock
from concurrent.futures import CancelledError
from typing import TYPE_CHECKING, Any, Callable, Generator, Generic, Optional, TypeVar

if TYPE_CHECKING:
    import asyncio

__all__ = ["BaseFuture", "CancelledError", "ConcurrentFuture", "Future", "SyncFuture"]

T = TypeVar("T")

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
    _callbacks: Optional[list[Callable[[Future[T]], object]]]
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
        if self._uuid is None:
            self._uuid = f"{self._kind}-future-{next(_ids)}-{id(self):x}"
        return self._uuid

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
        if self._state < FINISHED:
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
            if self._state < FINISHED:
                if self._callbacks is None:
                    self._callbacks = [fn]
                else:
                    self._callbacks.append(fn)
                return
        _invoke_callback(fn, self)

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
            if self._state == CANCELLED:
                return False
            self._state = RUNNING
            return True

    def set_result(self, value: T) -> None:
        self._result = value
        self._finish()

    def set_exception(self, exception: BaseException) -> None:
        self._exception = exception
        self._finish()

    def _finish(self) -> None:
        with _transition_lock:
            if self._state >= FINISHED:
                return
            self._state = FINISHED
        self._on_complete()

    def _on_complete(self) -> None:
        callbacks = self._callbacks
        if callbacks is not None:
            self._callbacks = None
            for fn in callbacks:
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
    """A future that is complete when created: sync mode runs the call before returning."""

    __slots__ = ()
    _kind = "sync"

    def _wait(self, timeout: Optional[float]) -> None:
        raise AssertionError("a SyncFuture is created complete")  # pragma: no cover

    @classmethod
    def of_result(cls, value: T) -> SyncFuture[T]:
        future: SyncFuture[T] = cls()
        future._result = value
        future._state = FINISHED
        return future

    @classmethod
    def of_exception(cls, exception: BaseException) -> SyncFuture[Any]:
        future: SyncFuture[Any] = cls()
        future._exception = exception
        future._state = FINISHED
        return future


class ConcurrentFuture(Future[T]):
    """A future completed by another thread (thread, asyncio and process modes)."""

    __slots__ = ("_waiter",)
    _kind = "concurrent"

    def __init__(self) -> None:
        self._state = PENDING
        self._result = None
        self._exception = None
        self._callbacks = None
        self._uuid = None
        waiter = allocate_lock()
        waiter.acquire()
        self._waiter = waiter

    def _wait(self, timeout: Optional[float]) -> None:
        waiter = self._waiter
        if waiter.acquire(True, _NO_TIMEOUT if timeout is None else max(timeout, 0.0)):
            waiter.release()  # let every other waiter through as well
        elif self._state < FINISHED:
            raise TimeoutError(f"{self!r} did not complete within {timeout} seconds")

    def _on_complete(self) -> None:
        self._waiter.release()
        Future._on_complete(self)
