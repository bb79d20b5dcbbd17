"""concurry: run a class as an actor on sync, thread, asyncio, process or Ray backends, with precise types."""

from typing import TYPE_CHECKING

from concurry.core.errors import RemoteTraceback, WorkerDiedError, WorkerStoppedError
from concurry.core.executor import Executor, TaskFunction, task
from concurry.core.future import BaseFuture, CancelledError, ConcurrentFuture, Future, SyncFuture
from concurry.core.synch import (
    ALL_COMPLETED,
    FIRST_COMPLETED,
    FIRST_EXCEPTION,
    async_gather,
    async_wait,
    gather,
    wait,
)
from concurry.core.task import TaskWorker
from concurry.core.worker import Worker, WorkerBuilder, worker

__all__ = [
    "ALL_COMPLETED",
    "FIRST_COMPLETED",
    "FIRST_EXCEPTION",
    "BaseFuture",
    "CallLimit",
    "CancelledError",
    "ConcurrentFuture",
    "Executor",
    "Future",
    "LimitSet",
    "RateLimit",
    "RemoteTraceback",
    "ResourceLimit",
    "RetryConfig",
    "RetryValidationError",
    "SyncFuture",
    "TaskFunction",
    "TaskWorker",
    "Worker",
    "WorkerBuilder",
    "WorkerDiedError",
    "WorkerStoppedError",
    "async_gather",
    "async_wait",
    "gather",
    "task",
    "wait",
    "worker",
]

__version__ = "0.1.0"


# Re-exported on first use: retries and limits are not needed to import concurry.
_LAZY = {
    "CallLimit": "concurry.core.limits",
    "LimitSet": "concurry.core.limits",
    "RateLimit": "concurry.core.limits",
    "ResourceLimit": "concurry.core.limits",
    "RetryConfig": "concurry.core.retry",
    "RetryValidationError": "concurry.core.retry",
}

if TYPE_CHECKING:
    from concurry.backends.ray import RayFuture as RayFuture
    from concurry.core.limits import CallLimit, LimitSet, RateLimit, ResourceLimit
    from concurry.core.retry import RetryConfig, RetryValidationError
else:
    # Hidden from type checkers, which would otherwise accept any name imported from ``concurry``.

    def __getattr__(name: str) -> object:
        """``RayFuture`` is re-exported on first use: it imports ray, which ``import concurry`` must not."""
        if name == "RayFuture":
            from concurry.backends.ray import RayFuture

            return RayFuture
        if name in _LAZY:
            import importlib

            return getattr(importlib.import_module(_LAZY[name]), name)
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
