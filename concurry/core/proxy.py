"""Worker proxies: the object ``init()`` returns.

A proxy is a morphic ``Typed`` model: its public configuration is immutable and its private state is
type-checked on assignment. The methods users call are generated per worker class (``concurry.codegen``) and
reach the backend through ``_submit``, a plain attribute placed in the instance ``__dict__``. Calls of methods
with positional parameters skip even that: each such method has a call function in the instance ``__dict__``
(``concurry.codegen.calls``) that reads nothing from the proxy, since any attribute read on a pydantic model goes
through its ``__getattr__`` hook.
"""

from __future__ import annotations

import atexit
import os
import threading
import time
import weakref
from functools import partial
from queue import SimpleQueue
from typing import TYPE_CHECKING, Any, Callable, Generic, Optional, TypeVar

from pydantic import BaseModel, PrivateAttr
from typing_extensions import Self

if TYPE_CHECKING:  # morphic ships no type information; checkers see the pydantic model it is built on
    from pydantic import BaseModel as Typed
else:
    from morphic import Typed

from concurry.core.backend import Backend, Built, backend_class
from concurry.core.errors import WorkerStoppedError
from concurry.core.options import WorkerOptions
from concurry.core.ray_compat import warn_if_not_ray_compatible
from concurry.core.unwrap import submit_unwrapped, unwrapping

if TYPE_CHECKING:
    from types import TracebackType

    from concurry.codegen.calls import Flavor
    from concurry.codegen.spec import MethodSpec

__all__ = [
    "AsyncioWorkerProxy",
    "BaseWorkerProxy",
    "ProcessWorkerProxy",
    "RayWorkerProxy",
    "SyncWorkerProxy",
    "ThreadWorkerProxy",
    "WorkerProxy",
    "start_worker",
]

W = TypeVar("W")
B = TypeVar("B")

DEFAULT_STOP_TIMEOUT = 30.0


class BaseWorkerProxy(Typed, Generic[W, B]):
    """Configuration and lifecycle shared by every proxy. ``W`` is the worker class, ``B`` the blocking flag."""

    worker_cls: type
    blocking: bool = False
    init_args: tuple[Any, ...] = ()
    init_kwargs: dict[str, Any] = {}
    mode: str = "sync"
    unwrap_futures: bool = True

    _stopped: bool = PrivateAttr(default=False)

    # -- lifecycle ----------------------------------------------------------------------------------------------
    def stop(self, timeout: Optional[float] = DEFAULT_STOP_TIMEOUT) -> None:
        """Stop the worker: queued calls finish (or are cancelled once ``timeout`` passes). Idempotent."""
        backend: Optional[Backend] = self.__dict__.get("_backend")
        finalizer: Optional[weakref.finalize[..., Any]] = self.__dict__.get("_finalizer")
        if finalizer is not None:
            finalizer.detach()
        if backend is not None:
            backend.stop(timeout)
        self._stopped = True

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: Optional[type[BaseException]],
        exc: Optional[BaseException],
        tb: Optional["TracebackType"],
    ) -> None:
        self.stop()

    # -- presentation -------------------------------------------------------------------------------------------
    def __repr__(self) -> str:
        backend = self.__dict__.get("_backend")
        state = "running" if backend is not None and backend.alive else "stopped"
        flavor = "blocking" if self.blocking else "futures"
        return f"<{type(self).__name__} of {self.worker_cls.__qualname__}: mode={self.mode!r}, {flavor}, {state}>"

    __str__ = __repr__


class WorkerProxy(BaseWorkerProxy[W, B]):
    """Adds reading the worker's public attributes (``proxy.count``) through the proxy."""

    def __getattr__(self, name: str) -> Any:
        if name.startswith("_"):
            return super().__getattr__(name)  # type: ignore[misc]
        backend: Optional[Backend] = self.__dict__.get("_backend")
        if backend is None:
            raise AttributeError(name)
        if not backend.alive:  # hasattr() and getattr(proxy, name, default) keep working on a stopped worker
            raise AttributeError(
                f"{self.worker_cls.__qualname__} worker is stopped, so its attribute {name!r} cannot be read"
            )
        return backend.submit("_concurry_getattr", (name,), None).result()


class SyncWorkerProxy(WorkerProxy[W, B]):
    """Runs calls in the caller's thread; results are ready when the call returns."""


