"""The state of one limit and its admission rule, one class per algorithm.

A state is plain data driven by the store that owns it, always under the store's lock and with the store's clock:
``wait(amount, now)`` is 0 when ``amount`` would be admitted now, else how long until it could be (``inf`` for
a resource, which frees only on release); ``take`` admits and returns a record; ``finish`` settles the admission
when its holder releases, with the usage it reported (``None``: it used what it asked for); ``shift`` moves every
timestamp when the state moves to another clock.

Rates are ``capacity`` per ``window`` seconds. Definitions (``n`` = the amount asked for):

- token bucket: a bucket of ``capacity`` tokens, full at start, refilled continuously at ``capacity/window`` per
  second; admit when it holds ``n`` tokens, and take them.
- leaky bucket (as a meter): a bucket of depth ``capacity`` that drains continuously at ``capacity/window`` per
  second, empty at start; admit when ``level + n <= capacity``, and pour ``n`` in.
- GCRA: a theoretical arrival time ``tat`` advancing ``window/capacity`` seconds per unit admitted; admit when
  ``max(tat, now) + n·window/capacity - now <= window``. GCRA is the leaky-bucket meter kept as one timestamp, and
  both admit the same sequences as the token bucket (burst of ``capacity``, then the steady rate).
- sliding window (log): admit when the amounts admitted in ``(now - window, now]`` plus ``n`` are at most
  ``capacity``; every window of length ``window`` holds at most ``capacity``.
- fixed window: windows ``[origin + k·window, origin + (k+1)·window)`` from the store's creation; admit when the
  current window's total plus ``n`` is at most ``capacity``; the count restarts at each boundary.
"""

from __future__ import annotations

import math
from collections import deque
from typing import Any, Optional

__all__ = ["RATE_ALGORITHMS", "rate_state", "ResourceState"]

# Slack for float round-off so that waiting exactly the returned time always admits.
EPS = 1e-9

INF = math.inf


class ResourceState:
    """Units held until released (a counting semaphore)."""

    __slots__ = ("capacity", "in_use")

    def __init__(self, capacity: float) -> None:
        self.capacity = capacity
        self.in_use = 0.0

    def wait(self, amount: float, now: float) -> float:
        return 0.0 if self.in_use + amount <= self.capacity + EPS else INF

    def take(self, amount: float, now: float) -> None:
        self.in_use += amount

    def finish(self, amount: float, used: Optional[float], record: Any, now: float) -> None:
        self.in_use = max(0.0, self.in_use - amount)

    def level(self, now: float) -> float:
        return self.in_use

    def shift(self, delta: float) -> None:
        pass


class TokenBucketState:
    __slots__ = ("capacity", "rate", "tokens", "last")

    def __init__(self, capacity: float, window: float, now: float) -> None:
        self.capacity = capacity
        self.rate = capacity / window
        self.tokens = capacity
        self.last = now

    def _refill(self, now: float) -> None:
        if now > self.last:
            self.tokens = min(self.capacity, self.tokens + (now - self.last) * self.rate)
            self.last = now

    def wait(self, amount: float, now: float) -> float:
        self._refill(now)
        missing = amount - self.tokens
        return 0.0 if missing <= EPS else missing / self.rate

    def take(self, amount: float, now: float) -> None:
        self.tokens -= amount

    def finish(self, amount: float, used: Optional[float], record: Any, now: float) -> None:
        if used is not None:
            self._refill(now)
            self.tokens = min(self.capacity, self.tokens + amount - used)  # below zero: a debt to refill

    def level(self, now: float) -> float:
        self._refill(now)
        return self.capacity - self.tokens

    def shift(self, delta: float) -> None:
        self.last += delta


class LeakyBucketState:
    __slots__ = ("capacity", "rate", "content", "last")

    def __init__(self, capacity: float, window: float, now: float) -> None:
        self.capacity = capacity
        self.rate = capacity / window
        self.content = 0.0
        self.last = now

    def _leak(self, now: float) -> None:
        if now > self.last:
            self.content = max(0.0, self.content - (now - self.last) * self.rate)
            self.last = now

    def wait(self, amount: float, now: float) -> float:
        self._leak(now)
        overflow = self.content + amount - self.capacity
        return 0.0 if overflow <= EPS else overflow / self.rate

    def take(self, amount: float, now: float) -> None:
        self.content += amount

    def finish(self, amount: float, used: Optional[float], record: Any, now: float) -> None:
        if used is not None:
            self._leak(now)
            self.content = max(0.0, self.content - (amount - used))

    def level(self, now: float) -> float:
        self._leak(now)
        return self.content

    def shift(self, delta: float) -> None:
        self.last += delta


