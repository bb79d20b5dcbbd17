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

__all__ = ["Backend", "BackendFactory", "backend_class"]


class Backend(Protocol):
    """Runs one worker. ``submit`` is the hot path: no validation, no attribute lookups by name."""

    def start(self) -> None:
        """Create the worker instance; errors surface per the mode (at once, or at the first result)."""

    def submit(self, method: str, args: tuple[Any, ...], kwargs: Optional[dict[str, Any]]) -> Future[Any]:
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


def known_modes() -> tuple[str, ...]:
    return tuple(_BACKEND_MODULES)

