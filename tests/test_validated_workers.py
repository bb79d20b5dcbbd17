"""Guide sections "Type Safety and Validation" and "Model Inheritance and Validation", in sync, thread, process
and asyncio modes (the Ray rows are covered by the Ray backend's tests).

Model workers are built and validated in ``init()``: invalid fields raise there in every mode, and hooks such as
``post_initialize`` run once (``capfd`` also sees what a worker process prints).
"""

from __future__ import annotations

import asyncio
from typing import Annotated, Any, List, Optional

import pytest
from morphic import Typed, validate
from pydantic import BaseModel, Field, ValidationError, field_validator, validate_call

from concurry import Worker

pytestmark = [
    pytest.mark.usefixtures("stop_workers"),
    pytest.mark.timeout(60),
    pytest.mark.filterwarnings("ignore:Worker class .* inherits from Pydantic BaseModel:UserWarning"),
]

MODES = pytest.mark.parametrize("mode", ["sync", "thread", "process", "asyncio"])


# -- Type Safety and Validation ----------------------------------------------------------------------------------------


class DataProcessor(Worker):
    def __init__(self, multiplier: int):
        self.multiplier = multiplier

    def process(self, x: int) -> int:
        return self.multiplier * x


@MODES
def test_automatic_type_validation_and_immutable_configuration(mode: str) -> None:
    worker = DataProcessor.options(mode=mode, blocking="true").init(3)
    assert worker.blocking is True
    assert worker.process(2) == 6
    worker.stop()
    with pytest.raises(ValueError, match="invalid"):
        DataProcessor.options(mode="invalid").init(3)  # type: ignore[call-overload]
    worker = DataProcessor.options(mode=mode, blocking=False).init(3)
    with pytest.raises((ValidationError, AttributeError, TypeError)):
        worker.blocking = True  # type: ignore[misc]
    worker._stopped = False
    with pytest.raises(ValidationError):
        worker._stopped = "not a bool"  # type: ignore[assignment]
    worker.stop()


class FlexibleWorker(Worker):
    def __init__(self, a, b, c=10, *args, **kwargs):  # type: ignore[no-untyped-def]
        self.a = a
        self.b = b
        self.c = c
        self.args = args
        self.kwargs = kwargs

    def process(self):  # type: ignore[no-untyped-def]
        return self.a + self.b + self.c


@MODES
def test_worker_class_flexibility(mode: str) -> None:
    worker = FlexibleWorker.options(mode=mode).init(1, 2, c=3, extra1="x", extra2="y")
    assert worker.process().result() == 6
    assert worker.kwargs == {"extra1": "x", "extra2": "y"}
    worker.stop()


# -- Worker + morphic.Typed --------------------------------------------------------------------------------------------


class TypedWorker(Worker, Typed):
    """Worker with Typed validation and lifecycle hooks."""

    name: str = Field(..., min_length=1, max_length=50)
    value: int = Field(default=0, ge=0)
    tags: List[str] = []

    @classmethod
    def pre_initialize(cls, data: dict) -> None:  # type: ignore[type-arg]
        """Hook to normalize data before validation."""
        if "name" in data:
            data["name"] = data["name"].strip().title()

    def post_initialize(self) -> None:
        """Hook after initialization."""
        print(f"Initialized worker: {self.name}")

    def compute(self, x: int) -> int:
        return self.value * x

    def rename(self, name: str) -> None:
        self.name = name


@MODES
def test_typed_worker_as_written(mode: str, capfd: pytest.CaptureFixture[str]) -> None:
    worker = TypedWorker.options(mode=mode).init(
        name=" data processor ",  # Will be normalized to "Data Processor"
        value=10,
        tags=["ml", "preprocessing"],
    )
    assert worker.compute(5).result() == 50
    assert worker.name == "Data Processor"
    assert worker.tags == ["ml", "preprocessing"]
    worker.stop()
    assert capfd.readouterr().out == "Initialized worker: Data Processor\n"  # once, in every mode


@MODES
@pytest.mark.parametrize("fields", [{"name": ""}, {"name": "x" * 51}, {"name": "ok", "value": -1},
                                    {"name": "ok", "value": "not a number"}, {"value": 3}])
