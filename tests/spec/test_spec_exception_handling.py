"""Guide section "Exception Handling": original exception types in every mode, and the per-mode table."""

from __future__ import annotations

import traceback

import pytest

from concurry import ConcurrentFuture, SyncFuture, Worker

pytestmark = [pytest.mark.usefixtures("stop_workers"), pytest.mark.timeout(60)]

MODES = pytest.mark.parametrize("mode", ["sync", "thread", "process", "asyncio"])


def future_kind(future: object) -> type:
    """``SyncFuture`` or ``ConcurrentFuture``: the kind the guide names (a backend may return a subclass of it)."""
    kinds = [kind for kind in (SyncFuture, ConcurrentFuture) if isinstance(future, kind)]
    assert len(kinds) == 1, f"{type(future).__name__} is not exactly one of SyncFuture and ConcurrentFuture"
    return kinds[0]


class Validator(Worker):
    def validate(self, value: int) -> int:
        if value < 0:
            raise ValueError("Value must be positive")
        return value

    def divide(self, a: int, b: int) -> float:
        return a / b


class OutOfRange(ValueError):
    """An exception class of the user's own."""


class Picky(Worker):
    def check(self, value: int) -> int:
        if value > 10:
            raise OutOfRange(f"{value} is above 10")
        return value

    async def check_async(self, value: int) -> int:
        if value > 10:
            raise OutOfRange(f"{value} is above 10 (async)")
        return value


class FailingSetup(Worker):
    def __init__(self, setting: str):
        raise LookupError(f"no such setting: {setting}")

    def work(self) -> int:
        return 1


def test_consistent_exception_behavior_as_written(capsys: pytest.CaptureFixture[str]) -> None:
    worker = Validator.options(mode="process").init()

    # ValueError is raised as-is (not wrapped)
    try:
        result = worker.validate(-5).result()
    except ValueError as e:
        print(f"Got ValueError: {e}")  # Original exception type

    # ZeroDivisionError is raised as-is
    try:
        result = worker.divide(10, 0).result()
    except ZeroDivisionError as e:
        print(f"Got ZeroDivisionError: {e}")  # Original exception type

    worker.stop()
    assert capsys.readouterr().out == "Got ValueError: Value must be positive\nGot ZeroDivisionError: division by zero\n"


@MODES
def test_original_exception_type_and_message_in_every_mode(mode: str) -> None:
    worker = Validator.options(mode=mode).init()
    with pytest.raises(ValueError) as value_error:
        worker.validate(-5).result()
    assert type(value_error.value) is ValueError
    assert value_error.value.args == ("Value must be positive",)
    with pytest.raises(ZeroDivisionError) as zero_error:
        worker.divide(10, 0).result()
    assert type(zero_error.value) is ZeroDivisionError
    assert str(zero_error.value) == "division by zero"
    assert worker.validate(5).result() == 5  # the worker survives its exceptions
    assert worker.divide(10, 4).result() == 2.5
    worker.stop()


@MODES
def test_user_exception_classes_keep_their_type(mode: str) -> None:
    worker = Picky.options(mode=mode).init()
    with pytest.raises(OutOfRange, match="^11 is above 10$") as info:
        worker.check(11).result()
    assert type(info.value) is OutOfRange
    with pytest.raises(OutOfRange, match=r"^12 is above 10 \(async\)$"):
        worker.check_async(12).result()
    worker.stop()


@MODES
def test_remote_traceback_is_attached(mode: str) -> None:
    """The traceback shown for the error includes the worker's own frame (directly or as a chained cause)."""
    worker = Validator.options(mode=mode).init()
    with pytest.raises(ValueError) as info:
        worker.validate(-1).result()
    text = "".join(traceback.format_exception(info.value))
    assert "in validate" in text
    assert 'raise ValueError("Value must be positive")' in text
    worker.stop()


@pytest.mark.parametrize(("mode", "future_type"), [("sync", SyncFuture), ("thread", ConcurrentFuture),
                                                    ("process", ConcurrentFuture), ("asyncio", ConcurrentFuture)])
def test_execution_errors_are_stored_in_the_future(mode: str, future_type: type) -> None:
    """The table's "Execution Errors" column: the call returns a future; ``result()`` raises."""
    worker = Validator.options(mode=mode).init()
    future = worker.validate(-5)  # does not raise here
    assert future_kind(future) is future_type
    error = future.exception(timeout=30)
    assert type(error) is ValueError
    assert str(error) == "Value must be positive"
    assert future.done()
    assert not future.cancelled()
    with pytest.raises(ValueError, match="^Value must be positive$"):
        future.result()
    with pytest.raises(ValueError, match="^Value must be positive$"):
        future.result()  # raised again on every call
    worker.stop()


@pytest.mark.parametrize("mode", ["sync", "asyncio"])
def test_setup_errors_are_immediate(mode: str) -> None:
    with pytest.raises(LookupError) as info:
        FailingSetup.options(mode=mode).init("colour")
    assert type(info.value) is LookupError
    assert str(info.value) == "no such setting: colour"


@pytest.mark.parametrize("mode", ["thread", "process"])
def test_setup_errors_arrive_via_future(mode: str) -> None:
    worker = FailingSetup.options(mode=mode).init("colour")  # does not raise here
    future = worker.work()
    with pytest.raises(LookupError) as info:
        future.result(timeout=30)
    assert type(info.value) is LookupError
    assert str(info.value) == "no such setting: colour"
    with pytest.raises(Exception):  # noqa: B017 - a worker without an instance must not serve later calls
        worker.work().result(timeout=30)
    worker.stop()


@MODES
def test_configuration_errors_fail_fast(mode: str) -> None:
    """"Validation errors (setup, configuration) fail fast": wrong call arity raises at the call itself."""
    worker = Validator.options(mode=mode).init()
    with pytest.raises(TypeError):
        worker.divide(1)
    with pytest.raises(TypeError):
        worker.validate(1, 2)
    worker.stop()
