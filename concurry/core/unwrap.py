"""Replacing futures passed as arguments by their results before a call reaches the worker.

The scan is the hot path's only extra work: arguments holding no futures or containers skip it in one loop.
Futures are found at any depth inside list, tuple, dict values, set and frozenset; container types are kept.
"""

from __future__ import annotations

from typing import Any, Callable, Optional

from concurry.core.future import Future, SyncFuture

__all__ = ["contains_future", "materialize", "unwrapping"]

_CONTAINERS = (list, tuple, dict, set, frozenset)
_SCANNED = (Future, list, tuple, dict, set, frozenset)

Submit = Callable[[str, tuple[Any, ...], Optional[dict[str, Any]]], Future[Any]]


def contains_future(value: Any) -> bool:
    if isinstance(value, Future):
        return True
    if isinstance(value, dict):
        return any(contains_future(v) for v in value.values())
    if isinstance(value, _CONTAINERS):
        return any(contains_future(v) for v in value)
    return False


def materialize(value: Any) -> Any:
    """``value`` with every future replaced by its result (raising the future's exception)."""
    if isinstance(value, Future):
        return value.result()
    if isinstance(value, dict):
        if not any(contains_future(v) for v in value.values()):
            return value
        return _rebuild_dict(value)
    if isinstance(value, _CONTAINERS):
        if not any(contains_future(v) for v in value):
            return value
        items = [materialize(v) for v in value]
        return _rebuild(value, items)
    return value


def _rebuild(original: Any, items: list[Any]) -> Any:
    kind = type(original)
    if kind in (list, tuple, set, frozenset):
        return kind(items)
    if isinstance(original, tuple) and hasattr(original, "_fields"):  # namedtuple
        return kind(*items)
    return kind(items)


def _rebuild_dict(original: dict[Any, Any]) -> dict[Any, Any]:
    rebuilt = original.copy()
    for key, item in original.items():
        rebuilt[key] = materialize(item)
    return rebuilt


def unwrapping(submit: Submit) -> Submit:
    """Wrap a backend's ``submit`` so future arguments arrive as their results."""

    def submit_unwrapped(method: str, args: tuple[Any, ...], kwargs: Optional[dict[str, Any]]) -> Future[Any]:
        for arg in args:
            if isinstance(arg, _SCANNED):
                break
        else:
            if not kwargs:
                return submit(method, args, kwargs)
            for arg in kwargs.values():
                if isinstance(arg, _SCANNED):
                    break
            else:
                return submit(method, args, kwargs)
        try:
            args = materialize(args)
            kwargs = materialize(kwargs) if kwargs else kwargs
        except BaseException as error:  # the argument's own failure becomes this call's failure
            return SyncFuture.of_exception(error)
        return submit(method, args, kwargs)

    return submit_unwrapped
