"""TaskWorker: submit() checks the arguments against the function and unwraps async functions;
map() gives an iterator of results."""

from __future__ import annotations

from typing import Iterator

from typing_extensions import assert_type

from concurry import Future, TaskWorker
from workers import join, slow_add, square

tasks = TaskWorker.options(mode="thread").init()
assert_type(tasks.submit(square, 3), Future[int])
assert_type(tasks.submit(slow_add, 1, 2), Future[int])
assert_type(tasks.submit(slow_add, 1, y=2), Future[int])
assert_type(tasks.submit(join, ["a", "b"]), Future[str])
assert_type(tasks.submit(join, ["a", "b"], sep="-"), Future[str])
assert_type(tasks.submit(lambda x: x * 100, 5), Future[int])
assert_type(tasks.submit(lambda: "done"), Future[str])
assert_type(tasks.map(square, [1, 2, 3]), Iterator[int])
assert_type(tasks.map(slow_add, [1, 2], [3, 4]), Iterator[int])
assert_type(list(tasks.map(str.upper, ["a"])), list[str])
assert_type(tasks.mode, str)

blocking = TaskWorker.options(mode="process", blocking=True).init()
assert_type(blocking.submit(square, 3), int)
assert_type(blocking.submit(slow_add, 1, 2), int)
assert_type(blocking.map(square, range(3)), Iterator[int])

for mode_tasks in (
    TaskWorker.options(mode="sync").init(),
    TaskWorker.options(mode="asyncio").init(),
    TaskWorker.options(mode="ray", num_cpus=1).init(),
):
    assert_type(mode_tasks.submit(square, 2), Future[int])


def either(flag: bool) -> None:
    maybe = TaskWorker.options(mode="thread", blocking=flag).init()
    assert_type(maybe.submit(square, 3), Future[int] | int)


with TaskWorker.options(mode="asyncio").init() as scoped:
    assert_type(scoped.submit(slow_add, 1, 2), Future[int])

tasks.submit(square, "3")  # E: square takes an int
tasks.submit(square)  # E: missing argument
tasks.submit(slow_add, 1)  # E
tasks.submit(join, ["a"], separator="-")  # E: unknown keyword
tasks.map(square, ["a", "b"])  # E: the items are not ints
tasks.map(slow_add, [1], ["b"])  # E
blocking.submit(square, 3).result()  # E: blocking gives the value
tasks.shutdown()  # E: TaskWorker has no such method
TaskWorker.options(mode="thread", mp_context="fork")  # E
TaskWorker.options(mode="thread").init(1)  # E: TaskWorker takes no init arguments
