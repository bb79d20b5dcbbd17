"""``wait`` and ``gather`` over any futures: concurry's (every mode, Ray included), ``concurrent.futures`` and
anything else with ``add_done_callback``, ``done``, ``cancelled``, ``exception`` and ``result``.

Nothing polls: each future gets one done-callback that counts it and, when the ``return_when`` condition is met,
sets one event (``wait``) or resolves one asyncio future through its loop (``async_wait``). A ``progress`` bar
advances from the same callbacks.
"""

from __future__ import annotations

import threading
from concurrent.futures import ALL_COMPLETED, FIRST_COMPLETED, FIRST_EXCEPTION
from typing import TYPE_CHECKING, Any, Callable, Iterable, Mapping, Optional, TypeVar, Union, overload

if TYPE_CHECKING:
    import asyncio

__all__ = [
    "ALL_COMPLETED",
    "FIRST_COMPLETED",
    "FIRST_EXCEPTION",
    "ProgressOption",
    "async_gather",
    "async_wait",
    "gather",
    "progress_bar",
    "wait",
]

K = TypeVar("K")
F = TypeVar("F")

# ``progress=True`` shows a tqdm bar; a dict is passed to ``tqdm`` as its options (``desc``, ``unit``, ``file``...).
ProgressOption = Union[bool, Mapping[str, Any]]

_RETURN_WHEN = (ALL_COMPLETED, FIRST_COMPLETED, FIRST_EXCEPTION)


def progress_bar(progress: ProgressOption, total: int) -> Optional[Any]:
    """A tqdm bar of ``total`` steps, or None when ``progress`` is off."""
    if not progress:
        return None
    from tqdm.auto import tqdm  # type: ignore[import-untyped, unused-ignore]

    options: dict[str, Any] = {"total": total}
    if isinstance(progress, Mapping):
        options.update(progress)
    return tqdm(**options)


def _failed(future: Any) -> bool:
    return not future.cancelled() and future.exception() is not None


class _Watch:
    """Counts completions of a set of futures and fires ``wake`` once when ``return_when`` is met."""

    __slots__ = ("_lock", "_left", "_return_when", "_wake", "_bar", "_fired")

    def __init__(self, count: int, return_when: str, wake: Callable[[], None], bar: Optional[Any]) -> None:
        self._lock = threading.Lock()
        self._left = count
        self._return_when = return_when
        self._wake = wake
        self._bar = bar
        self._fired = False

    def __call__(self, future: Any) -> None:
        with self._lock:
            self._left -= 1
            fire = not self._fired and (
                self._left == 0
                or self._return_when == FIRST_COMPLETED
                or (self._return_when == FIRST_EXCEPTION and _failed(future))
            )
            if fire:
                self._fired = True
        if self._bar is not None:
            self._bar.update(1)
        if fire:
            self._wake()

    def watch(self, futures: list[Any]) -> None:
        if not futures:
            self._fired = True
            self._wake()
            return
        for future in futures:
            future.add_done_callback(self)


def _check_return_when(return_when: str) -> None:
    if return_when not in _RETURN_WHEN:
        raise ValueError(
            f"return_when={return_when!r} is not one of {', '.join(repr(r) for r in _RETURN_WHEN)} "
            f"(concurry.ALL_COMPLETED, FIRST_COMPLETED, FIRST_EXCEPTION)"
        )


def _split(futures: list[Any]) -> tuple[set[Any], set[Any]]:
    done = {f for f in futures if f.done()}
    return done, {f for f in futures if f not in done}


def _split_keys(futures: Mapping[K, Any]) -> tuple[dict[K, Any], dict[K, Any]]:
    done = {k: f for k, f in futures.items() if f.done()}
    return done, {k: f for k, f in futures.items() if k not in done}


@overload
def wait(  # type: ignore[overload-overlap]  # a Mapping is also an Iterable of its keys: it comes first
    futures: Mapping[K, F],
    timeout: Optional[float] = None,
    return_when: str = ALL_COMPLETED,
    *,
    progress: ProgressOption = False,
) -> tuple[dict[K, F], dict[K, F]]: ...


@overload
def wait(
    futures: Iterable[F],
    timeout: Optional[float] = None,
    return_when: str = ALL_COMPLETED,
    *,
    progress: ProgressOption = False,
) -> tuple[set[F], set[F]]: ...


def wait(
    futures: Union[Iterable[Any], Mapping[Any, Any]],
    timeout: Optional[float] = None,
    return_when: str = ALL_COMPLETED,
    *,
    progress: ProgressOption = False,
) -> Any:
    """Wait like ``concurrent.futures.wait``: returns ``(done, not_done)``, also when ``timeout`` passes.

    A dict of futures gives two dicts with the same keys.
    """
    _check_return_when(return_when)
    given = list(futures.values()) if isinstance(futures, Mapping) else list(futures)  # pyright: ignore[reportUnknownArgumentType]  # a Mapping narrowed from the Iterable[Any] alternative
    bar = progress_bar(progress, len(given))
    event = threading.Event()
    try:
        _Watch(len(given), return_when, event.set, bar).watch(given)
        event.wait(timeout)
    finally:
        if bar is not None:
            bar.close()
    return _split_keys(futures) if isinstance(futures, Mapping) else _split(given)  # pyright: ignore[reportUnknownArgumentType]


