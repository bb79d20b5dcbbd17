"""Retries of worker calls: which failures to retry, which results to reject, and how long to wait between attempts.

A ``RetryConfig`` is plain validated data (picklable with cloudpickle, so it can travel to a process or a Ray
actor); ``retrying`` wraps one callable with it. The wrapper runs where the method runs, inside the worker, so a
retry never makes a round trip through the caller.

The wait before attempt ``n + 1`` is ``w(n)`` from the algorithm (``retry_wait`` times 2**(n-1), n, or the n-th
Fibonacci number), jittered as ``w·(1−j) + uniform(0, w·j)``: ``j = 0`` waits exactly ``w``, ``j = 1`` is Full
Jitter (uniform over ``[0, w]``).
"""

from __future__ import annotations

import functools
import math
import random
import reprlib
import time
from dataclasses import dataclass, field
from types import CoroutineType
from typing import Any, Awaitable, Callable, Iterable, Literal, Mapping, Optional, Sequence, Union, cast

__all__ = [
    "NumRetriesOption",
    "RETRY_ALGORITHMS",
    "RetryAlgorithmOption",
    "RetryConfigOption",
    "RetryOnOption",
    "RetryUntilOption",
    "RetryWaitOption",
    "RetryAlgorithm",
    "RetryConfig",
    "RetryValidationError",
    "check_per_method",
    "retry_wait_for",
    "retrying",
]

RetryAlgorithm = Literal["exponential", "linear", "fibonacci"]
RETRY_ALGORITHMS: tuple[str, ...] = ("exponential", "linear", "fibonacci")

RetryOnItem = Union[type[BaseException], Callable[..., bool]]
RetryOn = Union[RetryOnItem, Sequence[RetryOnItem]]
RetryUntil = Union[Callable[..., bool], Sequence[Callable[..., bool]]]

# The types of the retry keywords of ``Worker.options``: a value, or a dict of values keyed by method name.
NumRetriesOption = Union[int, dict[str, int]]
RetryOnOption = Union[RetryOn, dict[str, RetryOn], None]
RetryUntilOption = Union[RetryUntil, dict[str, RetryUntil], None]
RetryAlgorithmOption = Union[RetryAlgorithm, dict[str, RetryAlgorithm]]
RetryWaitOption = Union[float, dict[str, float]]

# The key of a per-method dict that gives the value for methods it does not name.
ANY_METHOD = "*"


class RetryValidationError(Exception):
    """Every attempt's result was rejected by ``retry_until``.

    ``results`` holds one entry per attempt, in order: the value the attempt returned, or the exception it raised
    (an attempt can fail with a retryable exception and a later one return a rejected value).
    """

    def __init__(self, message: str, results: list[Any], method_name: str) -> None:
        super().__init__(message)
        self.results = results
        self.method_name = method_name

    @property
    def attempts(self) -> int:
        return len(self.results)

    def __reduce__(self) -> Any:  # the exception travels back from processes and Ray actors
        return (type(self), (self.args[0], self.results, self.method_name))


# -- validation of single values (shared by RetryConfig and the options() fields) -------------------------------


def _check_num_retries(value: Any, name: str = "num_retries") -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise ValueError(f"{name}={value!r} is not allowed; give a whole number >= 0 (0 means no retries)")
    return value


def _check_wait(value: Any, name: str = "retry_wait") -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value) or value < 0:
        raise ValueError(f"{name}={value!r} is not allowed; give a number of seconds >= 0")
    return float(value)


def _check_jitter(value: Any, name: str = "retry_jitter") -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 <= value <= 1:
        raise ValueError(
            f"{name}={value!r} is not allowed; give a number between 0 and 1 (0 = exact waits, 1 = full jitter)"
        )
    return float(value)


def _check_algorithm(value: Any, name: str = "retry_algorithm") -> str:
    value = getattr(value, "value", value)  # an Enum member whose value is the name
    if value not in RETRY_ALGORITHMS:
        allowed = ", ".join(repr(a) for a in RETRY_ALGORITHMS)
        raise ValueError(f"{name}={value!r} is not a retry algorithm; allowed: {allowed}")
    return str(value)


