"""Guide section "Worker Class Flexibility": any ``__init__`` signature, any kind of class."""

from __future__ import annotations

import dataclasses

import pytest

from concurry import Worker

pytestmark = [pytest.mark.usefixtures("stop_workers"), pytest.mark.timeout(60)]

MODES = pytest.mark.parametrize("mode", ["sync", "thread", "process", "asyncio"])


# You can use any signature you want
class FlexibleWorker(Worker):
    def __init__(self, a, b, c=10, *args, **kwargs):
        self.a = a
        self.b = b
        self.c = c
        self.args = args
        self.kwargs = kwargs

    def process(self):
        return self.a + self.b + self.c


@dataclasses.dataclass
class DataclassWorker(Worker):
    name: str
    scale: int = 2

    def scaled(self, x: int) -> str:
        return f"{self.name}:{x * self.scale}"


class NoInitWorker(Worker):
    def hello(self) -> str:
        return "hello"


def test_flexible_worker_as_written() -> None:
    # Works with any initialization pattern
    worker = FlexibleWorker.options(mode="sync").init(
        1, 2, c=3, extra1="x", extra2="y"
    )
    result = worker.process().result()  # 6
    assert result == 6
    worker.stop()


@MODES
def test_any_init_signature_in_every_mode(mode: str) -> None:
    worker = FlexibleWorker.options(mode=mode).init(1, 2, c=3, extra1="x", extra2="y")
    assert worker.process().result() == 6
    assert worker.args == ()
    assert worker.kwargs == {"extra1": "x", "extra2": "y"}
    assert worker.init_args == (1, 2)
    assert worker.init_kwargs == {"c": 3, "extra1": "x", "extra2": "y"}
    worker.stop()


@MODES
def test_defaults_and_extra_positionals(mode: str) -> None:
    worker = FlexibleWorker.options(mode=mode).init(1, 2)
    assert worker.process().result() == 13  # c defaults to 10
    worker.stop()
    worker = FlexibleWorker.options(mode=mode).init(1, 2, 3, 4, 5)
    assert worker.process().result() == 6
    assert worker.args == (4, 5)
    assert worker.kwargs == {}
    worker.stop()


@MODES
def test_dataclass_worker(mode: str) -> None:
    worker = DataclassWorker.options(mode=mode).init("d", scale=3)
    assert worker.scaled(5).result() == "d:15"
    assert worker.name == "d"
    worker.stop()


@MODES
def test_worker_without_init(mode: str) -> None:
    worker = NoInitWorker.options(mode=mode).init()
    assert worker.hello().result() == "hello"
    worker.stop()
