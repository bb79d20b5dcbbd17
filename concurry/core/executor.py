"""``Executor``, a drop-in ``concurrent.futures.Executor`` on any mode, and ``@task``, a function run by workers.

Both sit on a ``TaskWorker`` (a pool of them when ``max_workers`` > 1). ``Executor.submit`` returns a
``concurrent.futures.Future`` linked to the worker's future, because code written for ``ThreadPoolExecutor``
hands its futures to ``concurrent.futures.wait`` and ``as_completed``, which read that class's internals.
"""

from __future__ import annotations

import concurrent.futures
import functools
import os
import threading
from typing import TYPE_CHECKING, Any, Callable, Coroutine, Generic, Iterable, Iterator, Optional, TypeVar, overload

from typing_extensions import ParamSpec

from concurry.core.task import TaskWorker

if TYPE_CHECKING:
    from concurry.core.future import Future
    from concurry.core.proxy import BaseWorkerProxy
    from concurry.core.synch import ProgressOption

__all__ = ["Executor", "TaskFunction", "task"]

P = ParamSpec("P")
R = TypeVar("R")
T = TypeVar("T")


def _default_workers(mode: str) -> int:
    """What ``concurrent.futures`` would use: threads for I/O-bound work, one process or actor per core."""
    cores = os.cpu_count() or 1
    if mode == "thread":
        return min(32, cores + 4)
    if mode in ("process", "ray"):
        return cores
    return 1


def _start(mode: str, max_workers: Optional[int], options: dict[str, Any]) -> BaseWorkerProxy[Any, Any]:
    workers = _default_workers(mode) if max_workers is None else max_workers
    if workers > 1:
        options["max_workers"] = workers
    return TaskWorker.options(mode=mode, **options).init()  # type: ignore[call-overload, no-any-return]


class _LinkedFuture(concurrent.futures.Future[Any]):
    """A ``concurrent.futures.Future`` completed from a worker's future; cancelling it cancels the call."""

    def __init__(self, inner: Future[Any]) -> None:
        super().__init__()
        self._inner = inner

    def cancel(self) -> bool:
        return self._inner.cancel()  # the call's done-callback cancels this future


def _copy_outcome(outer: _LinkedFuture, inner: Future[Any]) -> None:
    if inner.cancelled():
        concurrent.futures.Future.cancel(outer)  # pyright: ignore[reportUnknownMemberType]
        outer.set_running_or_notify_cancel()
        return
    error = inner.exception()
    if error is None:
        outer.set_result(inner.result())
    else:
        outer.set_exception(error)


class Executor(concurrent.futures.Executor):
    """``concurrent.futures.Executor`` whose calls run on concurry workers of any mode.

    ``Executor(mode="process", max_workers=4)`` replaces ``ProcessPoolExecutor(4)``; other keywords are worker
    options (``load_balancing``, ``max_queued_tasks``, ``num_retries``...). ``max_workers`` defaults as in
    ``concurrent.futures``.
    """

    def __init__(self, mode: str = "thread", max_workers: Optional[int] = None, **options: Any) -> None:
        self._workers = _start(mode, max_workers, options)
        self._call = self._workers.__dict__["_submit"]
        self._shutdown = False

    def submit(self, fn: Callable[P, T], /, *args: P.args, **kwargs: P.kwargs) -> concurrent.futures.Future[T]:
        if self._shutdown:
            raise RuntimeError("cannot schedule new futures after shutdown")
        inner = self._call("submit", (fn, *args), kwargs or None)
        outer = _LinkedFuture(inner)
        inner.add_done_callback(functools.partial(_copy_outcome, outer))
        return outer

    def shutdown(self, wait: bool = True, *, cancel_futures: bool = False) -> None:
        """Stop the workers; ``cancel_futures`` cancels the calls not started, ``wait`` waits for the rest."""
        self._shutdown = True
        timeout = 0.0 if cancel_futures else None
        if wait:
            self._workers.stop(timeout)
        else:
            threading.Thread(target=self._workers.stop, args=(timeout,), daemon=True).start()


class TaskFunction(Generic[P, R]):
    """A function whose calls run on concurry workers: ``f(...)`` and ``f.submit(...)`` give futures.

    The workers start at the first call and stop with ``f.stop()`` (or at interpreter exit).
    """

    def __init__(self, fn: Callable[..., Any], mode: str, max_workers: Optional[int], options: dict[str, Any]):
        functools.update_wrapper(self, fn)
        self._fn = fn
        self._config = (mode, 1 if max_workers is None else max_workers, options)
        self._workers: Optional[BaseWorkerProxy[Any, Any]] = None
        self._lock = threading.Lock()

    def _proxy(self) -> Any:
        workers = self._workers
        if workers is None:
            with self._lock:
                workers = self._workers
                if workers is None:
                    mode, max_workers, options = self._config
                    workers = self._workers = _start(mode, max_workers, dict(options))
        return workers

    def submit(self, *args: P.args, **kwargs: P.kwargs) -> Future[R]:
        return self._proxy().__dict__["_submit"]("submit", (self._fn, *args), kwargs or None)  # type: ignore[no-any-return]

    __call__ = submit

    def map(
        self, *iterables: Iterable[Any], timeout: Optional[float] = None, progress: ProgressOption = False
    ) -> Iterator[R]:
        """Call the function over the zipped iterables on the workers; results in input order."""
        return self._proxy().map(self._fn, *iterables, timeout=timeout, progress=progress)  # type: ignore[no-any-return]

    def stop(self, timeout: Optional[float] = None) -> None:
        with self._lock:
            workers, self._workers = self._workers, None
        if workers is not None:
            workers.stop(timeout)


@overload
def task(
    fn: None = None, *, mode: str = ..., max_workers: Optional[int] = ..., **options: Any
) -> _TaskDecorator: ...


@overload
def task(fn: Callable[P, Coroutine[Any, Any, R]], /) -> TaskFunction[P, R]: ...


@overload
def task(fn: Callable[P, R], /) -> TaskFunction[P, R]: ...


def task(
    fn: Optional[Callable[..., Any]] = None, *, mode: str = "thread", max_workers: Optional[int] = None, **options: Any
) -> Any:
    """Make ``fn`` run on workers: ``@task`` or ``@task(mode="process", max_workers=4)``; other keywords are
    worker options. ``max_workers`` defaults to one worker."""
    if fn is not None:
        return TaskFunction(fn, mode, max_workers, options)  # pyright: ignore[reportUnknownVariableType]
    return _TaskDecorator(mode, max_workers, options)


class _TaskDecorator:
    """What ``task(...)`` with options returns; keeps the function's parameter and result types."""

    def __init__(self, mode: str, max_workers: Optional[int], options: dict[str, Any]) -> None:
        self._config = (mode, max_workers, options)

    @overload
    def __call__(self, fn: Callable[P, Coroutine[Any, Any, R]], /) -> TaskFunction[P, R]: ...

    @overload
    def __call__(self, fn: Callable[P, R], /) -> TaskFunction[P, R]: ...

    def __call__(self, fn: Callable[..., Any], /) -> Any:
        mode, max_workers, options = self._config
        return TaskFunction(fn, mode, max_workers, options)  # pyright: ignore[reportUnknownVariableType]
