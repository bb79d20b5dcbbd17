# pyright: reportPrivateUsage=false
# Private names here are shared within the package: stores share the actor handle within the package.
"""Sharing a limit set with Ray actors: the state lives in one named Ray actor.

The actor is asynchronous: a request waiting for capacity is a suspended coroutine, woken by the next release
or when the rate allows, so any number of waiters costs no threads; waiting calls run in their own concurrency
group, so releases are never queued behind them. Every participant (the driver's threads, Ray actors on any
node, and, through the driver's ``LimitServer``, the driver's child processes) reaches the same actor, which is
looked up by name so that no Ray handle has to travel inside pickles that non-Ray processes read. The actor is
owned by the process that created it (the driver) and ends with it.
"""

from __future__ import annotations

import asyncio
import math
import time
import uuid
from typing import Any, Mapping, Optional, cast

import ray

from concurry.core.limits.store import LocalStore, Snapshot

__all__ = ["RAY_NAMESPACE", "RayStore", "start_ray_store"]

RAY_NAMESPACE = "concurry"
_WAITERS = 10_000


class _LimitStoreActor:
    def __init__(self, snapshot: Snapshot) -> None:
        self._store = LocalStore.from_snapshot(snapshot)
        self._changed = asyncio.Event()

    @ray.method(concurrency_group="waiting")  # pyright: ignore[reportUnknownMemberType]  # Ray's partially typed API
    async def acquire(self, requested: Mapping[str, float], timeout: Optional[float]) -> Optional[int]:
        deadline = None if timeout is None else time.monotonic() + timeout
        while True:
            ticket, wait = self._store.try_acquire(requested)
            if ticket is not None:
                return ticket
            pause = wait if math.isfinite(wait) else None
            if deadline is not None:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    return None
                pause = remaining if pause is None else min(pause, remaining)
            try:
                await asyncio.wait_for(self._changed.wait(), pause)
            except asyncio.TimeoutError:
                pass

    async def try_acquire(self, requested: Mapping[str, float]) -> tuple[Optional[int], float]:
        return self._store.try_acquire(requested)

    async def release(self, ticket: int, usage: Optional[Mapping[str, float]]) -> None:
        self._store.release(ticket, usage)
        changed, self._changed = self._changed, asyncio.Event()
        changed.set()

    async def in_use(self) -> dict[str, float]:
        return self._store.in_use()


def start_ray_store(snapshot: Snapshot) -> tuple["RayStore", Any]:
    """Create the actor holding ``snapshot``; returns the client store and the handle that keeps the actor alive."""
    name = f"concurry-limits-{uuid.uuid4().hex}"
    remote: Any = ray.remote  # its type stubs omit the actor-only settings used here
    actor_class = remote(num_cpus=0, max_concurrency=_WAITERS, concurrency_groups={"waiting": _WAITERS})(
        _LimitStoreActor
    )
    handle = actor_class.options(name=name, namespace=RAY_NAMESPACE).remote(snapshot)
    ray.get(handle.in_use.remote())  # fail here, with Ray's own error, if the actor cannot start
    store = RayStore(name)
    store._handle = handle
    return store, handle


class RayStore:
    """The client of the Ray actor holding a set's state; usable in the driver and in any Ray worker."""

    def __init__(self, name: str) -> None:
        self.name = name
        self._handle: Any = None

    def _actor(self) -> Any:
        if self._handle is None:
            self._handle = ray.get_actor(self.name, namespace=RAY_NAMESPACE)  # pyright: ignore[reportUnknownMemberType]
        return self._handle

    def try_acquire(self, requested: Mapping[str, float]) -> tuple[Optional[int], float]:
        return cast("tuple[Optional[int], float]", ray.get(self._actor().try_acquire.remote(dict(requested))))

    def acquire(self, requested: Mapping[str, float], timeout: Optional[float]) -> Optional[int]:
        return cast("Optional[int]", ray.get(self._actor().acquire.remote(dict(requested), timeout)))

    def release(self, ticket: int, usage: Optional[Mapping[str, float]]) -> None:
        ray.get(self._actor().release.remote(ticket, None if usage is None else dict(usage)))

    def in_use(self) -> dict[str, float]:
        return cast("dict[str, float]", ray.get(self._actor().in_use.remote()))

    def __getstate__(self) -> dict[str, Any]:
        return {"name": self.name}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.name = state["name"]
        self._handle = None
