# pyright: reportPrivateUsage=false
# Private names here are shared within the package: unwrapping drives the futures' internal call and completion state
# (package-private protocol).
"""Replacing futures passed as arguments by their results before a call reaches the worker.

The scan is the hot path's only extra work, so it is one set lookup per argument: ``type(arg) in LEAF_TYPES``.
Leaf types are the types whose values can hold no future as far as unwrapping looks (anything but a future or
one of the containers below); the builtin scalars are known from the start and every other leaf type is learnt
the first time one of its values is scanned. Futures are found at any depth inside list, tuple, dict values, set
and frozenset; container types are kept.

A call never waits for its argument futures in the caller. When they are all done, the call is forwarded at
once with their results. Otherwise it returns a ``DeferredCall`` right away, and the call is forwarded to its
worker from a done-callback of the last argument future to complete (in sync mode the call therefore runs in the
thread that completed that future); a failed or cancelled argument fails the call with that argument's exception
instead, and cancelling the ``DeferredCall`` before it is forwarded means the call is never made.

Ordering: calls whose arguments are ready reach a worker in the order they were made. A deferred call reaches it
when its last argument completes, so calls made after it on the same worker may run first; deferred calls are
forwarded in the order their last arguments complete.
"""

from __future__ import annotations

from _thread import allocate_lock
from functools import partial
from types import BuiltinFunctionType, FunctionType, MethodType
from typing import Any, Callable, Optional

from concurry.core.future import PENDING, CancelledError, ConcurrentFuture, Future, SyncFuture

__all__ = [
    "LEAF_TYPES",
    "DeferredCall",
    "contains_future",
    "defer",
    "materialize",
    "pending_futures",
    "rebuild_container",
    "submit_unwrapped",
    "unwrapping",
]

_CONTAINERS = (list, tuple, dict, set, frozenset)
_SCANNED = (Future, list, tuple, dict, set, frozenset)

LEAF_TYPES: set[type] = {
    int, float, complex, bool, str, bytes, bytearray, type(None), range, type(Ellipsis), slice,
    FunctionType, BuiltinFunctionType, MethodType, type,
}
# Learnt types are kept alive by the set, so learning stops at this size (classes made per call cannot grow it).
_LEAF_LIMIT = 512

Submit = Callable[[str, tuple[Any, ...], Optional[dict[str, Any]]], Future[Any]]


def _leaf(value: Any) -> bool:
    """True if ``value`` can hold no future; its type is remembered so the next value of it is one lookup."""
    kind = type(value)  # pyright: ignore[reportUnknownVariableType]
    if kind in LEAF_TYPES:
        return True
    if isinstance(value, _SCANNED):
        return False
    if len(LEAF_TYPES) < _LEAF_LIMIT:
        LEAF_TYPES.add(kind)  # pyright: ignore[reportUnknownArgumentType]
    return True


def contains_future(value: Any) -> bool:
    if _leaf(value):
        return False
    if isinstance(value, Future):
        return True
    if isinstance(value, dict):
        return any(contains_future(v) for v in value.values())  # pyright: ignore[reportUnknownVariableType]
    return any(contains_future(v) for v in value)


def materialize(value: Any) -> Any:
    """``value`` with every future replaced by its result (raising the future's exception)."""
    if _leaf(value):
        return value
    if isinstance(value, Future):
        return value.result()  # pyright: ignore[reportUnknownVariableType]
    if isinstance(value, dict):
        if not any(contains_future(v) for v in value.values()):  # pyright: ignore[reportUnknownVariableType]
            return value  # pyright: ignore[reportUnknownVariableType]
        return _rebuild_dict(value)  # pyright: ignore[reportUnknownArgumentType]
    if not any(contains_future(v) for v in value):
        return value
    return rebuild_container(value, [materialize(v) for v in value])


def rebuild_container(original: Any, items: list[Any]) -> Any:
    """A list, tuple (named too), set or frozenset of ``original``'s type holding ``items``."""
    kind = type(original)  # pyright: ignore[reportUnknownVariableType]
    if kind in (list, tuple, set, frozenset):
        return kind(items)  # pyright: ignore[reportUnknownVariableType]
    if isinstance(original, tuple) and hasattr(original, "_fields"):  # pyright: ignore[reportUnknownArgumentType]  # namedtuple
        return kind(*items)
    return kind(items)


def _rebuild_dict(original: dict[Any, Any]) -> dict[Any, Any]:
    rebuilt = original.copy()
    for key, item in original.items():
        rebuilt[key] = materialize(item)
    return rebuilt


def pending_futures(value: Any, pending: list[Future[Any]], skip: tuple[type, ...] = ()) -> bool:
    """True if ``value`` holds a future; the ones not done yet, except those of the ``skip`` types, are appended
    to ``pending``."""
    if _leaf(value):
        return False
    if isinstance(value, Future):
        if not isinstance(value, skip) and not value.done():
            pending.append(value)  # pyright: ignore[reportUnknownArgumentType]
        return True
    found = False
    for item in value.values() if isinstance(value, dict) else value:  # pyright: ignore[reportUnknownVariableType]
        if pending_futures(item, pending, skip):
            found = True
    return found


