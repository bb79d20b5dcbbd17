# pyright: reportPrivateUsage=false
# Private names here are shared within the package: the pool wires the proxy module's hot-path submit, as the proxy
# does.
"""Worker pools: ``max_workers`` ordinary backends behind one ``submit``.

A pool is a backend whose members are backends of the pool's mode, so the proxy in front of it is the same
generated class as a single worker's: the same methods, the same types. Only the dispatch differs:

- ``round_robin`` without ``max_queued_tasks`` (the default) is one ``next()`` on a cycle per call;
- every other policy, and any bound on in-flight calls, counts calls per member under one condition and
  releases the count from the call's done-callback, so a producer past the bound waits instead of queueing
  without limit. Blocking proxies wait for each result anyway, so they skip the bound.

A member whose worker died refuses calls with ``WorkerDiedError`` (its pending calls fail with it, from its
backend); the pool then takes it out of rotation and sends the call to another member.
"""

from __future__ import annotations

import itertools
import logging
import random
import threading
import time
from typing import TYPE_CHECKING, Any, Callable, Mapping, Optional

from concurry.core.backend import backend_class
from concurry.core.errors import WorkerDiedError

if TYPE_CHECKING:
    from concurry.codegen.calls import Flavor
    from concurry.codegen.spec import MethodSpec, WorkerSpec
    from concurry.core.backend import Backend
    from concurry.core.future import Future
    from concurry.core.options import WorkerOptions

__all__ = ["WorkerPool"]

Submit = Callable[[str, tuple[Any, ...], Optional[dict[str, Any]]], "Future[Any]"]

_log = logging.getLogger("concurry")


