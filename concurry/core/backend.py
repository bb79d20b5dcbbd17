"""The contract between a worker proxy and the machinery that runs the worker.

A backend owns one worker instance (or actor) and runs its method calls. The proxy layer finds a backend class
by mode name through ``backend_class``, which imports the backend module only when the mode is first used, so
``import concurry`` never loads ``multiprocessing`` machinery or ray.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any, Mapping, Optional, Protocol

if TYPE_CHECKING:
    from concurry.codegen.spec import WorkerSpec
    from concurry.core.future import Future
    from concurry.core.options import WorkerOptions

__all__ = ["Backend", "BackendFactory", "Built", "backend_class", "make_instance"]


class Backend(Protocol):
    """Runs one worker. ``submit`` is the hot path: no validation, no attribute lookups by name.

    A backend may also offer ``call_flavor(others, method) -> (flavor, values)``: which template of
    ``concurry/codegen/templates/calls.py.j2`` the call function of ``method`` (a ``MethodSpec``) uses and what its
    closure holds (sync, thread and asyncio mode and thread pools do); ``others`` takes the calls whose arguments
    may hold futures. Without it, call functions forward to ``submit``. A backend with its own way of passing
    futures on (Ray) offers ``submit_unwrapping`` too.
    """

    stops_at_once: bool
    """True when ``stop()`` never waits for a call (sync mode), so a dropped worker can be stopped right where it
    was dropped; any other is stopped on a thread of its own (see ``concurry.core.reaper``)."""

    def start(self) -> None:
        """Create the worker instance; errors surface per the mode (at once, or at the first result)."""

    def submit(self, method: str, args: tuple[Any, ...], kwargs: Optional[dict[str, Any]], /) -> Future[Any]:
        """Run ``method(*args, **kwargs)`` on the worker; never blocks on the call itself."""
        ...

    def stop(self, timeout: Optional[float]) -> None:
        """Finish or cancel every pending call, then release threads/processes. Idempotent."""

    @property
    def alive(self) -> bool:
        """False once stopped or dead."""
        ...


class BackendFactory(Protocol):
    def __call__(
        self,
        spec: WorkerSpec,
        init_args: tuple[Any, ...],
        init_kwargs: Mapping[str, Any],
        options: WorkerOptions,
    ) -> Backend: ...


class Built:
    """A worker instance made in the caller, passed as the only init argument.

    Model workers (pydantic ``BaseModel`` or morphic ``Typed``) are built and validated in ``init()``, so invalid
    fields raise there in every mode and the model's hooks run once; the backend then runs this instance (a
    process gets a pickled copy, whose unpickling runs no hooks). Only one worker can take the instance itself:
    any other (a pool's) builds its own from the same arguments.
    """

    __slots__ = ("cls", "args", "kwargs", "unclaimed")

    def __init__(self, cls: type, args: tuple[Any, ...], kwargs: Mapping[str, Any]) -> None:
        self.cls = cls
        self.args = args
        self.kwargs = dict(kwargs)
        self.unclaimed = [cls(*args, **kwargs)]

    def take(self) -> Any:
        try:
            return self.unclaimed.pop()  # atomic: one taker gets the instance
        except IndexError:
            return self.cls(*self.args, **self.kwargs)


def make_instance(cls: type, args: tuple[Any, ...], kwargs: Mapping[str, Any]) -> Any:
    """The instance a backend runs: ``cls(*args, **kwargs)``, or the one built in the caller."""
    if len(args) == 1 and type(args[0]) is Built:
        return args[0].take()
    return cls(*args, **kwargs)


_BACKEND_MODULES = {
    "sync": ("concurry.backends.sync", "SyncBackend"),
    "thread": ("concurry.backends.thread", "ThreadBackend"),
    "asyncio": ("concurry.backends.asyncio", "AsyncioBackend"),
    "process": ("concurry.backends.process", "ProcessBackend"),
    "ray": ("concurry.backends.ray", "RayBackend"),
}

_loaded: dict[str, BackendFactory] = {}


def backend_class(mode: str) -> BackendFactory:
    """The backend for ``mode``, importing its module on first use."""
    factory = _loaded.get(mode)
    if factory is None:
        module_name, class_name = _BACKEND_MODULES[mode]
        factory = getattr(importlib.import_module(module_name), class_name)
        _loaded[mode] = factory
    return factory

