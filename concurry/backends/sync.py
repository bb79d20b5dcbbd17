# pyright: reportPrivateUsage=false
# Private names here are shared within the package: the backend completes its futures in place on the hot path
# (package-private protocol).
"""Sync mode: the call runs in the caller's thread before the proxy method returns.

Calls run the worker's bound methods, each held in a closure cell of ``methods``: the proxy's call function of a
method holds that cell itself, and ``submit`` finds it by name (both from ``concurry/codegen/templates/calls.py.j2``).
``stop()`` refills each cell with a function that raises ``Refused``, which ``failed`` turns into the stopped-worker
error, so no call needs a stopped check of its own.
"""

from __future__ import annotations

from types import CellType
from typing import Any, Mapping, NoReturn, Optional

from concurry.codegen.calls import Flavor, flavor_namespace
from concurry.codegen.spec import MethodSpec, WorkerSpec
from concurry.core.backend import make_instance
from concurry.core.execution import CoroutineRunner, CoroutineType, bind_methods
from concurry.core.future import SyncFuture
from concurry.core.options import WorkerOptions
from concurry.core.proxy import stopped_error
from concurry.core.unwrap import Submit
from concurry.core.worker_side import worker_side_config

__all__ = ["Refused", "SyncBackend"]


class Refused(Exception):
    """Raised in place of a stopped worker's methods; never leaves the generated method that called one."""


def _refuse(*args: Any, **kwargs: Any) -> NoReturn:
    raise Refused


class SyncBackend:
    __slots__ = (
        "_spec", "_init_args", "_init_kwargs", "methods", "_runner", "_stopped", "_worker_side", "submit",
    )

    submit: Submit

    stops_at_once = True  # stop() never waits: nothing runs but in the caller's thread

    def __init__(
        self, spec: WorkerSpec, init_args: tuple[Any, ...], init_kwargs: Mapping[str, Any], options: WorkerOptions
    ) -> None:
        self._spec = spec
        self._init_args = init_args
        self._init_kwargs = dict(init_kwargs)
        self.methods: dict[str, CellType] = {}  # the cell of each bound method, by name
        self._runner = CoroutineRunner()
        self._stopped = False
        self._worker_side = worker_side_config(spec, options)
        self.submit = flavor_namespace("sync")["submit_function"](self.methods, self.failed, self.awaited)

    def call_flavor(self, others: Submit, method: MethodSpec) -> Flavor:
        """What the proxy's call functions are made of (see ``concurry.codegen.calls``): ``method``'s own cell, and a
        test of its result for a coroutine unless its annotation rules one out."""
        return "sync" if method.may_return_coroutine else "sync_no_coroutine", {
            "method": self.methods[method.name], "failed": self.failed, "awaited": self.awaited, "others": others
        }

    def start(self) -> None:
        # setup errors raise here, at init()
        instance = make_instance(self._spec.cls, self._init_args, self._init_kwargs)
        bound = bind_methods(instance, self._spec, self._worker_side)
        self.methods.update((name, CellType(method)) for name, method in bound.items())

    def failed(self, error: Exception) -> SyncFuture[Any]:
        """The future of a call that raised ``error``; a call to a stopped worker raises instead."""
        if type(error) is Refused:
            raise stopped_error(self._spec.name) from None
        return SyncFuture.of_exception(error)

    def awaited(self, coroutine: CoroutineType[Any, Any, Any]) -> SyncFuture[Any]:
        """The future of a call that returned a coroutine: the coroutine's outcome."""
        try:
            return SyncFuture.of_result(self._runner.run(coroutine))  # pyright: ignore[reportUnknownMemberType, reportUnknownVariableType]
        except Exception as error:
            return SyncFuture.of_exception(error)

    def stop(self, timeout: Optional[float]) -> None:
        if not self._stopped:
            self._stopped = True
            for cell in self.methods.values():
                cell.cell_contents = _refuse
            self._runner.close()

    @property
    def alive(self) -> bool:
        return not self._stopped