class ThreadWorkerProxy(WorkerProxy[W, B]):
    """Runs calls in one dedicated thread per worker."""


class AsyncioWorkerProxy(WorkerProxy[W, B]):
    """Runs async methods concurrently on an event-loop thread and sync methods on a dedicated thread."""


class ProcessWorkerProxy(WorkerProxy[W, B]):
    """Runs calls in one child process per worker."""

    mp_context: str = "fork"


class RayWorkerProxy(WorkerProxy[W, B]):
    """Runs calls on a Ray actor."""

    num_cpus: float = 1
    num_gpus: float = 0
    resources: Optional[dict[str, float]] = None


PROXY_BASES: dict[str, type[WorkerProxy[Any, Any]]] = {
    "sync": SyncWorkerProxy,
    "thread": ThreadWorkerProxy,
    "asyncio": AsyncioWorkerProxy,
    "process": ProcessWorkerProxy,
    "ray": RayWorkerProxy,
}


def _mode_fields(options: WorkerOptions) -> dict[str, Any]:
    if options.mode == "process":
        return {"mp_context": options.mp_context}
    if options.mode == "ray":
        return {"num_cpus": options.num_cpus, "num_gpus": options.num_gpus, "resources": options.resources}
    return {}


def _hot_path_submit(backend: Backend, unwrap_futures: bool, scanned: bool = False) -> Any:
    """What generated methods call: the backend's ``submit``, behind future unwrapping unless disabled.

    A backend with its own unwrapping policy (Ray passes its futures as object references) provides
    ``submit_unwrapping``. With ``scanned``, the submit for calls whose quick scan (a call function's) has already
    found an argument not known to be a leaf: the slow path of unwrapping, without scanning again.
    """
    if not unwrap_futures:
        return backend.submit
    own = getattr(backend, "submit_unwrapping", None)
    if own is not None:
        return own
    return partial(submit_unwrapped, backend.submit) if scanned else unwrapping(backend.submit)


def start_worker(
    worker_cls: type, options: WorkerOptions, args: tuple[Any, ...], kwargs: dict[str, Any]
) -> WorkerProxy[Any, Any]:
    """Create the proxy and its backend, start the worker, and wire the hot path."""
    from concurry.codegen.calls import call_functions
    from concurry.codegen.runtime import proxy_class
    from concurry.codegen.spec import spec_of

    spec = spec_of(worker_cls)
    if options.mode != "ray":
        warn_if_not_ray_compatible(worker_cls)
    cls = proxy_class(spec, options.mode, options.blocking)
    proxy: WorkerProxy[Any, Any] = cls(
        worker_cls=worker_cls,
        blocking=options.blocking,
        init_args=args,
        init_kwargs=kwargs,
        mode=options.mode,
        unwrap_futures=options.unwrap_futures,
        **_mode_fields(options),
    )
    if options.mode != "ray" and issubclass(worker_cls, BaseModel):
        args, kwargs = (Built(worker_cls, args, kwargs),), {}  # a model's invalid fields raise here, in every mode
    if options.max_workers > 1 or (options.max_queued_tasks is not None and not options.blocking):
        from concurry.core.pool import WorkerPool

        backend: Backend = WorkerPool(spec, args, kwargs, options)
    else:
        backend = backend_class(options.mode)(spec, args, kwargs, options)
    backend.start()
    submit = _hot_path_submit(backend, options.unwrap_futures)
    lifetime = Lifetime()
    object.__setattr__(proxy, "_backend", backend)
    object.__setattr__(proxy, "_submit", submit)
    object.__setattr__(proxy, "_lifetime", lifetime)
    object.__setattr__(proxy, "_finalizer", weakref.finalize(lifetime, _stop_dropped, backend))
    if not backend.stops_at_once:
        _start_reaper_once()
    others = _hot_path_submit(backend, options.unwrap_futures, scanned=True)
    call_flavor = getattr(backend, "call_flavor", None)
    if call_flavor is None:
        forward: Flavor = ("forward", {"submit": backend.submit, "others": others})
        flavor_of: Callable[[MethodSpec], Flavor] = lambda method: forward
    else:
        flavor_of = partial(call_flavor, others)
    vars(proxy).update(call_functions(spec, flavor_of, options.blocking, cls.__qualname__, lifetime))
    return proxy


