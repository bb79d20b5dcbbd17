# pyright: reportPrivateUsage=false
# Private names here are shared within the package: limit sets share their limits and store with each other within the
# package.
"""``LimitSet``: the limits a worker acquires through ``self.limits.acquire(requested={...})``.

One set has one authoritative state (its *home*), in the process that created it. Everything that uses the set
reaches that state, so limits shared by several workers are enforced jointly:

- threads of the home process (sync, thread and asyncio workers) use the in-process ``LocalStore`` directly;
- other processes (process workers, whether started by fork, spawn or forkserver) connect to a ``LimitServer``
  the home starts on first need, by address and authkey;
- Ray actors call a named Ray actor holding the state; sharing a set with Ray moves the home state into that
  actor, and the home process then forwards to it too (so its threads and child processes stay in the same
  accounting).
"""

from __future__ import annotations

import math
import os
import sys
import threading
import time
import uuid
import weakref
from typing import Any, Callable, cast, Iterable, Iterator, Mapping, Optional, Sequence, Union

from concurry.core.limits.definitions import CallLimit, Limit
from concurry.core.limits.store import LocalStore

__all__ = ["Acquisition", "LimitSet", "LimitsOption", "as_limit_set"]

_LOCAL_MODES = frozenset({"sync", "thread", "asyncio"})

# Homes of this process by set id: an unpickled copy of a set in its own home process rejoins the same state.
_homes: "weakref.WeakValueDictionary[str, _Home]" = weakref.WeakValueDictionary()
# Shared homes stay alive while their server or Ray actor may have users elsewhere.
_pinned: dict[str, "_Home"] = {}
_attach_lock = threading.Lock()


def _fresh_attach_lock() -> None:
    global _attach_lock
    _attach_lock = threading.Lock()  # another thread may have held it when this process was forked


if hasattr(os, "register_at_fork"):  # platforms without fork need no reset
    os.register_at_fork(after_in_child=_fresh_attach_lock)


class _Home:
    """The authoritative state of one set, and how other processes reach it."""

    __slots__ = ("id", "pid", "store", "server", "ray_name", "ray_handle", "lock", "__weakref__")

    def __init__(self, set_id: str, store: Any) -> None:
        self.id = set_id
        self.pid = os.getpid()
        self.store = store
        self.server: Any = None
        self.ray_name: Optional[str] = None
        self.ray_handle: Any = None
        self.lock = threading.Lock()

    def serve(self) -> None:
        with self.lock:
            if self.server is None:
                from concurry.core.limits.sharing import LimitServer

                home = weakref.ref(self)
                self.server = LimitServer(lambda: home().store)  # type: ignore[union-attr]
                _pinned[self.id] = self

    def move_to_ray(self) -> None:
        with self.lock:
            if self.ray_name is not None:
                return
            import ray

            from concurry.core.limits.ray_store import start_ray_store

            if not ray.is_initialized():
                ray.init()  # pyright: ignore[reportUnknownMemberType]  # Ray's partially typed API

            def build(snapshot: Any) -> Any:
                store, self.ray_handle = start_ray_store(snapshot)
                return store

            self.store = self.store.move(build)
            self.ray_name = self.store.name
            _pinned[self.id] = self

    def transport(self) -> tuple[Any, Optional[bytes], Optional[str]]:
        server = self.server
        if server is None:
            return None, None, self.ray_name
        return server.address, server.authkey, self.ray_name