class WorkerPool:
    """The backend of a pool proxy: starts, feeds and stops ``options.max_workers`` member backends."""

    stops_at_once = False

    def __init__(
        self, spec: WorkerSpec, init_args: tuple[Any, ...], init_kwargs: Mapping[str, Any], options: WorkerOptions
    ) -> None:
        factory = backend_class(options.mode)
        self.members: list[Backend] = [
            factory(spec, init_args, init_kwargs, options) for _ in range(options.max_workers)
        ]
        self._name = f"{spec.cls.__qualname__} pool of {options.max_workers}"
        self._policy = options.load_balancing
        self._bound = None if options.blocking else options.max_queued_tasks
        self._rotation = list(range(options.max_workers))  # the members still serving, by index
        self._lock = threading.Condition(threading.Lock())
        self._active = [0] * options.max_workers  # calls in flight per member (counted policies only)
        self._total = [0] * options.max_workers  # calls sent per member (counted policies only)
        self._turn: list[Callable[[], int]] = [itertools.cycle(range(options.max_workers)).__next__]

    # -- lifecycle ----------------------------------------------------------------------------------------------
    def start(self) -> None:
        from concurry.core.proxy import _hot_path_submit

        started: list[Backend] = []
        try:
            for member in self.members:
                member.start()
                started.append(member)
        except BaseException:
            for member in started:
                member.stop(0)
            raise
        raw: list[Submit] = [member.submit for member in self.members]
        unwrapping: list[Submit] = [_hot_path_submit(member, True) for member in self.members]
        make = self._counted if self._counted_dispatch else self._round_robin
        self.submit: Submit = make(raw)
        self.submit_unwrapping: Submit = make(unwrapping)

    def stop(self, timeout: Optional[float]) -> None:
        """Stop every member within one shared ``timeout``."""
        deadline = None if timeout is None else time.monotonic() + timeout
        for member in self.members:
            member.stop(None if deadline is None else max(deadline - time.monotonic(), 0.0))
        with self._lock:
            self._lock.notify_all()  # producers waiting for room find the members stopped

    @property
    def alive(self) -> bool:
        return any(member.alive for member in self.members)

    @property
    def _counted_dispatch(self) -> bool:
        return self._bound is not None or self._policy != "round_robin"

    def call_flavor(self, others: Submit, method: MethodSpec) -> Flavor:
        """What the proxy's call functions are made of (see ``concurry.codegen.calls``): the same for every method.

        Thread members under plain round robin are fed by the call functions themselves (``thread_pool``): each
        call takes its turn from the rotation ``submit`` uses, so calls of either path share one round robin, and
        queues the call on that member without going through ``submit``. Thread members never die, so the
        rotation never changes. Every other pool's call functions forward to ``submit``.
        """
        from concurry.backends.thread import ThreadBackend

        threads = [member for member in self.members if isinstance(member, ThreadBackend)]
        if self._counted_dispatch or len(threads) != len(self.members):
            return "forward", {"submit": self.submit, "others": others}
        return "thread_pool", {
            "turn": self._turn[0], "targets": [member.call_queue.target for member in threads], "others": others
        }

    # -- dispatch -----------------------------------------------------------------------------------------------
    def _round_robin(self, submits: list[Submit]) -> Submit:
        turn = self._turn

        def submit(method: str, args: tuple[Any, ...], kwargs: Optional[dict[str, Any]]) -> Future[Any]:
            index = turn[0]()
            try:
                return submits[index](method, args, kwargs)
            except WorkerDiedError:
                self._retire(index)
                return submit(method, args, kwargs)

        return submit

    def _counted(self, submits: list[Submit]) -> Submit:
        lock = self._lock
        active = self._active
        total = self._total
        pick = self._picker()
        release = [self._releaser(index) for index in range(len(submits))]

        def submit(method: str, args: tuple[Any, ...], kwargs: Optional[dict[str, Any]]) -> Future[Any]:
            with lock:
                index = pick()
                while index < 0:
                    lock.wait()
                    index = pick()
                active[index] += 1
                total[index] += 1
            try:
                future = submits[index](method, args, kwargs)
            except WorkerDiedError:
                release[index](None)
                self._retire(index)
                return submit(method, args, kwargs)
            except BaseException:
                release[index](None)
                raise
            future.add_done_callback(release[index])
            return future

        return submit

    def _picker(self) -> Callable[[], int]:
        """The member to call next among those with room (under the lock), or -1 when all are full.

        Ties go to the lowest index, so the choice is deterministic for a given history.
        """
        rotation = self._rotation
        active = self._active
        total = self._total
        bound = self._bound if self._bound is not None else float("inf")
        policy = self._policy
        start = [0]

        def round_robin() -> int:
            count = len(rotation)
            for step in range(count):
                index = rotation[(start[0] + step) % count]
                if active[index] < bound:
                    start[0] = (start[0] + step + 1) % count
                    return index
            return self._none_left()

        def least_active() -> int:
            open_ = [i for i in rotation if active[i] < bound]
            return min(open_, key=active.__getitem__) if open_ else self._none_left()

        def least_total() -> int:
            open_ = [i for i in rotation if active[i] < bound]
            return min(open_, key=total.__getitem__) if open_ else self._none_left()

        def any_member() -> int:
            open_ = [i for i in rotation if active[i] < bound]
            return random.choice(open_) if open_ else self._none_left()

        return {
            "round_robin": round_robin, "least_active": least_active, "least_total": least_total, "random": any_member
        }[policy]

    def _none_left(self) -> int:
        if not self._rotation:
            raise self._all_died()
        if not self.alive:  # stopped while a producer waited for room: the member's submit raises why
            return self._rotation[0]
        return -1

    def _releaser(self, index: int) -> Callable[[Any], None]:
        lock = self._lock
        active = self._active

        def release(_: Any) -> None:
            with lock:
                active[index] -= 1
                lock.notify()

        return release

    def _retire(self, index: int) -> None:
        """Take a dead member out of rotation; raise when none is left."""
        with self._lock:
            if index in self._rotation:
                self._rotation.remove(index)
                _log.warning("%s: member %d died and was taken out of rotation", self._name, index)
                if self._rotation:
                    self._turn[0] = itertools.cycle(list(self._rotation)).__next__
            self._lock.notify_all()
            if not self._rotation:
                raise self._all_died()

    def _all_died(self) -> WorkerDiedError:
        return WorkerDiedError(f"every worker of the {self._name} died; start a new pool with .options(...).init(...)")
