"""concurry: run a class as an actor on sync, thread, asyncio, process or Ray backends, with precise types."""

from concurry.core.errors import RemoteTraceback, WorkerDiedError, WorkerStoppedError
from concurry.core.future import BaseFuture, CancelledError, ConcurrentFuture, Future, SyncFuture
from concurry.core.task import TaskWorker
from concurry.core.worker import Worker, WorkerBuilder, worker

__all__ = [
    "BaseFuture",
    "CancelledError",
    "ConcurrentFuture",
    "Future",
    "RemoteTraceback",
    "SyncFuture",
    "TaskWorker",
    "Worker",
    "WorkerBuilder",
    "WorkerDiedError",
    "WorkerStoppedError",
    "worker",
]

__version__ = "0.1.0"