def submit_unwrapped(
    submit: Submit, method: str, args: tuple[Any, ...], kwargs: Optional[dict[str, Any]]
) -> Future[Any]:
    """The slow path of a call whose quick scan found an argument of a type not known to be a leaf."""
    pending: list[Future[Any]] = []
    found = pending_futures(args, pending)
    if kwargs and pending_futures(kwargs, pending):
        found = True
    if not found:
        return submit(method, args, kwargs)
    if pending:
        return defer(partial(_submit_materialized, submit), method, args, kwargs, pending)
    return _submit_materialized(submit, method, args, kwargs)


def _submit_materialized(
    submit: Submit, method: str, args: tuple[Any, ...], kwargs: Optional[dict[str, Any]]
) -> Future[Any]:
    """Submit with every (done) future replaced by its result."""
    try:
        args = materialize(args)
        kwargs = materialize(kwargs) if kwargs else kwargs
    except BaseException as error:  # the argument's own failure becomes this call's failure
        return SyncFuture.of_exception(error)
    return submit(method, args, kwargs)


_count_lock = allocate_lock()


class DeferredCall(ConcurrentFuture[Any]):
    """The future of a call whose arguments hold pending futures.

    Each pending argument future gets a done-callback; the last one to complete forwards the call (``_forward``
    submits it to the receiving worker, unwrapping the now completed futures), and this future then takes the
    forwarded call's outcome. ``cancel()`` claims the call against forwarding with ``ConcurrentFuture``'s runner
    protocol, so a call is either cancelled (and never made) or forwarded; once forwarded, cancelling cancels the
    forwarded call if it has not started.
    """

    __slots__ = ("_forward", "_waiting", "_inner", "_call_kwargs")

    _forward: Submit
    _waiting: int
    _call_kwargs: Optional[dict[str, Any]]
    _inner: Optional[Future[Any]]

    def cancel(self) -> bool:
        inner = self._inner
        if inner is not None:
            return inner.cancel()  # its outcome reaches this future through _adopt
        return ConcurrentFuture.cancel(self)  # pyright: ignore[reportUnknownMemberType]

    def running(self) -> bool:
        inner = self._inner
        return inner is not None and self._state == PENDING and inner.running()

    def _argument_done(self, argument: Future[Any]) -> None:
        error: Optional[BaseException]
        if argument.cancelled():
            error = CancelledError("a future passed as an argument of this call was cancelled")
        else:
            error = argument.exception()
        if error is not None:
            self._call_args, self._call_kwargs = (), None
            Future._finish(self, None, error)  # pyright: ignore[reportUnknownMemberType]
            return
        with _count_lock:
            self._waiting -= 1
            if self._waiting:
                return
        self._forward_call()

    def _forward_call(self) -> None:
        args, kwargs = self._call_args, self._call_kwargs
        self._call_args, self._call_kwargs = (), None
        self._started = True
        if self._state != PENDING or (self._callbacks is not None and self._cancel_won()):
            return  # cancelled, or failed by another argument
        try:
            inner = self._forward(self._call_name, args, kwargs)
        except BaseException as error:  # the receiving worker was stopped meanwhile
            Future._finish(self, None, error)  # pyright: ignore[reportUnknownMemberType]
            return
        inner.add_done_callback(self._adopt)
        self._inner = inner  # published after _adopt is registered: a cancel() through it completes this future

    def _adopt(self, inner: Future[Any]) -> None:
        if inner.cancelled():
            Future.cancel(self)  # pyright: ignore[reportUnknownMemberType]
            return
        error = inner.exception()
        Future._finish(self, None if error is not None else inner.result(), error)  # pyright: ignore[reportUnknownMemberType]


def defer(
    forward: Submit,
    method: str,
    args: tuple[Any, ...],
    kwargs: Optional[dict[str, Any]],
    pending: list[Future[Any]],
) -> DeferredCall:
    """The future of ``forward(method, args, kwargs)``, called once every future in ``pending`` has completed."""
    call = DeferredCall()
    call._forward = forward
    call._call_name = method
    call._call_args = args
    call._call_kwargs = kwargs
    call._inner = None
    call._waiting = len(pending)
    for future in pending:
        future.add_done_callback(call._argument_done)
    return call


def unwrapping(submit: Submit) -> Submit:
    """Wrap a backend's ``submit`` so future arguments arrive as their results."""
    leaf = LEAF_TYPES

    def submit_unwrapping(method: str, args: tuple[Any, ...], kwargs: Optional[dict[str, Any]]) -> Future[Any]:
        for arg in args:
            if type(arg) not in leaf:
                return submit_unwrapped(submit, method, args, kwargs)
        if kwargs:
            for arg in kwargs.values():
                if type(arg) not in leaf:
                    return submit_unwrapped(submit, method, args, kwargs)
        return submit(method, args, kwargs)

    return submit_unwrapping