async def async_wait(
    futures: Union[Iterable[Any], Mapping[Any, Any]],
    timeout: Optional[float] = None,
    return_when: str = ALL_COMPLETED,
    *,
    progress: ProgressOption = False,
) -> Any:
    """``wait`` for async code: the event loop keeps running while the futures complete."""
    import asyncio

    _check_return_when(return_when)
    given = list(futures.values()) if isinstance(futures, Mapping) else list(futures)  # pyright: ignore[reportUnknownArgumentType]  # a Mapping narrowed from the Iterable[Any] alternative
    loop = asyncio.get_running_loop()
    woken: asyncio.Future[None] = loop.create_future()
    bar = progress_bar(progress, len(given))

    def wake() -> None:
        try:
            loop.call_soon_threadsafe(_resolve, woken)
        except RuntimeError:  # the loop closed after a timeout: nobody waits any more
            pass

    try:
        _Watch(len(given), return_when, wake, bar).watch(given)
        try:
            await asyncio.wait_for(asyncio.shield(woken), timeout)
        except asyncio.TimeoutError:
            pass
    finally:
        if bar is not None:
            bar.close()
    return _split_keys(futures) if isinstance(futures, Mapping) else _split(given)  # pyright: ignore[reportUnknownArgumentType]


def _resolve(waiter: asyncio.Future[None]) -> None:
    if not waiter.done():
        waiter.set_result(None)


def _is_future(value: Any) -> bool:
    return hasattr(value, "add_done_callback") and hasattr(value, "result")


def _outcomes(values: list[Any], return_exceptions: bool) -> list[Any]:
    """The results in input order; values that are not futures stand for themselves."""
    results: list[Any] = []
    for value in values:
        if not _is_future(value):
            results.append(value)
        elif return_exceptions:
            try:
                results.append(value.result(0))
            except BaseException as error:  # noqa: BLE001 - the caller asked for the exception itself
                results.append(error)
        else:
            results.append(value.result(0))
    return results


def _gathered(futures: Any, values: list[Any], pending: Any, return_exceptions: bool, timeout: Any) -> Any:
    if not return_exceptions:
        for value in values:  # the first failure in input order, as soon as one is known
            if _is_future(value) and value.done() and _failed(value):
                value.result(0)
    if pending:
        raise TimeoutError(f"{len(pending)} of {len(values)} futures did not complete within {timeout} seconds")
    results = _outcomes(values, return_exceptions)
    return dict(zip(futures, results)) if isinstance(futures, Mapping) else results  # pyright: ignore[reportUnknownArgumentType, reportUnknownVariableType]


@overload
def gather(  # type: ignore[overload-overlap]  # a Mapping is also an Iterable of its keys: it comes first
    futures: Mapping[K, Any],
    *,
    return_exceptions: bool = False,
    timeout: Optional[float] = None,
    progress: ProgressOption = False,
) -> dict[K, Any]: ...


@overload
def gather(
    futures: Iterable[Any],
    *,
    return_exceptions: bool = False,
    timeout: Optional[float] = None,
    progress: ProgressOption = False,
) -> list[Any]: ...


def gather(
    futures: Union[Iterable[Any], Mapping[Any, Any]],
    *,
    return_exceptions: bool = False,
    timeout: Optional[float] = None,
    progress: ProgressOption = False,
) -> Any:
    """The results of ``futures`` in input order (a dict of futures gives a dict of results).

    The first failure raises unless ``return_exceptions``, which puts exceptions among the results. When
    ``timeout`` passes first, raises ``TimeoutError``; ``wait`` is the one that returns what is done instead.
    """
    values = list(futures.values()) if isinstance(futures, Mapping) else list(futures)  # pyright: ignore[reportUnknownArgumentType]  # a Mapping narrowed from the Iterable[Any] alternative
    watched = [v for v in values if _is_future(v)]
    _, pending = wait(watched, timeout, ALL_COMPLETED if return_exceptions else FIRST_EXCEPTION, progress=progress)
    return _gathered(futures, values, pending, return_exceptions, timeout)


async def async_gather(
    futures: Union[Iterable[Any], Mapping[Any, Any]],
    *,
    return_exceptions: bool = False,
    timeout: Optional[float] = None,
    progress: ProgressOption = False,
) -> Any:
    """``gather`` for async code."""
    values = list(futures.values()) if isinstance(futures, Mapping) else list(futures)  # pyright: ignore[reportUnknownArgumentType]  # a Mapping narrowed from the Iterable[Any] alternative
    watched = [v for v in values if _is_future(v)]
    return_when = ALL_COMPLETED if return_exceptions else FIRST_EXCEPTION
    _, pending = await async_wait(watched, timeout, return_when, progress=progress)
    return _gathered(futures, values, pending, return_exceptions, timeout)