def _is_exception_class(item: Any) -> bool:
    return isinstance(item, type) and issubclass(item, BaseException)


def _check_retry_on(value: Any, name: str = "retry_on") -> tuple[RetryOnItem, ...]:
    if value is None:
        return (Exception,)
    items = tuple(cast("Iterable[Any]", value)) if isinstance(value, (list, tuple, set, frozenset)) else (value,)
    if not items:
        raise ValueError(f"{name}={value!r} is empty; give exception classes and/or callables, or leave it unset")
    for item in items:
        if isinstance(item, type) and not _is_exception_class(item):
            raise ValueError(
                f"{name} got the class {item.__qualname__}, which is not an exception class; give exception classes "
                f"and/or callables (exception, attempt, **ctx) -> bool"
            )
        if not callable(item):
            raise ValueError(
                f"{name} got {item!r}; give exception classes and/or callables (exception, attempt, **ctx) -> bool"
            )
    return items


def _check_retry_until(value: Any, name: str = "retry_until") -> tuple[Callable[..., bool], ...]:
    if value is None:
        return ()
    items = tuple(cast("Iterable[Any]", value)) if isinstance(value, (list, tuple)) else (value,)
    for item in items:
        if not callable(item) or isinstance(item, type):
            raise ValueError(f"{name} got {item!r}; give a callable (result, **ctx) -> bool or a list of them")
    return items


# -- the config ---------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class RetryConfig:
    """How one method is retried; reusable across workers (``options(retry=RetryConfig(...))``).

    ``retry_on``: exception classes and/or callables ``(exception, attempt, **ctx) -> bool``; an exception is
    retried when any of them matches (default: any ``Exception``). ``retry_until``: callables
    ``(result, **ctx) -> bool``; a result is accepted when all of them return true.
    """

    num_retries: int = 0
    retry_on: Any = None
    retry_until: Any = None
    retry_algorithm: str = "exponential"
    retry_wait: float = 1.0
    retry_jitter: float = 0.3
    _retry_on: tuple[RetryOnItem, ...] = field(init=False, repr=False, compare=False)
    _retry_until: tuple[Callable[..., bool], ...] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        setter = object.__setattr__
        setter(self, "num_retries", _check_num_retries(self.num_retries))
        setter(self, "retry_algorithm", _check_algorithm(self.retry_algorithm))
        setter(self, "retry_wait", _check_wait(self.retry_wait))
        setter(self, "retry_jitter", _check_jitter(self.retry_jitter))
        setter(self, "_retry_on", _check_retry_on(self.retry_on))
        setter(self, "_retry_until", _check_retry_until(self.retry_until))

    @property
    def active(self) -> bool:
        """Whether wrapping changes anything: there are retries, or results to validate."""
        return self.num_retries > 0 or bool(self._retry_until)

    def should_retry(self, error: BaseException, attempt: int, ctx: Mapping[str, Any]) -> bool:
        for item in self._retry_on:
            if _is_exception_class(item):
                if isinstance(error, item):  # type: ignore[arg-type]
                    return True
            elif item(error, attempt, **ctx):
                return True
        return False

    def accepts(self, result: Any, ctx: Mapping[str, Any]) -> bool:
        return all(check(result, **ctx) for check in self._retry_until)

    def base_wait(self, attempt: int) -> float:
        """The algorithm's wait after failed attempt ``attempt`` (1-based), before jitter."""
        return retry_wait_for(self.retry_algorithm, self.retry_wait, attempt)

    def wait(self, attempt: int, uniform: Callable[[float, float], float] = random.uniform) -> float:
        """The jittered wait after failed attempt ``attempt``: ``w·(1−j) + uniform(0, w·j)``."""
        w = self.base_wait(attempt)
        j = self.retry_jitter
        return w * (1 - j) + (uniform(0.0, w * j) if j else 0.0)


RetryConfigOption = Union[RetryConfig, dict[str, RetryConfig], None]


