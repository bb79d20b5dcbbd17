"""Worker-side helpers shared by backends: binding the worker's methods once, and running coroutines.

Async methods (and functions a TaskWorker is given) return coroutines; outside asyncio mode they run to
completion on a private event loop owned by the worker's thread, created on first need.
"""

from __future__ import annotations

import asyncio
import threading
from types import CoroutineType
from typing import Any, Callable, Coroutine, Optional

from concurry.codegen.spec import WorkerSpec
from concurry.core.worker_side import WorkerSideConfig, apply_worker_side_config

__all__ = ["CoroutineRunner", "CoroutineType", "bind_methods"]


def bind_methods(
    instance: Any, spec: WorkerSpec, config: Optional[WorkerSideConfig] = None
) -> dict[str, Callable[..., Any]]:
    """Every callable a proxy can name, bound to ``instance`` once so calls need no ``getattr``.

    ``config`` (from ``worker_side_config``, made where the worker was created) wraps the methods with their
    retries and sets ``instance.limits``; without it the worker gets the empty limit set.
    """
    methods = {name: getattr(instance, name) for name in spec.method_names}
    methods["_concurry_getattr"] = instance._concurry_getattr
    return apply_worker_side_config(instance, methods, config)


class CoroutineRunner:
    """Runs coroutines to completion on one private event loop (one runner per worker thread)."""

    __slots__ = ("_loop",)

    def __init__(self) -> None:
        self._loop: Optional[asyncio.AbstractEventLoop] = None

    def run(self, coroutine: Coroutine[Any, Any, Any]) -> Any:
        if asyncio._get_running_loop() is not None:
            return _run_in_fresh_thread(coroutine)  # the caller's thread is already inside a running loop
        loop = self._loop
        if loop is None:
            loop = self._loop = asyncio.new_event_loop()
        return loop.run_until_complete(coroutine)

    def close(self) -> None:
        if self._loop is not None:
            self._loop.close()
            self._loop = None


def _run_in_fresh_thread(coroutine: Coroutine[Any, Any, Any]) -> Any:
    outcome: dict[str, Any] = {}

    def target() -> None:
        try:
            outcome["result"] = asyncio.run(coroutine)
        except BaseException as error:  # delivered to the calling thread below
            outcome["error"] = error

    thread = threading.Thread(target=target, name="concurry-coroutine")
    thread.start()
    thread.join()
    if "error" in outcome:
        raise outcome["error"]
    return outcome["result"]