def test_typed_worker_invalid_fields_raise_at_init(mode: str, fields: dict[str, Any],
                                                   capfd: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(ValueError):  # pydantic's ValidationError is a ValueError
        TypedWorker.options(mode=mode).init(**fields)
    assert "Initialized worker" not in capfd.readouterr().out


@MODES
def test_typed_worker_coerces_and_is_frozen(mode: str) -> None:
    worker = TypedWorker.options(mode=mode).init(name="coerced", value="7")
    assert worker.compute(2).result() == 14
    with pytest.raises((ValidationError, AttributeError, TypeError)):
        worker.rename("other").result()
    assert worker.name == "Coerced"
    worker.stop()


# -- Worker + pydantic.BaseModel ---------------------------------------------------------------------------------------


class PydanticWorker(Worker, BaseModel):
    """Worker with Pydantic validation."""

    name: str = Field(..., min_length=1, max_length=50)
    age: int = Field(..., ge=0, le=150)
    email: Optional[str] = None

    @field_validator("email")
    @classmethod
    def validate_email(cls, v):  # type: ignore[no-untyped-def]
        """Custom email validation."""
        if v and "@" not in v:
            raise ValueError("Invalid email format")
        return v

    def get_info(self) -> dict:  # type: ignore[type-arg]
        return {"name": self.name, "age": self.age, "email": self.email}


@MODES
def test_pydantic_worker_as_written(mode: str) -> None:
    worker = PydanticWorker.options(mode=mode).init(name="Alice", age=30, email="alice@example.com")
    assert worker.get_info().result() == {"name": "Alice", "age": 30, "email": "alice@example.com"}
    worker.stop()


@MODES
@pytest.mark.parametrize("fields", [
    {"name": "Bob", "age": -5, "email": "invalid"},
    {"name": "Bob", "age": 30, "email": "invalid"},
    {"name": "", "age": 30},
    {"name": "Bob", "age": 151},
])
def test_pydantic_worker_validation_errors_are_caught_at_initialization(mode: str, fields: dict[str, Any]) -> None:
    with pytest.raises(ValidationError):
        PydanticWorker.options(mode=mode).init(**fields)


# -- @morphic.validate ----------------------------------------------------------------------------------------------


class ValidatedWorker(Worker):
    """Worker with @validate decorator on methods."""

    @validate
    def __init__(self, name: str, multiplier: int = 2):
        """Validated __init__ with type coercion."""
        self.name = name
        self.multiplier = multiplier

    @validate
    def process(self, value: int, scale: float = 1.0) -> float:
        """Process with automatic type validation and coercion."""
        return (value * self.multiplier) * scale

    @validate
    async def async_process(self, value: int) -> int:
        """Async method with validation."""
        await asyncio.sleep(0.01)
        return value * self.multiplier


@MODES
def test_validate_decorator_as_written(mode: str) -> None:
    worker = ValidatedWorker.options(mode=mode).init(name="validator", multiplier="5")
    assert worker.multiplier == 5
    result = worker.process("10", scale="2.0").result()
    assert result == 100.0 and type(result) is float
    assert worker.async_process("7").result() == 35
    worker.stop()
    worker = ValidatedWorker.options(mode=mode).init(name="test", multiplier=3)
    assert worker.process("5", scale=2.0).result() == 30.0
    worker.stop()


def _sync_error_type(call: Any) -> type[BaseException]:
    with pytest.raises(Exception) as caught:
        call()
    return caught.type


@MODES
def test_validate_failures_keep_their_type(mode: str) -> None:
    in_sync = ValidatedWorker.options(mode="sync", blocking=True).init(name="s")
    expected = _sync_error_type(lambda: in_sync.process("not a number"))
    expected_async = _sync_error_type(lambda: in_sync.async_process("not a number"))
    expected_init = _sync_error_type(lambda: ValidatedWorker.options(mode="sync").init(name="s", multiplier="x"))
    in_sync.stop()
    worker = ValidatedWorker.options(mode=mode).init(name="v")
    with pytest.raises(expected):
        worker.process("not a number").result()
    with pytest.raises(expected_async):
        worker.async_process("not a number").result()
    worker.stop()
    with pytest.raises(expected_init):  # at init() or, where setup errors travel by future, at the first result
        ValidatedWorker.options(mode=mode).init(name="v", multiplier="x").process(1).result()


# -- @pydantic.validate_call -------------------------------------------------------------------------------------------


class PydanticValidatedWorker(Worker):
    """Worker with @validate_call decorator."""

    @validate_call
    def __init__(self, base: int, name: str = "default"):
        """Validated __init__ with Pydantic."""
        self.base = base
        self.name = name

    @validate_call
    def compute(self, x: Annotated[int, Field(ge=0, le=100)], y: int = 0) -> int:
        """Compute with strict validation using Field constraints."""
        return (x + y) * self.base

    @validate_call
    def process_list(self, values: list[int]) -> int:
        """Process a list with validation."""
        return sum(v * self.base for v in values)

    @validate_call
    async def async_compute(self, x: Annotated[int, Field(ge=0)]) -> int:
        await asyncio.sleep(0)
        return x * self.base


@MODES
def test_validate_call_decorator_as_written(mode: str) -> None:
    worker = PydanticValidatedWorker.options(mode=mode).init(base=3, name="pydantic_validator")
    assert worker.compute(x="50", y="10").result() == 180
    with pytest.raises(ValidationError):
        worker.compute(x=150, y=0).result()
    assert worker.process_list([1, 2, 3, 4, 5]).result() == 45
    assert worker.process_list(["1", "2"]).result() == 9
    assert worker.async_compute("4").result() == 12
    with pytest.raises(ValidationError):
        worker.async_compute(-1).result()
    worker.stop()


@MODES
def test_validate_call_on_init_coerces_and_rejects(mode: str) -> None:
    worker = PydanticValidatedWorker.options(mode=mode).init(base="2")
    assert worker.base == 2
    worker.stop()
    with pytest.raises(ValidationError):
        PydanticValidatedWorker.options(mode=mode).init(base="two").compute(1).result()


# -- Mixing approaches ---------------------------------------------------------------------------------------------


class HybridWorker(Worker, Typed):
    """Typed worker with additional validated methods."""

    name: str = Field(..., min_length=1)
    base_value: int = Field(default=10, ge=0)

    @validate
    def compute_with_validation(self, x: int, multiplier: float = 1.0) -> float:
        """Extra validation on this specific method."""
        return self.base_value * x * multiplier

    def compute_simple(self, x: int) -> int:
        """No extra validation."""
        return self.base_value * x


@MODES
def test_hybrid_worker_as_written(mode: str) -> None:
    worker = HybridWorker.options(mode=mode).init(name="hybrid", base_value=5)
    assert worker.compute_with_validation("10", multiplier="2.0").result() == 100.0
    assert worker.compute_simple(10).result() == 50
    worker.stop()
    with pytest.raises(ValueError):
        HybridWorker.options(mode=mode).init(name="", base_value=5)
    with pytest.raises(ValueError):
        HybridWorker.options(mode=mode).init(name="hybrid", base_value=-1)
