"""Method results in every mode: Future[R] by default or with blocking=False, R with blocking=True,
Future[R] | R with a plain bool; async methods give their awaited result."""

from __future__ import annotations

from typing_extensions import assert_type

from concurry import Future
from workers import DataProcessor

default = DataProcessor.options().init(2)
assert_type(default.process(1), Future[int])
assert_type(default.fetch("k"), Future[dict[str, int]])

sync = DataProcessor.options(mode="sync").init(2)
assert_type(sync.process(1), Future[int])
assert_type(sync.fetch("k"), Future[dict[str, int]])
thread = DataProcessor.options(mode="thread").init(2)
assert_type(thread.process(1), Future[int])
assert_type(thread.fetch("k"), Future[dict[str, int]])
asyncio_ = DataProcessor.options(mode="asyncio", blocking=False).init(2)
assert_type(asyncio_.process(1), Future[int])
assert_type(asyncio_.fetch("k"), Future[dict[str, int]])
process = DataProcessor.options(mode="process", mp_context="spawn").init(2)
assert_type(process.process(1), Future[int])
assert_type(process.fetch("k"), Future[dict[str, int]])
ray = DataProcessor.options(mode="ray", num_cpus=0.5, num_gpus=0, resources={"disk": 1.0}).init(2)
assert_type(ray.process(1), Future[int])
assert_type(ray.fetch("k"), Future[dict[str, int]])

sync_b = DataProcessor.options(mode="sync", blocking=True).init(2)
assert_type(sync_b.process(1), int)
assert_type(sync_b.fetch("k"), dict[str, int])
thread_b = DataProcessor.options(mode="thread", blocking=True).init(2)
assert_type(thread_b.process(1), int)
assert_type(thread_b.fetch("k"), dict[str, int])
asyncio_b = DataProcessor.options(mode="asyncio", blocking=True).init(2)
assert_type(asyncio_b.process(1), int)
assert_type(asyncio_b.fetch("k"), dict[str, int])
process_b = DataProcessor.options(mode="process", blocking=True, mp_context="fork").init(2)
assert_type(process_b.process(1), int)
assert_type(process_b.fetch("k"), dict[str, int])
ray_b = DataProcessor.options(mode="ray", blocking=True, actor_options={"name": "p"}).init(2)
assert_type(ray_b.process(1), int)
assert_type(ray_b.fetch("k"), dict[str, int])


def either(flag: bool) -> None:
    for_sync = DataProcessor.options(mode="sync", blocking=flag).init(2)
    assert_type(for_sync.process(1), Future[int] | int)
    for_thread = DataProcessor.options(mode="thread", blocking=flag).init(2)
    assert_type(for_thread.fetch("k"), Future[dict[str, int]] | dict[str, int])
    for_asyncio = DataProcessor.options(mode="asyncio", blocking=flag).init(2)
    assert_type(for_asyncio.process(1), Future[int] | int)
    for_process = DataProcessor.options(mode="process", blocking=flag).init(2)
    assert_type(for_process.process(1), Future[int] | int)
    for_ray = DataProcessor.options(mode="ray", blocking=flag).init(2)
    assert_type(for_ray.process(1), Future[int] | int)


assert_type(process.process(1).result(), int)
assert_type(process.process(1).result(timeout=1.0), int)
process_b.process(1).result()  # E: a blocking call returns the value, not a future
ray_b.fetch("k").result()  # E
