"""Guide section "Type Safety and Validation": validated options, immutable configuration, checked state."""

from __future__ import annotations

import multiprocessing
import threading
import time

import pytest
from morphic import Typed
from pydantic import ValidationError

from concurry import Worker

pytestmark = [pytest.mark.usefixtures("stop_workers"), pytest.mark.timeout(60)]

ALL_MODES = ["sync", "thread", "process", "asyncio"]
MODES = pytest.mark.parametrize("mode", ALL_MODES)
FROZEN_ERRORS = (ValidationError, AttributeError, TypeError)


class DataProcessor(Worker):
    def __init__(self, multiplier: int):
        self.multiplier = multiplier


class SomeOtherClass(Worker):
    def other(self) -> int:
        return 1


class Doubler(Worker):
    def double(self, x: int) -> int:
        return 2 * x


def test_automatic_type_validation_as_written() -> None:
    # String booleans are automatically coerced
    worker = DataProcessor.options(mode="thread", blocking="true").init(3)
    assert worker.blocking is True  # Converted from string to bool

    # ExecutionMode values are validated
    worker = DataProcessor.options(mode="thread").init(3)  # Valid
    with pytest.raises(ValueError) as info:
        worker = DataProcessor.options(mode="invalid").init(3)  # Would raise error
    message = str(info.value)
    assert "mode" in message
    assert "'invalid'" in message
    for allowed in ("sync", "thread", "process", "asyncio", "ray"):
        assert allowed in message

    worker.stop()


def test_immutable_configuration_as_written() -> None:
    worker = DataProcessor.options(mode="thread", blocking=False).init(3)

    # These fields cannot be modified after creation
    with pytest.raises(FROZEN_ERRORS):
        worker.blocking = True  # Raises error
    with pytest.raises(FROZEN_ERRORS):
        worker.worker_cls = SomeOtherClass  # Raises error
    assert worker.blocking is False
    assert worker.worker_cls is DataProcessor

    # Internal state tracking (private attributes) can be updated
    worker._stopped = True  # Allowed (with type checking)
    assert worker._stopped is True

    worker.stop()


def test_type_checking_on_internal_state_as_written() -> None:
    worker = DataProcessor.options(mode="thread").init(3)

    # Internal state is type-checked
    worker._stopped = False  # Valid (bool)
    with pytest.raises(ValidationError):
        worker._stopped = "not a bool"  # Would raise ValidationError
    assert worker._stopped is False

    worker.stop()


@pytest.mark.parametrize("given", ["true", "True", "yes", "1", 1, True])
def test_truthy_strings_coerce_to_true(given: object) -> None:
    worker = Doubler.options(mode="thread", blocking=given).init()
    assert worker.blocking is True
    assert worker.double(4) == 8  # and the proxy really is a blocking one
    worker.stop()


@pytest.mark.parametrize("given", ["false", "False", "no", "0", 0, False])
def test_falsy_strings_coerce_to_false(given: object) -> None:
    worker = Doubler.options(mode="thread", blocking=given).init()
    assert worker.blocking is False
    assert worker.double(4).result() == 8
    worker.stop()


@MODES
def test_blocking_string_is_coerced_in_every_mode(mode: str) -> None:
    worker = Doubler.options(mode=mode, blocking="true").init()
    assert worker.blocking is True
    assert worker.double(21) == 42
    worker.stop()


def test_invalid_options_fail_at_options_before_anything_starts() -> None:
    """"Configuration options are validated at creation time": ``options()`` itself raises."""
    threads = threading.active_count()
    with pytest.raises(ValueError, match="'invalid'"):
        DataProcessor.options(mode="invalid")
    with pytest.raises(ValueError, match="blocking"):
        DataProcessor.options(mode="thread", blocking="maybe")
    assert threading.active_count() == threads


@MODES
def test_public_configuration_fields(mode: str) -> None:
    worker = DataProcessor.options(mode=mode).init(3)
    assert worker.worker_cls is DataProcessor
    assert worker.blocking is False
    assert worker.init_args == (3,)
    assert worker.init_kwargs == {}
    assert worker.mode == mode
    worker.stop()


@MODES
@pytest.mark.parametrize(
    ("field", "new_value"),
    [("blocking", True), ("worker_cls", SomeOtherClass), ("init_args", (4,)), ("init_kwargs", {"x": 1}),
     ("mode", "sync")],
)
def test_public_configuration_is_immutable(mode: str, field: str, new_value: object) -> None:
    worker = DataProcessor.options(mode=mode).init(3)
    before = getattr(worker, field)
    with pytest.raises(FROZEN_ERRORS):
        setattr(worker, field, new_value)
    assert getattr(worker, field) == before
    worker.stop()


def test_process_mp_context_is_a_frozen_public_field() -> None:
    worker = DataProcessor.options(mode="process", mp_context="spawn").init(3)
    assert worker.mp_context == "spawn"
    with pytest.raises(FROZEN_ERRORS):
        worker.mp_context = "fork"
    assert worker.mp_context == "spawn"
    worker.stop()


@MODES
def test_private_state_is_type_checked(mode: str) -> None:
    worker = DataProcessor.options(mode=mode).init(3)
    worker._stopped = False
    with pytest.raises(ValidationError):
        worker._stopped = "not a bool"
    with pytest.raises(ValidationError):
        worker._stopped = object()
    assert worker._stopped is False
    worker.stop()


def _wait_until(predicate, timeout: float = 10.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.01)
    return predicate()


@MODES
def test_setting_stopped_flag_does_not_prevent_a_real_stop(mode: str) -> None:
    threads_before = set(threading.enumerate())
    children_before = set(multiprocessing.active_children())
    worker = Doubler.options(mode=mode).init()
    assert worker.double(1).result() == 2
    worker._stopped = True
    worker.stop()
    with pytest.raises(RuntimeError):
        worker.double(1)
    assert _wait_until(lambda: set(threading.enumerate()) <= threads_before)
    assert _wait_until(lambda: set(multiprocessing.active_children()) <= children_before)


@MODES
def test_proxies_are_typed_models_but_workers_are_not(mode: str) -> None:
    worker = DataProcessor.options(mode=mode).init(3)
    assert isinstance(worker, Typed)
    assert not issubclass(Worker, Typed)
    assert not issubclass(DataProcessor, Typed)
    worker.stop()