class LimitSet:
    """A group of limits with distinct keys, acquired together.

    An empty set admits every request at once, whatever it names: a worker created without limits gets one,
    so code written against ``self.limits`` runs unchanged. A non-empty set rejects keys it does not have, so
    a misspelt key fails loudly instead of going unlimited.

    ``clock`` (seconds, monotonic) drives the rate limits of the home state; tests pass a fake one.
    """

    def __init__(self, limits: Iterable[Limit] = (), *, clock: Callable[[], float] = time.monotonic) -> None:
        limits = tuple(limits)
        for limit in limits:
            if not isinstance(limit, Limit):  # pyright: ignore[reportUnnecessaryIsInstance]  # checks what the caller passed at run time
                raise ValueError(
                    f"LimitSet got {limit!r}; give ResourceLimit, RateLimit and CallLimit objects"
                )
        self._setup(limits, uuid.uuid4().hex)
        self._transport: tuple[Any, Optional[bytes], Optional[str]] = (None, None, None)
        self._client: Any = None
        self._pid = os.getpid()
        self._home: Optional[_Home] = None
        if limits:
            self._home = _Home(self._id, LocalStore(limits, clock))
            _homes[self._id] = self._home

    def _setup(self, limits: tuple[Limit, ...], set_id: str) -> None:
        by_key: dict[str, Limit] = {}
        for limit in limits:
            if limit.key in by_key:
                raise ValueError(
                    f"LimitSet got two limits with key {limit.key!r} ({by_key[limit.key]!r} and {limit!r}); "
                    f"keys must be distinct"
                )
            by_key[limit.key] = limit
        self._limits = limits
        self._by_key = by_key
        self._call_keys = tuple(limit.key for limit in limits if isinstance(limit, CallLimit))
        self._id = set_id

    # -- the set ------------------------------------------------------------------------------------------------
    @property
    def limits(self) -> tuple[Limit, ...]:
        return self._limits

    def __iter__(self) -> Iterator[Limit]:
        return iter(self._limits)

    def __len__(self) -> int:
        return len(self._limits)

    def __getitem__(self, key: str) -> Limit:
        return self._by_key[key]

    def __repr__(self) -> str:
        return f"LimitSet([{', '.join(repr(limit) for limit in self._limits)}])"

    # -- acquiring ----------------------------------------------------------------------------------------------
    def acquire(self, requested: Optional[Mapping[str, float]] = None, *, timeout: Optional[float] = None) -> "Acquisition":
        """A context manager (``with`` or ``async with``) holding ``requested`` (key → amount) while it is open.

        Entering waits until every key admits its amount at once (``TimeoutError`` after ``timeout`` seconds);
        every ``CallLimit`` counts one call unless ``requested`` gives its key another amount. Leaving releases
        it all, whether the block ended normally or with an exception (which propagates unchanged).
        """
        return Acquisition(self, self._normalize(requested), timeout)

    def _normalize(self, requested: Optional[Mapping[str, float]]) -> dict[str, float]:
        if not self._limits:
            return {}
        amounts: dict[str, float] = dict.fromkeys(self._call_keys, 1)
        for key, amount in (requested or {}).items():
            limit = self._by_key.get(key)
            if limit is None:
                raise ValueError(
                    f"acquire(requested=...) names key {key!r}, which this LimitSet does not have; "
                    f"its keys are: {', '.join(repr(k) for k in self._by_key)}"
                )
            if isinstance(amount, bool) or not isinstance(amount, (int, float)) or not 0 <= amount < math.inf:  # pyright: ignore[reportUnnecessaryIsInstance]
                raise ValueError(f"acquire(requested=...) got {key!r}: {amount!r}; give a finite number >= 0")
            if amount > limit.capacity:
                raise ValueError(
                    f"acquire(requested=...) asks {amount!r} of {key!r}, more than its capacity "
                    f"{limit.capacity!r}, so it could never be admitted"
                )
            amounts[key] = amount
        return {key: amount for key, amount in amounts.items() if amount}

    def in_use(self) -> dict[str, float]:
        """Per key: units held now (resources) or counted against the current window or bucket (rates)."""
        if not self._limits:
            return {}
        usage: dict[str, float] = self._store().in_use()
        return usage

    # -- where the state is -------------------------------------------------------------------------------------
    def _store(self) -> Any:
        if self._pid == os.getpid():
            home = self._home
            if home is not None:
                return home.store
            if self._client is not None:
                return self._client
        return self._attach()

    def _attach(self) -> Any:
        """First use in a process that is not the home (unpickled there, or inherited by fork): connect."""
        with _attach_lock:
            pid = os.getpid()
            if self._pid != pid:
                home = _homes.get(self._id)
                if self._home is not None:  # a forked copy of the home: reach the original
                    self._transport = self._home.transport()
                    self._home = None
                elif home is not None and home.pid == pid:
                    self._home = home
                self._client = None
                self._pid = pid
            if self._home is not None:
                return self._home.store
            if self._client is None:
                self._client = self._connect()
            return self._client

    def _connect(self) -> Any:
        address, authkey, ray_name = self._transport
        # A Ray worker may run on another node: it takes the Ray route. Any other process takes the server when
        # there is one: a process forked from a Ray driver believes Ray is initialised but cannot use it.
        if ray_name is not None and (_in_ray_worker() or (address is None and _ray_connected())):
            from concurry.core.limits.ray_store import RayStore

            return RayStore(ray_name)
        if address is not None:
            from concurry.core.limits.sharing import ConnectionStore

            return ConnectionStore(address, authkey)  # type: ignore[arg-type]
        raise RuntimeError(
            "this LimitSet reached another process without being shared, so it cannot be enforced jointly; "
            "pass it to workers with options(limits=...), or call limit_set.share('process') (or 'ray') before "
            "starting the processes that use it"
        )

    def share(self, mode: str) -> "LimitSet":
        """Make the set reachable from workers of ``mode`` (``'process'``: start the server; ``'ray'``: move the
        state into a Ray actor). Workers do this for you; call it yourself before forking your own processes."""
        if not self._limits or mode in _LOCAL_MODES:
            return self
        if mode not in ("process", "ray"):
            raise ValueError(f"share(mode={mode!r}); allowed modes: 'sync', 'thread', 'asyncio', 'process', 'ray'")
        self._store()
        home = self._home
        if home is None:  # a copy in another process: it already forwards to the home
            if mode == "ray" and self._transport[2] is None:
                raise RuntimeError(
                    "a LimitSet received from another process cannot be shared with Ray workers; share it with "
                    "Ray in the process that created it"
                )
            return self
        if mode == "process":
            home.serve()
        else:
            home.move_to_ray()
        return self

    # -- copying and pickling -----------------------------------------------------------------------------------
    def __copy__(self) -> "LimitSet":
        return self  # a copy must not be a second, independent limit

    def __deepcopy__(self, memo: dict[int, Any]) -> "LimitSet":
        return self

    def __getstate__(self) -> dict[str, Any]:
        transport = self._transport
        if self._limits and self._pid == os.getpid() and self._home is not None:
            self._home.serve()  # whoever unpickles this must be able to reach the state
            transport = self._home.transport()
        return {"limits": self._limits, "id": self._id, "transport": transport}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self._setup(state["limits"], state["id"])
        self._transport = state["transport"]
        self._client = None
        self._home = None
        self._pid = -1  # resolved on first use: rejoin the home if this is its process, else connect