def retry_wait_for(algorithm: str, base: float, attempt: int) -> float:
    if algorithm == "exponential":
        return base * 2.0 ** (attempt - 1)
    if algorithm == "linear":
        return base * attempt
    return base * _fibonacci(attempt)


def _fibonacci(n: int) -> int:
    a, b = 1, 1  # fib(1), fib(2)
    for _ in range(n - 1):
        a, b = b, a + b
    return a


def check_per_method(value: Any, check: Callable[[Any, str], Any], name: str) -> Any:
    """Validate an option that is one value or a dict of values keyed by method name (``"*"``: the others)."""
    if isinstance(value, Mapping):
        checked: dict[str, Any] = {}
        for method, item in cast("Mapping[object, Any]", value).items():
            if not isinstance(method, str):
                raise ValueError(f"{name} has the key {method!r}; per-method keys are method names (or '*')")
            checked[method] = check(item, f"{name}[{method!r}]")
        return checked
    return check(value, name)


# -- the wrapper --------------------------------------------------------------------------------------------------


def retrying(
    fn: Callable[..., Any],
    config: RetryConfig,
    method_name: str,
    *,
    is_async: bool = False,
    sleep: Callable[[float], Any] = time.sleep,
    async_sleep: Optional[Callable[[float], Awaitable[Any]]] = None,
    uniform: Callable[[float, float], float] = random.uniform,
) -> Callable[..., Any]:
    """``fn`` with retries. With ``is_async`` the wrapper is a coroutine function; otherwise, when an attempt
    returns a coroutine (a function given to ``TaskWorker.submit`` may be async), the wrapper returns a coroutine
    that awaits it and goes on retrying with ``async_sleep``, so no event loop is ever blocked by a wait."""
    retries = config.num_retries
    if async_sleep is None:
        import asyncio  # here, not at the top: `import concurry` stays free of asyncio

        async_sleep = asyncio.sleep
    pause = async_sleep

    def rejected(results: list[Any], attempts: int) -> RetryValidationError:
        return RetryValidationError(
            f"{method_name}: retry_until rejected the result of all {attempts} attempts "
            f"(last result: {reprlib.repr(results[-1])})",
            results,
            method_name,
        )

    async def finish_async(
        pending: Any, attempt: int, results: list[Any], args: tuple[Any, ...], kwargs: dict[str, Any]
    ) -> Any:
        while True:
            ctx = {"method_name": method_name, "args": args, "kwargs": kwargs}
            try:
                if pending is None:
                    pending = fn(*args, **kwargs)
                result = await pending if type(pending) is CoroutineType else pending  # pyright: ignore[reportUnknownVariableType]  # a coroutine narrowed from Any
            except Exception as error:
                if attempt > retries or not config.should_retry(error, attempt, ctx):
                    raise
                results.append(error)
                del error
            else:
                if config.accepts(result, {"attempt": attempt, **ctx}):
                    return result  # pyright: ignore[reportUnknownVariableType]
                results.append(result)
                if attempt > retries:
                    raise rejected(results, attempt)
            await pause(config.wait(attempt, uniform))
            attempt += 1
            pending = None

    if is_async:

        @functools.wraps(fn)
        async def call_async(*args: Any, **kwargs: Any) -> Any:
            return await finish_async(None, 1, [], args, kwargs)

        return call_async

    @functools.wraps(fn)
    def call(*args: Any, **kwargs: Any) -> Any:
        results: list[Any] = []
        attempt = 1
        while True:
            ctx = {"method_name": method_name, "args": args, "kwargs": kwargs}
            try:
                result = fn(*args, **kwargs)
            except Exception as error:
                if attempt > retries or not config.should_retry(error, attempt, ctx):
                    raise
                results.append(error)
                del error
            else:
                if type(result) is CoroutineType:
                    return finish_async(result, attempt, results, args, kwargs)
                if config.accepts(result, {"attempt": attempt, **ctx}):
                    return result
                results.append(result)
                if attempt > retries:
                    raise rejected(results, attempt)
            sleep(config.wait(attempt, uniform))
            attempt += 1

    return call