class GcraState:
    __slots__ = ("interval", "window", "tat")

    def __init__(self, capacity: float, window: float, now: float) -> None:
        self.interval = window / capacity  # seconds per unit
        self.window = window
        self.tat = now

    def wait(self, amount: float, now: float) -> float:
        late = max(self.tat, now) + amount * self.interval - now - self.window
        return 0.0 if late <= EPS else late

    def take(self, amount: float, now: float) -> None:
        self.tat = max(self.tat, now) + amount * self.interval

    def finish(self, amount: float, used: Optional[float], record: Any, now: float) -> None:
        if used is not None:
            self.tat -= (amount - used) * self.interval

    def level(self, now: float) -> float:
        return max(0.0, self.tat - now) / self.interval

    def shift(self, delta: float) -> None:
        self.tat += delta


class SlidingWindowState:
    __slots__ = ("capacity", "window", "entries", "total")

    def __init__(self, capacity: float, window: float, now: float) -> None:
        self.capacity = capacity
        self.window = window
        self.entries: deque[list[float]] = deque()  # [admitted_at, amount], oldest first
        self.total = 0.0

    def _expire(self, now: float) -> None:
        horizon = now - self.window
        entries = self.entries
        while entries and entries[0][0] <= horizon:
            self.total -= entries.popleft()[1]
        if not entries:
            self.total = 0.0  # no drift from float sums once the window is empty

    def wait(self, amount: float, now: float) -> float:
        self._expire(now)
        excess = self.total + amount - self.capacity
        if excess <= EPS:
            return 0.0
        freed = 0.0
        for admitted_at, admitted in self.entries:
            freed += admitted
            if freed >= excess - EPS:
                return admitted_at + self.window - now
        return INF  # amount above capacity: acquire() rejects such requests before they reach a state

    def take(self, amount: float, now: float) -> list[float]:
        entry = [now, amount]
        self.entries.append(entry)
        self.total += amount
        return entry

    def finish(self, amount: float, used: Optional[float], record: Any, now: float) -> None:
        if used is not None and record[0] > now - self.window:  # still counted in the window
            self.total += used - record[1]
            record[1] = used

    def level(self, now: float) -> float:
        self._expire(now)
        return self.total

    def shift(self, delta: float) -> None:
        for entry in self.entries:
            entry[0] += delta


class FixedWindowState:
    __slots__ = ("capacity", "window", "origin", "index", "count")

    def __init__(self, capacity: float, window: float, now: float) -> None:
        self.capacity = capacity
        self.window = window
        self.origin = now
        self.index = 0
        self.count = 0.0

    def _roll(self, now: float) -> int:
        index = math.floor((now - self.origin) / self.window + EPS)
        if index != self.index:
            self.index = index
            self.count = 0.0
        return index

    def wait(self, amount: float, now: float) -> float:
        index = self._roll(now)
        if self.count + amount <= self.capacity + EPS:
            return 0.0
        return self.origin + (index + 1) * self.window - now

    def take(self, amount: float, now: float) -> int:
        self.count += amount
        return self.index

    def finish(self, amount: float, used: Optional[float], record: Any, now: float) -> None:
        if used is not None and self._roll(now) == record:
            self.count = max(0.0, self.count + used - amount)

    def level(self, now: float) -> float:
        self._roll(now)
        return self.count

    def shift(self, delta: float) -> None:
        self.origin += delta


RATE_ALGORITHMS: dict[str, type] = {
    "token_bucket": TokenBucketState,
    "leaky_bucket": LeakyBucketState,
    "sliding_window": SlidingWindowState,
    "fixed_window": FixedWindowState,
    "gcra": GcraState,
}


def rate_state(algorithm: str, capacity: float, window: float, now: float) -> Any:
    return RATE_ALGORITHMS[algorithm](capacity, window, now)