def _ray_connected() -> bool:
    ray = sys.modules.get("ray")
    return ray is not None and ray.is_initialized()


def _in_ray_worker() -> bool:
    """Whether this process is a Ray worker (an actor or task process), as opposed to a driver or its child."""
    ray = sys.modules.get("ray")
    return ray is not None and ray._private.worker.global_worker.mode == ray.WORKER_MODE


# The type of the ``limits`` keyword of ``Worker.options``.
LimitsOption = Union[LimitSet, Sequence[Limit], Limit, None]


def as_limit_set(value: Any, name: str = "limits") -> "LimitSet":
    """The ``limits`` option: a LimitSet as is, a list of limits as a new set, ``None`` as the empty set."""
    if value is None:
        return LimitSet()
    if isinstance(value, LimitSet):
        return value
    if isinstance(value, Limit):
        return LimitSet([value])
    if isinstance(value, (list, tuple)):
        value = cast("Sequence[Any]", value)
        for item in value:
            if not isinstance(item, Limit):
                raise ValueError(
                    f"{name} got {item!r} in its list; give ResourceLimit, RateLimit and CallLimit objects"
                )
        return LimitSet(value)
    raise ValueError(f"{name}={value!r} is not allowed; give a list of limits, a LimitSet or one limit")


_IDLE, _HELD, _DONE = 0, 1, 2


