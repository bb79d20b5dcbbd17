"""Sync mode's futures and returned coroutines.

A call that returned gets a ``SyncFuture``, one that raised a ``FailedSyncFuture``. A returned coroutine is run to
completion unless the method's return annotation rules one out (``MethodSpec.may_return_coroutine``): then the
call function of flavor ``sync_no_coroutine`` returns the result without testing it.
"""

from __future__ import annotations

import asyncio
import collections.abc
import functools
from typing import Any, Awaitable, Callable, Coroutine, Literal, Optional, Protocol, TypeVar, Union

import pytest

from concurry import SyncFuture, Worker
from concurry.codegen.spec import spec_of
from concurry.core.future import FailedSyncFuture

T = TypeVar("T")


class Sized(Protocol):
    def size(self) -> int: ...


class Record:
    pass


async def seven() -> int:
    await asyncio.sleep(0)
    return 7


def returns_a_coroutine(method: Callable[..., int]) -> Callable[..., Coroutine[Any, Any, int]]:
    """A decorator that changes what a method returns while ``functools.wraps`` copies its ``-> int``."""

    @functools.wraps(method)
    def wrapper(*args: Any) -> Coroutine[Any, Any, int]:
        method(*args)
        return seven()

    return wrapper


class Annotated(Worker):
    """One method per kind of return annotation; each returns what its annotation says (or a coroutine)."""

    def plain_int(self) -> int:
        return 1

    def optional_int(self) -> Optional[int]:
        return None

    def union_pipe(self) -> int | str:
        return "a"

    def nothing(self) -> None:
        return None

    def list_of(self) -> list[int]:
        return [1]

    def literal(self) -> Literal["x"]:
        return "x"

    def own_class(self) -> Record:
        return Record()

    def unannotated(self):  # type: ignore[no-untyped-def]  # noqa: ANN201
        return seven()

    def any_result(self) -> Any:
        return seven()

    def as_object(self) -> object:
        return seven()

    def awaitable(self) -> Awaitable[int]:
        return seven()

    def coroutine(self) -> Coroutine[Any, Any, int]:
        return seven()

    def abc_coroutine(self) -> collections.abc.Coroutine[Any, Any, int]:
        return seven()

    def union_with_awaitable(self) -> Union[int, Awaitable[int]]:
        return seven()

    def type_variable(self, value: T) -> T:
        return value

    def protocol(self) -> Sized:
        raise NotImplementedError

    def unresolvable(self) -> "NotDefinedAnywhere":  # type: ignore[name-defined]  # noqa: F821
        return seven()

    async def native(self) -> int:
        return await seven()

    @returns_a_coroutine
    def decorated(self) -> int:
        return 1


RULED_OUT = {"plain_int", "optional_int", "union_pipe", "nothing", "list_of", "literal", "own_class"}


def test_which_annotations_rule_out_a_coroutine() -> None:
    flags = {m.name: m.may_return_coroutine for m in spec_of(Annotated).methods}
    may = {"unannotated", "any_result", "as_object", "awaitable", "coroutine", "abc_coroutine", "union_with_awaitable",
           "type_variable", "protocol", "unresolvable", "native", "decorated"}
    assert flags == {**{name: False for name in RULED_OUT}, **{name: True for name in may}}


@pytest.mark.parametrize("blocking", [False, True])
def test_each_method_gets_the_flavor_its_annotation_allows(blocking: bool) -> None:
    with Annotated.options(mode="sync", blocking=blocking).init() as worker:
        for method in spec_of(Annotated).methods:
            flavor = "sync_no_coroutine" if method.name in RULED_OUT else "sync"
            code = vars(worker)[method.name].__code__
            assert code.co_filename == f"<concurry {flavor} calls>", method.name


@pytest.mark.parametrize(
    "method", ["unannotated", "any_result", "as_object", "awaitable", "coroutine", "abc_coroutine",
               "union_with_awaitable", "unresolvable", "native", "decorated"],
)
def test_a_coroutine_is_run_when_the_annotation_allows_one(method: str) -> None:
    with Annotated.options(mode="sync").init() as worker:
        assert getattr(worker, method)().result() == 7
    with Annotated.options(mode="sync", blocking=True).init() as worker:
        assert getattr(worker, method)() == 7


def test_results_of_methods_whose_annotation_rules_out_a_coroutine_are_returned_as_they_are() -> None:
    with Annotated.options(mode="sync").init() as worker:
        assert worker.plain_int().result() == 1
        assert worker.optional_int().result() is None
        assert worker.union_pipe().result() == "a"
        assert worker.list_of().result() == [1]
        assert isinstance(worker.own_class().result(), Record)
        assert worker.type_variable("v").result() == "v"


class Liar(Worker):
    def claims_int(self) -> int:
        return seven()  # type: ignore[return-value]


def test_a_method_that_returns_a_coroutine_against_its_annotation_gets_the_coroutine_back() -> None:
    """The documented cost of trusting annotations: sync mode does not look."""
    with Liar.options(mode="sync").init() as worker:
        result: Any = worker.claims_int().result()
        assert asyncio.iscoroutine(result)
        assert asyncio.run(result) == 7


class Outcomes(Worker):
    def ok(self, value: int) -> int:
        return value

    def fail(self, value: int) -> int:
        raise KeyError(f"no {value}")


@pytest.mark.parametrize("kind", ["call function", "keyword call"])
def test_a_returned_call_gets_a_sync_future_and_a_raised_one_a_failed_sync_future(kind: str) -> None:
    with Outcomes.options(mode="sync").init() as worker:
        ok = worker.ok(3) if kind == "call function" else worker.ok(value=3)
        failed = worker.fail(4) if kind == "call function" else worker.fail(value=4)
    assert type(ok) is SyncFuture
    assert (ok.result(), ok.exception(), ok.done(), ok.running(), ok.cancelled(), ok.cancel()) == (
        3, None, True, False, False, False)
    assert repr(ok) == "<SyncFuture finished returned int>"
    assert type(failed) is FailedSyncFuture and isinstance(failed, SyncFuture)
    with pytest.raises(KeyError, match="no 4"):
        failed.result()
    error = failed.exception()
    assert type(error) is KeyError and error.args == ("no 4",)
    assert (failed.done(), failed.running(), failed.cancelled(), failed.cancel()) == (True, False, False, False)
    assert repr(failed) == "<FailedSyncFuture finished raised KeyError>"


def test_done_callbacks_of_sync_futures_run_at_once() -> None:
    seen: list[tuple[str, object]] = []
    with Outcomes.options(mode="sync").init() as worker:
        worker.ok(5).add_done_callback(lambda f: seen.append(("ok", f.result())))
        worker.fail(6).add_done_callback(lambda f: seen.append(("failed", type(f.exception()))))
    assert seen == [("ok", 5), ("failed", KeyError)]


def test_a_sync_future_awaits_to_its_outcome() -> None:
    async def main() -> tuple[int, str]:
        with Outcomes.options(mode="sync").init() as worker:
            value = await worker.ok(8)
            try:
                await worker.fail(9)
            except KeyError as error:
                return value, str(error)
        raise AssertionError("fail(9) did not raise")

    assert asyncio.run(main()) == (8, "'no 9'")
