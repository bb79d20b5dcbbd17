"""The limits a user declares: plain frozen values, validated on construction, picklable everywhere."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Literal

from concurry.core.limits.algorithms import RATE_ALGORITHMS, ResourceState, rate_state

__all__ = ["CallLimit", "Limit", "RateLimit", "RateLimitAlgorithm", "ResourceLimit"]

RateLimitAlgorithm = Literal["token_bucket", "leaky_bucket", "sliding_window", "fixed_window", "gcra"]

DEFAULT_RATE_ALGORITHM = "sliding_window"


class Limit:
    """Base of every limit: a ``key`` that ``acquire(requested={key: amount})`` names, and a ``capacity``."""

    key: str
    capacity: float

    def new_state(self, now: float) -> Any:
        raise NotImplementedError


def _check_key(owner: str, key: Any) -> None:
    if not isinstance(key, str) or not key:
        raise ValueError(f"{owner} got key={key!r}; give a non-empty string")


def _check_positive(owner: str, name: str, value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value) or value <= 0:
        raise ValueError(f"{owner} got {name}={value!r}; give a finite number > 0")
    return value


def _check_algorithm(owner: str, algorithm: Any) -> str:
    algorithm = getattr(algorithm, "value", algorithm)
    if algorithm not in RATE_ALGORITHMS:
        allowed = ", ".join(repr(a) for a in RATE_ALGORITHMS)
        raise ValueError(f"{owner} got algorithm={algorithm!r}; allowed algorithms: {allowed}")
    return str(algorithm)


@dataclass(frozen=True)
class ResourceLimit(Limit):
    """At most ``capacity`` units held at once (connections, GPU slots); held units return on release."""

    key: str
    capacity: float

    def __post_init__(self) -> None:
        _check_key("ResourceLimit", self.key)
        _check_positive("ResourceLimit", "capacity", self.capacity)

    def new_state(self, now: float) -> ResourceState:
        return ResourceState(self.capacity)


@dataclass(frozen=True)
class RateLimit(Limit):
    """At most ``capacity`` units per ``window_seconds`` (tokens per minute), admitted by ``algorithm``."""

    key: str
    window_seconds: float
    capacity: float
    algorithm: RateLimitAlgorithm = DEFAULT_RATE_ALGORITHM  # type: ignore[assignment]

    def __post_init__(self) -> None:
        _check_key("RateLimit", self.key)
        _check_positive("RateLimit", "window_seconds", self.window_seconds)
        _check_positive("RateLimit", "capacity", self.capacity)
        object.__setattr__(self, "algorithm", _check_algorithm("RateLimit", self.algorithm))

    def new_state(self, now: float) -> Any:
        return rate_state(self.algorithm, self.capacity, self.window_seconds, now)


@dataclass(frozen=True)
class CallLimit(Limit):
    """At most ``capacity`` calls per ``window_seconds``: every ``acquire()`` counts one call unless it asks
    for another amount under ``key``."""

    window_seconds: float
    capacity: float
    algorithm: RateLimitAlgorithm = DEFAULT_RATE_ALGORITHM  # type: ignore[assignment]
    key: str = "call_count"

    def __post_init__(self) -> None:
        _check_key("CallLimit", self.key)
        _check_positive("CallLimit", "window_seconds", self.window_seconds)
        _check_positive("CallLimit", "capacity", self.capacity)
        object.__setattr__(self, "algorithm", _check_algorithm("CallLimit", self.algorithm))

    def new_state(self, now: float) -> Any:
        return rate_state(self.algorithm, self.capacity, self.window_seconds, now)