# -- stopping dropped workers ---------------------------------------------------------------------------------------
# A dropped worker's finalizer may run wherever the last reference went: in any thread, an event loop included, or
# inside the garbage collector at an arbitrary allocation. So it only puts the backend on a SimpleQueue (safe to call
# from finalizers); the reaper thread, started with the first worker that is not sync mode's, stops each on a thread
# of its own, and the calls already made still finish. At interpreter exit everything left is stopped within one
# timeout.

_EXIT = object()  # put on the reaper's queue at exit: every drop queued before it has its stop thread registered
_drops: SimpleQueue[Any] = SimpleQueue()
_reaper: Optional[threading.Thread] = None
_reaper_reached_exit = threading.Event()
_dropped_stops: set[threading.Thread] = set()  # stops of dropped workers still under way
_exit_deadline: Optional[float] = None  # set at interpreter exit: every worker still running shares one timeout


def _time_to_stop() -> float:
    """``DEFAULT_STOP_TIMEOUT``, or at interpreter exit what is left of the exit's one timeout."""
    return DEFAULT_STOP_TIMEOUT if _exit_deadline is None else max(_exit_deadline - time.monotonic(), 0.0)


def _stop_dropped(backend: Backend) -> None:
    """The finalizer of a dropped worker (see above)."""
    if _exit_deadline is not None or backend.stops_at_once or _reaper is None:
        backend.stop(_time_to_stop())
    else:
        _drops.put(backend)


def _reap() -> None:
    while True:
        backend = _drops.get()
        if backend is _EXIT:
            _reaper_reached_exit.set()
            return
        stopping = threading.Thread(target=_stop_in_background, args=(backend,), name="concurry-stop", daemon=True)
        _dropped_stops.add(stopping)
        try:
            stopping.start()
        except RuntimeError:  # interpreter shutdown has begun, and Python 3.12+ starts no thread then: stop it here
            _dropped_stops.discard(stopping)
            backend.stop(_time_to_stop())
        del backend, stopping


def _stop_in_background(backend: Backend) -> None:
    try:
        backend.stop(_time_to_stop())
    finally:
        _dropped_stops.discard(threading.current_thread())


def _start_reaper_once() -> None:
    """Start the reaper, and register ``_at_exit`` after ``weakref.finalize`` has registered its own exit hook (the
    first finalizer does), so that ours runs first: exit hooks run last-registered first."""
    global _reaper
    if _reaper is None:
        _reaper = threading.Thread(target=_reap, name="concurry-reaper", daemon=True)
        _reaper.start()
        atexit.register(_at_exit)


def _at_exit() -> None:
    """From here on workers stop in the exiting thread (``weakref.finalize`` stops those still alive next), all
    within one ``DEFAULT_STOP_TIMEOUT``; stops of dropped workers already under way get to finish within it too."""
    global _exit_deadline
    deadline = _exit_deadline = time.monotonic() + DEFAULT_STOP_TIMEOUT
    if _reaper is not None and _reaper.is_alive():
        _drops.put(_EXIT)
        _reaper_reached_exit.wait(DEFAULT_STOP_TIMEOUT)
    for stopping in list(_dropped_stops):
        if stopping.ident is not None:  # started (the reaper registers a stop just before starting it)
            stopping.join(max(deadline - time.monotonic(), 0.0))


def _forget_reaper_after_fork() -> None:
    """A forked child has no reaper thread: its dropped workers are stopped where they are dropped."""
    global _reaper, _drops, _reaper_reached_exit
    _reaper = None
    _drops = SimpleQueue()
    _reaper_reached_exit = threading.Event()
    _dropped_stops.clear()


os.register_at_fork(after_in_child=_forget_reaper_after_fork)


class Lifetime:
    """What a worker lives as long as: held by its proxy and by the proxy's call functions.

    The worker is stopped when this is collected, not when the proxy is: a call function taken from a proxy
    (``init().method(x)``, or ``f = proxy.method``) must keep the worker alive as a bound method would, and
    holding the proxy itself would make a reference cycle, reclaimed only by the cyclic GC.
    """

    __slots__ = ("__weakref__",)


def stopped_error(worker_name: str) -> WorkerStoppedError:
    return WorkerStoppedError(f"worker {worker_name} is stopped; create a new one with .options(...).init(...)")

