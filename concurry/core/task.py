"""``TaskWorker``: an Executor-like worker that runs the functions it is given.

``submit`` is an ordinary worker method (the function travels to the worker and runs there; an async function's
coroutine is run to completion like any async method). ``map`` lives on the proxy: it submits every call at once
and yields results lazily in input order, like ``Executor.map``.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any, Callable, Coroutine, Iterable, Iterator, Literal, Optional, TypeVar, overload

from typing_extensions import ParamSpec

from concurry.core.future import Future
from concurry.core.synch import ProgressOption, progress_bar
from concurry.core.worker import Worker

if TYPE_CHECKING:
    from concurry.core.proxy import BaseWorkerProxy

P = ParamSpec("P")
R = TypeVar("R")
T1 = TypeVar("T1")
T2 = TypeVar("T2")
B = TypeVar("B", bound=bool)

__all__ = ["TaskProxyMixin", "TaskWorker", "TaskWorkerProxy"]


class TaskProxyMixin:
    """Proxy-side methods of ``TaskWorker``."""

    _submit: Callable[[str, tuple[Any, ...], Optional[dict[str, Any]]], Future[Any]]

    # Async functions first: their coroutine is run to completion, so the result is what they return.
    @overload
    def map(
        self,
        fn: Callable[[T1], Coroutine[Any, Any, R]],
        it1: Iterable[T1],
        /,
        *,
        timeout: Optional[float] = None,
        progress: ProgressOption = False,
    ) -> Iterator[R]: ...

    @overload
    def map(
        self,
        fn: Callable[[T1], R],
        it1: Iterable[T1],
        /,
        *,
        timeout: Optional[float] = None,
        progress: ProgressOption = False,
    ) -> Iterator[R]: ...

    @overload
    def map(
        self,
        fn: Callable[[T1, T2], Coroutine[Any, Any, R]],
        it1: Iterable[T1],
        it2: Iterable[T2],
        /,
        *,
        timeout: Optional[float] = None,
        progress: ProgressOption = False,
    ) -> Iterator[R]: ...

    @overload
    def map(
        self,
        fn: Callable[[T1, T2], R],
        it1: Iterable[T1],
        it2: Iterable[T2],
        /,
        *,
        timeout: Optional[float] = None,
        progress: ProgressOption = False,
    ) -> Iterator[R]: ...

    # Three or more iterables: the result type is kept, the arguments are not checked against ``fn``.
    @overload
    def map(
        self,
        fn: Callable[..., Coroutine[Any, Any, R]],
        it1: Iterable[Any],
        it2: Iterable[Any],
        it3: Iterable[Any],
        /,
        *iterables: Iterable[Any],
        timeout: Optional[float] = None,
        progress: ProgressOption = False,
    ) -> Iterator[R]: ...

    @overload
    def map(
        self,
        fn: Callable[..., R],
        it1: Iterable[Any],
        it2: Iterable[Any],
        it3: Iterable[Any],
        /,
        *iterables: Iterable[Any],
        timeout: Optional[float] = None,
        progress: ProgressOption = False,
    ) -> Iterator[R]: ...

    def map(
        self,
        fn: Callable[..., Any],
        *iterables: Iterable[Any],
        timeout: Optional[float] = None,
        progress: ProgressOption = False,
    ) -> Iterator[Any]:
        """Run ``fn`` over the zipped iterables; results come in input order, each waited for lazily.

        On a pool the calls spread over its workers. ``progress`` shows a tqdm bar that advances as calls finish.
        """
        deadline = None if timeout is None else time.monotonic() + timeout
        futures = [self._submit("submit", (fn, *items), None) for items in zip(*iterables)]
        bar = progress_bar(progress, len(futures))
        if bar is not None:
            advance = _advancer(bar)
            for future in futures:
                future.add_done_callback(advance)
        return _results_in_order(futures, deadline, bar)


def _advancer(bar: Any) -> Callable[[Any], None]:
    def advance(_: Any) -> None:
        bar.update(1)

    return advance


def _results_in_order(futures: list[Future[Any]], deadline: Optional[float], bar: Any = None) -> Iterator[Any]:
    futures.reverse()
    try:
        while futures:
            future = futures.pop()
            if deadline is None:
                yield future.result()
            else:
                yield future.result(max(deadline - time.monotonic(), 0.0))
    finally:  # closed early or failed: the calls nobody will read are cancelled
        for future in futures:
            future.cancel()
        if bar is not None:
            bar.close()


class TaskWorker(Worker):
    """A worker whose work is the function passed to ``submit(fn, *args, **kwargs)`` or ``map``."""

    __concurry_proxy_mixin__ = TaskProxyMixin

    def submit(self, fn: Callable[..., Any], /, *args: Any, **kwargs: Any) -> Any:
        """Run ``fn(*args, **kwargs)`` in the worker."""
        return fn(*args, **kwargs)


if TYPE_CHECKING:

    class TaskWorkerProxy(TaskProxyMixin, BaseWorkerProxy[TaskWorker, B]):
        """What ``TaskWorker.options(...).init()`` gives type checkers; the runtime proxy is generated as usual.

        ``submit`` checks the arguments against ``fn`` and gives ``Future[R]``, or ``R`` in blocking mode; an async
        ``fn`` gives its awaited result. The fixed-arity overloads come first so checkers infer a lambda's
        parameters from the arguments (``submit(lambda x: x * 2, 3)``).
        """

        @overload
        def submit(
            self: TaskWorkerProxy[Literal[True]], fn: Callable[[T1], Coroutine[Any, Any, R]], a1: T1, /
        ) -> R: ...

        @overload
        def submit(self: TaskWorkerProxy[Literal[True]], fn: Callable[[T1], R], a1: T1, /) -> R: ...

        @overload
        def submit(
            self: TaskWorkerProxy[Literal[True]], fn: Callable[[T1, T2], Coroutine[Any, Any, R]], a1: T1, a2: T2, /
        ) -> R: ...

        @overload
        def submit(self: TaskWorkerProxy[Literal[True]], fn: Callable[[T1, T2], R], a1: T1, a2: T2, /) -> R: ...

        @overload
        def submit(
            self: TaskWorkerProxy[Literal[True]],
            fn: Callable[P, Coroutine[Any, Any, R]],
            /,
            *args: P.args,
            **kwargs: P.kwargs,
        ) -> R: ...

        @overload
        def submit(
            self: TaskWorkerProxy[Literal[True]], fn: Callable[P, R], /, *args: P.args, **kwargs: P.kwargs
        ) -> R: ...

        @overload
        def submit(
            self: TaskWorkerProxy[Literal[False]], fn: Callable[[T1], Coroutine[Any, Any, R]], a1: T1, /
        ) -> Future[R]: ...

        @overload
        def submit(self: TaskWorkerProxy[Literal[False]], fn: Callable[[T1], R], a1: T1, /) -> Future[R]: ...

        @overload
        def submit(
            self: TaskWorkerProxy[Literal[False]], fn: Callable[[T1, T2], Coroutine[Any, Any, R]], a1: T1, a2: T2, /
        ) -> Future[R]: ...

        @overload
        def submit(
            self: TaskWorkerProxy[Literal[False]], fn: Callable[[T1, T2], R], a1: T1, a2: T2, /
        ) -> Future[R]: ...

        @overload
        def submit(
            self: TaskWorkerProxy[Literal[False]],
            fn: Callable[P, Coroutine[Any, Any, R]],
            /,
            *args: P.args,
            **kwargs: P.kwargs,
        ) -> Future[R]: ...

        @overload
        def submit(
            self: TaskWorkerProxy[Literal[False]], fn: Callable[P, R], /, *args: P.args, **kwargs: P.kwargs
        ) -> Future[R]: ...

        @overload
        def submit(
            self: TaskWorkerProxy[bool], fn: Callable[[T1], Coroutine[Any, Any, R]], a1: T1, /
        ) -> Future[R] | R: ...

        @overload
        def submit(self: TaskWorkerProxy[bool], fn: Callable[[T1], R], a1: T1, /) -> Future[R] | R: ...

        @overload
        def submit(
            self: TaskWorkerProxy[bool], fn: Callable[[T1, T2], Coroutine[Any, Any, R]], a1: T1, a2: T2, /
        ) -> Future[R] | R: ...

        @overload
        def submit(self: TaskWorkerProxy[bool], fn: Callable[[T1, T2], R], a1: T1, a2: T2, /) -> Future[R] | R: ...

        @overload
        def submit(
            self: TaskWorkerProxy[bool], fn: Callable[P, Coroutine[Any, Any, R]], /, *args: P.args, **kwargs: P.kwargs
        ) -> Future[R] | R: ...

        @overload
        def submit(
            self: TaskWorkerProxy[bool], fn: Callable[P, R], /, *args: P.args, **kwargs: P.kwargs
        ) -> Future[R] | R: ...

        def submit(self, fn: Callable[..., Any], /, *args: Any, **kwargs: Any) -> Any: ...
