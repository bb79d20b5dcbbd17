"""``TaskWorker``: an Executor-like worker that runs the functions it is given.

``submit`` is an ordinary worker method (the function travels to the worker and runs there; an async function's
coroutine is run to completion like any async method). ``map`` lives on the proxy: it submits every call at once
and yields results lazily in input order, like ``Executor.map``.
"""

from __future__ import annotations

import time
from typing import Any, Callable, Iterable, Iterator, Optional

from concurry.core.future import Future
from concurry.core.worker import Worker

__all__ = ["TaskProxyMixin", "TaskWorker"]


class TaskProxyMixin:
    """Proxy-side methods of ``TaskWorker``."""

    _submit: Callable[[str, tuple[Any, ...], Optional[dict[str, Any]]], Future[Any]]

    def map(self, fn: Callable[..., Any], *iterables: Iterable[Any], timeout: Optional[float] = None) -> Iterator[Any]:
        """Run ``fn`` over the zipped iterables; results come in input order, each waited for lazily."""
        deadline = None if timeout is None else time.monotonic() + timeout
        futures = [self._submit("submit", (fn, *items), None) for items in zip(*iterables)]
        return _results_in_order(futures, deadline)


def _results_in_order(futures: list[Future[Any]], deadline: Optional[float]) -> Iterator[Any]:
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


class TaskWorker(Worker):
    """A worker whose work is the function passed to ``submit(fn, *args, **kwargs)`` or ``map``."""

    __concurry_proxy_mixin__ = TaskProxyMixin

    def submit(self, fn: Callable[..., Any], /, *args: Any, **kwargs: Any) -> Any:
        """Run ``fn(*args, **kwargs)`` in the worker."""
        return fn(*args, **kwargs)
