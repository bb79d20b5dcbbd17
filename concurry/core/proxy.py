"""Worker proxies: the object ``init()`` returns.

A proxy is a morphic ``Typed`` model: its public configuration is immutable and its private state is
type-checked on assignment. The methods users call are generated per worker class (``concurry.codegen``) and
reach the backend through ``_submit``, a plain attribute placed in the instance ``__dict__``. Calls of methods
with positional parameters skip even that: each such method has a call function in the instance ``__dict__``
(``concurry.codegen.calls``) that reads nothing from the proxy, since any attribute read on a pydantic model goes
through its ``__getattr__`` hook.
"""

from __future__ import annotations

import weakref
from functools import partial
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
from concurry.core.reaper import DEFAULT_STOP_TIMEOUT, stop_when_collected
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
    object.__setattr__(proxy, "_finalizer", stop_when_collected(lifetime, backend))
    others = _hot_path_submit(backend, options.unwrap_futures, scanned=True)
    call_flavor = getattr(backend, "call_flavor", None)
    if call_flavor is None:
        forward: Flavor = ("forward", {"submit": backend.submit, "others": others})
        flavor_of: Callable[[MethodSpec], Flavor] = lambda method: forward
    else:
        flavor_of = partial(call_flavor, others)
    vars(proxy).update(call_functions(spec, flavor_of, options.blocking, cls.__qualname__, lifetime))
    return proxy


class Lifetime:
    """What a worker lives as long as: held by its proxy and by the proxy's call functions.

    The worker is stopped when this is collected, not when the proxy is: a call function taken from a proxy
    (``init().method(x)``, or ``f = proxy.method``) must keep the worker alive as a bound method would, and
    holding the proxy itself would make a reference cycle, reclaimed only by the cyclic GC.
    """

    __slots__ = ("__weakref__",)


def stopped_error(worker_name: str) -> WorkerStoppedError:
    return WorkerStoppedError(f"worker {worker_name} is stopped; create a new one with .options(...).init(...)")

