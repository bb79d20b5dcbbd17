"""Less common worker shapes: static and class methods, positional-only parameters, Self, Any, class
constants, **kwargs in __init__, a subclass of a parametrised generic worker, a TaskWorker subclass."""

from __future__ import annotations

from typing import Any, Iterator, Protocol

from typing_extensions import assert_type

from concurry import Future
from workers import Edge, IntCache, MyTasks, Validator, square

edge = Edge.options(mode="thread").init(region="eu")
assert_type(edge.pure(1), Future[str])
assert_type(edge.make(1.0), Future[float])
assert_type(edge.positional(1, "1"), Future[bool])
assert_type(edge.positional(1, b="1"), Future[bool])
assert_type(edge.chain(), Future[Edge])
assert_type(edge.anything(1, None), Future[Any])
assert_type(edge.LIMIT, int)
assert_type(edge.VERSION, str)
assert_type(edge.settings, dict[str, str])
assert_type(Edge.options(mode="ray", blocking=True).init().pure(2), str)
Edge.options(mode="thread").init(region=1)  # E
Edge.options(mode="thread").init("eu")  # E: keywords only
edge.positional(a=1, b="1")  # E: a is positional-only

validator = Validator.options(mode="asyncio").init()
assert_type(validator.validate(1), Future[bool])
assert_type(validator.copy(), Future[list[int]])
assert_type(Validator.options(mode="sync", blocking=True).init().validate(3), bool)
validator.validate("1")  # E
validator.copy(times="2")  # E

ints = IntCache.options(mode="process").init(1)
assert_type(ints.get(), Future[int])
assert_type(ints.double(), Future[int])
assert_type(ints.value, int)
ints.put("one")  # E

tasks = MyTasks.options(mode="thread").init()
assert_type(tasks.ping(), Future[str])
assert_type(tasks.map(square, [1]), Iterator[int])
assert_type(tasks.submit(square, 1), Future[Any])
tasks.pong()  # E


# A protocol is the portable way to annotate a parameter that takes a proxy.
class Pure(Protocol):
    def pure(self, x: int) -> Future[str]: ...


class PureInt(Protocol):
    def pure(self, x: int) -> Future[int]: ...


def call_pure(proxy: Pure) -> Future[str]:
    return proxy.pure(1)


def call_pure_int(proxy: PureInt) -> Future[int]:
    return proxy.pure(1)


assert_type(call_pure(edge), Future[str])
call_pure_int(edge)  # E: pure gives a Future[str]
