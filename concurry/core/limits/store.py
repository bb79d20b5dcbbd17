"""``LocalStore``: the state of every limit of one set, admitted atomically under one lock.

A request names several keys; it is admitted only when every key admits it at the same instant, and then all of
them take it together, so a caller never holds part of a request while waiting for the rest (no deadlock between
callers asking for the same keys in different orders). Each admission gets a ticket; releasing the ticket
settles it with the usage its holder reported.

Every way of sharing a set ends in one ``LocalStore``: used directly by the threads of its process, served to
other processes over a connection (``sharing.py``), or hosted in a Ray actor (``ray_store.py``).
"""

from __future__ import annotations

import math
import threading
import time
from typing import Any, Callable, Iterable, Mapping, Optional, Protocol

from concurry.core.limits.definitions import Limit

__all__ = ["LocalStore", "Snapshot", "Store"]

Snapshot = dict[str, Any]


class Store(Protocol):
    """What a ``LimitSet`` calls: this module's ``LocalStore``, or a client of one in another process or actor."""

    def try_acquire(self, requested: Mapping[str, float]) -> tuple[Optional[int], float]: ...

    def acquire(self, requested: Mapping[str, float], timeout: Optional[float]) -> Optional[int]: ...

    def release(self, ticket: int, usage: Optional[Mapping[str, float]]) -> None: ...

    def in_use(self) -> dict[str, float]: ...


class LocalStore:
    def __init__(self, limits: Iterable[Limit], clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._cond = threading.Condition(threading.Lock())
        now = clock()
        self._states: dict[str, Any] = {limit.key: limit.new_state(now) for limit in limits}
        self._held: dict[int, tuple[Mapping[str, float], dict[str, Any]]] = {}
        self._next_ticket = 1
        self._moved_to: Optional[Store] = None

    # -- admission ------------------------------------------------------------------------------------------------
    def try_acquire(self, requested: Mapping[str, float]) -> tuple[Optional[int], float]:
        """Admit now or not at all: ``(ticket, 0)``, or ``(None, seconds to wait before trying again)``."""
        with self._cond:
            if self._moved_to is None:
                return self._try(requested)
        return self._moved_to.try_acquire(requested)

    def acquire(self, requested: Mapping[str, float], timeout: Optional[float]) -> Optional[int]:
        """Wait until ``requested`` is admitted and return its ticket; ``None`` once ``timeout`` passes."""
        deadline = None if timeout is None else time.monotonic() + timeout
        with self._cond:
            while self._moved_to is None:
                ticket, wait = self._try(requested)
                if ticket is not None:
                    return ticket
                pause = wait if math.isfinite(wait) else None  # a resource frees only on a release: notified
                if deadline is not None:
                    remaining = deadline - time.monotonic()
                    if remaining <= 0:
                        return None
                    pause = remaining if pause is None else min(pause, remaining)
                self._cond.wait(pause)
        left = None if deadline is None else max(0.0, deadline - time.monotonic())
        return self._moved_to.acquire(requested, left)

    def _try(self, requested: Mapping[str, float]) -> tuple[Optional[int], float]:
        now = self._clock()
        states = self._states
        longest = 0.0
        for key, amount in requested.items():
            wait = states[key].wait(amount, now)
            if wait > longest:
                longest = wait
        if longest > 0:
            return None, longest
        records = {key: states[key].take(amount, now) for key, amount in requested.items()}
        ticket = self._next_ticket
        self._next_ticket = ticket + 1
        self._held[ticket] = (requested, records)
        return ticket, 0.0

    def release(self, ticket: int, usage: Optional[Mapping[str, float]]) -> None:
        """Settle ``ticket``: held resources return, rate limits count ``usage`` (default: what was asked for).

        An unknown ticket is ignored: it was already released (a holder whose connection dropped is released
        by the server, and may still release on its own afterwards).
        """
        with self._cond:
            if self._moved_to is None:
                entry = self._held.pop(ticket, None)
                if entry is not None:
                    requested, records = entry
                    now = self._clock()
                    for key, amount in requested.items():
                        used = None if usage is None else usage.get(key)
                        self._states[key].finish(amount, used, records[key], now)
                    self._cond.notify_all()
                return
        self._moved_to.release(ticket, usage)

    def in_use(self) -> dict[str, float]:
        """Per key: units held (resources) or counted against the current window/bucket (rates)."""
        with self._cond:
            if self._moved_to is None:
                now = self._clock()
                return {key: state.level(now) for key, state in self._states.items()}
        return self._moved_to.in_use()

    # -- moving the state elsewhere (to a Ray actor) ---------------------------------------------------------------
    def move(self, build: Callable[[Snapshot], Store]) -> Store:
        """Hand the whole state to the store ``build(snapshot)`` makes, and forward every later call to it.

        Runs under the lock, so no admission or release slips in between; waiting callers follow the move.
        """
        with self._cond:
            if self._moved_to is None:
                snapshot = {
                    "states": self._states,
                    "held": self._held,
                    "next_ticket": self._next_ticket,
                    "taken_at": self._clock(),
                }
                self._moved_to = build(snapshot)
                self._cond.notify_all()
            return self._moved_to

    @classmethod
    def from_snapshot(cls, snapshot: Snapshot, clock: Callable[[], float] = time.monotonic) -> "LocalStore":
        """Rebuild a moved state on this clock: every timestamp keeps its age relative to the moment of the move."""
        store = cls((), clock)
        delta = clock() - snapshot["taken_at"]
        for state in snapshot["states"].values():
            state.shift(delta)
        store._states = snapshot["states"]
        store._held = snapshot["held"]
        store._next_ticket = snapshot["next_ticket"]
        return store