class Acquisition:
    """What ``LimitSet.acquire`` returns: enter it to hold the request, ``update(usage=...)`` inside to report
    what was really used (rate limits count that instead of the request)."""

    __slots__ = ("_set", "requested", "usage", "_timeout", "_store", "_ticket", "_phase")

    def __init__(self, limit_set: LimitSet, requested: dict[str, float], timeout: Optional[float]) -> None:
        self._set = limit_set
        self.requested = requested
        self.usage: dict[str, float] = {}
        self._timeout = timeout
        self._store: Any = None
        self._ticket: Optional[int] = None
        self._phase = _IDLE

    def update(self, usage: Mapping[str, float]) -> None:
        """Record the amounts actually used (key → amount), applied when the block ends."""
        if self._phase != _HELD:
            raise RuntimeError("update() is only possible inside the `with limits.acquire(...)` block")
        if not self._set._limits:
            return
        for key, amount in usage.items():
            if key not in self.requested:
                raise ValueError(
                    f"update(usage=...) names key {key!r}, which this acquisition did not request "
                    f"(requested: {', '.join(repr(k) for k in self.requested) or 'nothing'})"
                )
            if isinstance(amount, bool) or not isinstance(amount, (int, float)) or not 0 <= amount < math.inf:  # pyright: ignore[reportUnnecessaryIsInstance]
                raise ValueError(f"update(usage=...) got {key!r}: {amount!r}; give a finite number >= 0")
        self.usage.update(usage)

    def _start(self) -> None:
        if self._phase != _IDLE:
            raise RuntimeError("an acquisition can be entered once; call limits.acquire(...) again")

    def _timed_out(self) -> TimeoutError:
        return TimeoutError(f"limits.acquire(requested={self.requested!r}) was not admitted within {self._timeout} s")

    def __enter__(self) -> "Acquisition":
        self._start()
        if self.requested:
            store = self._set._store()
            ticket = store.acquire(self.requested, self._timeout)
            if ticket is None:
                raise self._timed_out()
            self._store, self._ticket = store, ticket
        self._phase = _HELD
        return self

    async def __aenter__(self) -> "Acquisition":
        """Wait without blocking the event loop: poll, sleeping as long as the limits say (or briefly, when only
        a release can help)."""
        import asyncio  # here, not at the top: `import concurry` stays free of asyncio

        self._start()
        if self.requested:
            store = self._set._store()
            deadline = None if self._timeout is None else time.monotonic() + self._timeout
            backoff = 0.001
            while True:
                ticket, wait = store.try_acquire(self.requested)
                if ticket is not None:
                    break
                pause = wait if math.isfinite(wait) else backoff
                backoff = min(backoff * 2, 0.05)
                if deadline is not None:
                    remaining = deadline - time.monotonic()
                    if remaining <= 0:
                        raise self._timed_out()
                    pause = min(pause, remaining)
                await asyncio.sleep(pause)
            self._store, self._ticket = store, ticket
        self._phase = _HELD
        return self

    def __exit__(self, exc_type: Any, exc: Optional[BaseException], tb: Any) -> None:
        self._phase = _DONE
        ticket = self._ticket
        if ticket is None:
            return
        self._ticket = None
        try:
            self._store.release(ticket, self.usage or None)
        except Exception as release_error:
            if exc is None:
                raise
            # The block's own exception is what the caller must see; say what else went wrong beside it.
            add_note = getattr(exc, "add_note", None)
            if add_note is not None:
                add_note(f"releasing the limits also failed: {release_error!r}")

    async def __aexit__(self, exc_type: Any, exc: Optional[BaseException], tb: Any) -> None:
        self.__exit__(exc_type, exc, tb)
