"""Replacing futures passed as arguments by their results before a call reaches the worker.

The scan is the hot path's only extra work, so it is one set lookup per argument: ``type(arg) in LEAF_TYPES``.
Leaf types are the types whose values can hold no future as far as unwrapping looks (anything but a future or
one of the containers below); the builtin scalars are known from the start and every other leaf type is learnt
the first time one of its values is scanned. Futures are found at any depth inside list, tuple, dict values, set
and frozenset; container types are kept.
"""

from __future__ import annotations

from types import BuiltinFunctionType, FunctionType, MethodType
from typing import Any, Callable, Optional

from concurry.core.future import Future, SyncFuture

__all__ = ["LEAF_TYPES", "contains_future", "materialize", "submit_unwrapped", "unwrapping"]

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
    kind = type(value)
    if kind in LEAF_TYPES:
        return True
    if isinstance(value, _SCANNED):
        return False
    if len(LEAF_TYPES) < _LEAF_LIMIT:
        LEAF_TYPES.add(kind)
    return True


def contains_future(value: Any) -> bool:
    if _leaf(value):
        return False
    if isinstance(value, Future):
        return True
    if isinstance(value, dict):
        return any(contains_future(v) for v in value.values())
    return any(contains_future(v) for v in value)


def materialize(value: Any) -> Any:
    """``value`` with every future replaced by its result (raising the future's exception)."""
    if _leaf(value):
        return value
    if isinstance(value, Future):
        return value.result()
    if isinstance(value, dict):
        if not any(contains_future(v) for v in value.values()):
            return value
        return _rebuild_dict(value)
    if not any(contains_future(v) for v in value):
        return value
    return _rebuild(value, [materialize(v) for v in value])


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


def submit_unwrapped(
    submit: Submit, method: str, args: tuple[Any, ...], kwargs: Optional[dict[str, Any]]
) -> Future[Any]:
    """The slow path of a call whose quick scan found an argument of a type not known to be a leaf."""
    try:
        args = materialize(args)
        kwargs = materialize(kwargs) if kwargs else kwargs
    except BaseException as error:  # the argument's own failure becomes this call's failure
        return SyncFuture.of_exception(error)
    return submit(method, args, kwargs)


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
