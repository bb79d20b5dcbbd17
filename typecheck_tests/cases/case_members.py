"""Proxy members: signatures, defaults, keyword-only and variadic parameters, futures as arguments,
attributes, properties, configuration fields, stop() and the context manager."""

from __future__ import annotations

from typing import Any, Optional

from typing_extensions import assert_type

from concurry import Future
from workers import DataProcessor

w = DataProcessor.options(mode="thread").init(3)
b = DataProcessor.options(mode="thread", blocking=True).init(3)

assert_type(w.scale(1.5), Future[float])
assert_type(w.scale(1.5, 3.0), Future[float])
assert_type(w.scale(1.5, factor=3.0, round_to=2), Future[float])
assert_type(b.scale(1.5, round_to=None), float)
assert_type(w.total(), Future[int])
assert_type(w.total(1, 2, 3), Future[int])
assert_type(b.total(1, 2, 3), int)
assert_type(w.log("hello"), Future[None])
assert_type(b.log("hello"), None)

# Futures are unwrapped before the call runs, so a Future[T] is accepted wherever a T is.
assert_type(w.process(w.process(1)), Future[int])
assert_type(b.process(w.process(1)), int)
assert_type(w.scale(w.scale(1.0), factor=w.scale(2.0)), Future[float])
assert_type(w.total(1, w.process(2)), Future[int])
assert_type(w.identity("text"), Future[str])
assert_type(w.identity(w.process(1)), Future[int])
assert_type(b.identity(3.5), float)
assert_type(w.scale(w.process(1)), Future[float])  # a future of an int where a float is expected
assert_type(w.scale(1.0, round_to=w.process(2)), Future[float])  # ... and where an Optional[int] is

# Public attributes and properties are read from the worker: their value, in either flavour.
assert_type(w.count, int)
assert_type(w.multiplier, int)
assert_type(b.label, str)

# The proxy's own configuration.
assert_type(w.mode, str)
assert_type(w.blocking, bool)
assert_type(w.unwrap_futures, bool)
assert_type(w.worker_cls, type)
assert_type(w.init_args, tuple[Any, ...])
assert_type(w.stop(), None)
assert_type(w.stop(timeout=1.0), None)

with DataProcessor.options(mode="process").init(1) as ctx:
    assert_type(ctx.process(2), Future[int])
with DataProcessor.options(mode="ray", blocking=True).init(1) as ctx_b:
    assert_type(ctx_b.process(2), int)


async def awaiting() -> None:
    assert_type(await w.process(1), int)
    assert_type(await w.fetch("k"), dict[str, int])


maybe: Optional[int] = b.process(1)
result: int = w.process(1).result()

w.process("one")  # E: wrong argument type
w.process()  # E: missing argument
w.process(1, 2)  # E: too many arguments
w.scale(1.0, rounding=2)  # E: unknown keyword
w.scale(1.0, 2.0, 3)  # E: round_to is keyword-only
w.total(1, "2")  # E
b.process(w.scale(1.0))  # E: a Future[float] is not a Future[int]
w.nonexistent(1)  # E: unknown method
w._concurry_getattr("count")  # E: private
w.options()  # E: Worker.options is not a method of the proxy
value: int = w.process(1)  # E: a future, not an int
text: str = b.process(1)  # E
