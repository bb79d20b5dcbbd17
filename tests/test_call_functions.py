"""Call functions (``concurry.codegen.calls``): a proxy's per-method functions behave exactly as its class methods.

Methods whose parameters all go by position get a call function in the proxy's ``__dict__``; every other method
(keyword-only or variadic parameters, more than ``MAX_ARITY`` parameters, a parameter named like a template's own
variable) is served by the generated class method. Both kinds are checked here through the same assertions.
"""

from __future__ import annotations

import gc
import inspect
import threading
import weakref
from typing import Any

import pytest

from _processes import worker_threads

from concurry import Worker
from concurry.codegen.calls import MAX_ARITY

pytestmark = [pytest.mark.usefixtures("stop_workers"), pytest.mark.timeout(60)]

ALL_MODES = ["sync", "thread", "process", "asyncio"]
all_modes = pytest.mark.parametrize("mode", ALL_MODES)
both_flavours = pytest.mark.parametrize("blocking", [False, True])


class Payload:
    """An argument whose lifetime a test can watch (weak-referenceable, picklable)."""

    def __init__(self, size: int) -> None:
        self.data = bytes(size)


class Shapes(Worker):
    def one(self, value: Any) -> Any:
        """Returns its argument."""
        return value

    def two(self, a: int, b: int = 10) -> int:
        return a * 100 + b

    def positional_only(self, a: int, /, b: int) -> int:
        return a - b

    def common_names(self, name: int, result: int, future: int, submit: int, error: int = 0) -> int:
        return name + result + future + submit + error

    def template_names(self, _put: int, _submit: int, _future: int, _name: int, _result: int = 0) -> int:
        return _put + _submit + _future + _name + _result

    def nine(self, a: int, b: int, c: int, d: int, e: int, f: int, g: int, h: int, i: int) -> int:
        return a + b + c + d + e + f + g + h + i

    def keyword_only(self, a: int, *, k: int = 1) -> int:
        return a + k

    def size(self, payload: Payload) -> int:
        return len(payload.data)

    def size_plus(self, payload: Payload, extra: int = 0) -> int:
        return len(payload.data) + extra


def value_of(result: Any, blocking: bool) -> Any:
    return result if blocking else result.result(timeout=30)


def test_which_methods_get_call_functions() -> None:
    worker = Shapes.options(mode="thread").init()
    names = ("one", "two", "positional_only", "common_names", "template_names", "nine", "keyword_only", "size",
             "size_plus")
    assert {name for name in names if name in vars(worker)} == {
        "one", "two", "positional_only", "common_names", "size", "size_plus"
    }
    assert len(inspect.signature(Shapes.nine).parameters) - 1 > MAX_ARITY
    worker.stop()


@all_modes
@both_flavours
def test_one_argument_is_passed_as_it_is(mode: str, blocking: bool) -> None:
    worker = Shapes.options(mode=mode, blocking=blocking).init()
    for value in [(1, 2), (), [3, 4], None, {"k": "v"}, ((5,),), "text"]:
        assert value_of(worker.one(value), blocking) == value
        assert value_of(worker.one(value=value), blocking) == value
    worker.stop()


@all_modes
@both_flavours
def test_every_shape_calls_with_defaults_keywords_and_positions(mode: str, blocking: bool) -> None:
    worker = Shapes.options(mode=mode, blocking=blocking).init()
    assert value_of(worker.two(1), blocking) == 110
    assert value_of(worker.two(1, 2), blocking) == 102
    assert value_of(worker.two(b=3, a=2), blocking) == 203
    assert value_of(worker.positional_only(5, b=2), blocking) == 3
    assert value_of(worker.common_names(1, 2, 3, 4, error=5), blocking) == 15
    assert value_of(worker.common_names(name=1, result=2, future=3, submit=4), blocking) == 10
    assert value_of(worker.template_names(1, 2, 3, 4, _result=5), blocking) == 15
    assert value_of(worker.nine(*range(9)), blocking) == 36
    assert value_of(worker.keyword_only(1, k=2), blocking) == 3
    for wrong in (lambda: worker.positional_only(a=5, b=2), lambda: worker.two(), lambda: worker.two(1, 2, 3),
                  lambda: worker.one(1, value=2), lambda: worker.template_names(1, 2, 3)):
        with pytest.raises(TypeError):
            wrong()
    worker.stop()


@all_modes
def test_call_functions_look_like_the_worker_methods(mode: str) -> None:
    worker = Shapes.options(mode=mode).init()
    for name in ("one", "two", "positional_only", "common_names", "template_names", "nine", "keyword_only"):
        assert inspect.signature(getattr(worker, name)) == inspect.signature(getattr(Shapes, name)).replace(
            parameters=list(inspect.signature(getattr(Shapes, name)).parameters.values())[1:]
        ), name
    assert worker.one.__name__ == "one"
    assert worker.one.__qualname__ == f"{type(worker).__qualname__}.one"
    assert worker.one.__doc__ == "Returns its argument."
    with pytest.raises(TypeError, match=rf"^{type(worker).__qualname__}\.two\(\) takes from 1 to 2 positional"):
        worker.two(1, 2, 3)
    worker.stop()


@all_modes
def test_a_call_function_kept_after_stop_refuses_the_call(mode: str) -> None:
    worker = Shapes.options(mode=mode).init()
    one = worker.one
    assert one(1).result(timeout=30) == 1
    worker.stop()
    with pytest.raises(RuntimeError, match="is stopped"):
        one(2)


@pytest.mark.parametrize("mode", ["sync", "thread", "asyncio"])
def test_a_call_function_keeps_its_worker_alive_and_dropping_it_reclaims_the_worker(mode: str) -> None:
    before = worker_threads()
    worker = Shapes.options(mode=mode).init()
    proxy = weakref.ref(worker)
    one = worker.one
    del worker
    gc.collect()
    assert proxy() is None  # the proxy is gone; the worker is not
    assert one("still here").result(timeout=30) == "still here"
    del one
    gc.collect()
    deadline = threading.Event()
    for _ in range(200):
        if worker_threads() <= before:
            break
        deadline.wait(0.05)
    assert worker_threads() <= before, f"threads left behind: {worker_threads() - before}"


@pytest.mark.parametrize("mode", ["thread", "asyncio", "sync"])
@pytest.mark.parametrize("method", ["size", "size_plus"])  # one argument, and a tuple of them
def test_a_finished_call_does_not_keep_its_argument(mode: str, method: str) -> None:
    worker = Shapes.options(mode=mode).init()
    payload = Payload(1_000_000)
    watch = weakref.ref(payload)
    future = getattr(worker, method)(payload)
    assert future.result(timeout=30) == 1_000_000
    del payload
    gc.collect()
    assert watch() is None, "the future (or the worker) still holds the call's argument"
    assert future.done()
    worker.stop()
