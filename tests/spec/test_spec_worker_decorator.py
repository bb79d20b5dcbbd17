"""Guide section "Using the @worker Decorator"."""

from __future__ import annotations

import pytest

from concurry import worker

pytestmark = [pytest.mark.usefixtures("stop_workers"), pytest.mark.timeout(60)]

MODES = pytest.mark.parametrize("mode", ["sync", "thread", "process", "asyncio"])


@worker
class Calculator:
    def __init__(self, base: int):
        self.base = base

    def add(self, x: int) -> int:
        return self.base + x


def test_worker_decorator_as_written() -> None:
    # Use exactly like a Worker
    calc = Calculator.options(mode="thread").init(10)
    result = calc.add(5).result()  # 15
    assert result == 15
    calc.stop()


@MODES
def test_decorated_class_works_like_a_worker_in_every_mode(mode: str) -> None:
    calc = Calculator.options(mode=mode).init(10)
    assert calc.add(5).result() == 15
    assert calc.base == 10
    calc.stop()
    with pytest.raises(RuntimeError):
        calc.add(1)


@MODES
def test_decorated_class_in_blocking_mode_and_as_context_manager(mode: str) -> None:
    with Calculator.options(mode=mode, blocking=True).init(base=1) as calc:
        assert calc.add(x=2) == 3


def test_decorated_class_keeps_its_name_and_direct_use() -> None:
    assert Calculator.__name__ == "Calculator"
    assert Calculator.__qualname__ == "Calculator"
    assert Calculator.__module__ == __name__
    assert Calculator(4).add(1) == 5  # still an ordinary class when instantiated directly
