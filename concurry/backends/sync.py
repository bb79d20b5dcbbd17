"""Sync mode: the call runs in the caller's thread before the proxy method returns."""

from __future__ import annotations

from typing import Any, Callable, Mapping, Optional

from concurry.codegen.spec import WorkerSpec
from concurry.core.execution import CoroutineRunner, CoroutineType, bind_methods
from concurry.core.future import Future, SyncFuture
from concurry.core.options import WorkerOptions
from concurry.core.proxy import stopped_error

__all__ = ["SyncBackend"]


class SyncBackend:
    __slots__ = ("_spec", "_init_args", "_init_kwargs", "_methods", "_runner", "_stopped")

    def __init__(
        self, spec: WorkerSpec, init_args: tuple[Any, ...], init_kwargs: Mapping[str, Any], options: WorkerOptions
    ) -> None:
        self._spec = spec
        self._init_args = init_args
        self._init_kwargs = dict(init_kwargs)
        self._methods: dict[str, Callable[..., Any]] = {}
        self._runner = CoroutineRunner()
        self._stopped = False

    def start(self) -> None:
        instance = self._spec.cls(*self._init_args, **self._init_kwargs)  # setup errors raise here, at init()
        self._methods = bind_methods(instance, self._spec)

    def submit(self, method: str, args: tuple[Any, ...], kwargs: Optional[dict[str, Any]]) -> Future[Any]:
        if self._stopped:
            raise stopped_error(self._spec.name)
        try:
            result = self._methods[method](*args, **kwargs) if kwargs else self._methods[method](*args)
            if type(result) is CoroutineType:
                result = self._runner.run(result)
        except Exception as error:
            return SyncFuture.of_exception(error)
        return SyncFuture.of_result(result)

    def stop(self, timeout: Optional[float]) -> None:
        if not self._stopped:
            self._stopped = True
            self._methods = {}
            self._runner.close()

    @property
    def alive(self) -> bool:
        return not self._stopped
