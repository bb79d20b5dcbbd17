"""Exceptions of concurry's own, and how a worker's exception keeps its remote traceback."""

from __future__ import annotations

__all__ = ["RemoteTraceback", "WorkerDiedError", "WorkerStoppedError", "attach_remote_traceback"]


class WorkerDiedError(RuntimeError):
    """The worker's process or actor died; every call pending on it fails with this."""


class WorkerStoppedError(RuntimeError):
    """A call was made on a worker after ``stop()``."""


class RemoteTraceback(Exception):
    """Carries the traceback text of an exception raised in another process, shown as its cause."""

    def __init__(self, tb: str) -> None:
        super().__init__(tb)
        self.tb = tb

    def __str__(self) -> str:
        return self.tb


def attach_remote_traceback(exc: BaseException, tb_text: str) -> BaseException:
    """Chain the remote traceback as the cause, as ``concurrent.futures.process`` does."""
    exc.__cause__ = RemoteTraceback(f'\n"""\n{tb_text}"""')
    return exc
