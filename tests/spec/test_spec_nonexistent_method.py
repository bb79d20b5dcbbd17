"""Guide section "Non-Existent Method Errors": calling a method the worker does not have."""

from __future__ import annotations

import pytest

from concurry import Worker

pytestmark = [pytest.mark.usefixtures("stop_workers"), pytest.mark.timeout(60)]

MODES = pytest.mark.parametrize("mode", ["sync", "thread", "process", "asyncio"])


class DataProcessor(Worker):
    def __init__(self, multiplier: int):
        self.multiplier = multiplier
        self.count = 0

    def process(self, value: int) -> int:
        self.count += 1
        return value * self.multiplier

    def get_count(self) -> int:
        return self.count

    def _internal(self) -> str:
        return "private"


def test_non_existent_method_as_written(capsys: pytest.CaptureFixture[str]) -> None:
    worker = DataProcessor.options(mode="thread").init(2)

    # Sync and Ray modes: fail immediately
    try:
        worker.nonexistent_method()  # AttributeError raised immediately
    except AttributeError as e:
        print(f"Method not found: {e}")

    # Thread/Process/Asyncio modes: fail when calling result()
    try:
        future = worker.nonexistent_method()
        future.result()  # AttributeError raised here
    except AttributeError as e:
        print(f"Method not found: {e}")

    worker.stop()
    lines = capsys.readouterr().out.splitlines()
    assert len(lines) == 2
    for line in lines:
        assert line.startswith("Method not found: ")
        assert "nonexistent_method" in line


@MODES
@pytest.mark.parametrize("blocking", [False, True])
def test_unknown_method_raises_attribute_error_at_once(mode: str, blocking: bool) -> None:
    worker = DataProcessor.options(mode=mode, blocking=blocking).init(2)
    with pytest.raises(AttributeError, match="nonexistent_method"):
        worker.nonexistent_method  # noqa: B018 - the lookup itself fails, before any call is made
    assert not hasattr(worker, "nonexistent_method")
    result = worker.process(5)
    assert (result if blocking else result.result()) == 10  # the worker keeps serving
    worker.stop()


@MODES
def test_private_methods_are_not_reachable(mode: str) -> None:
    worker = DataProcessor.options(mode=mode).init(2)
    with pytest.raises(AttributeError, match="_internal"):
        worker._internal()
    worker.stop()
