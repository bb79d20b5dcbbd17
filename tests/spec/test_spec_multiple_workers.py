"""Guide section "Multiple Workers"."""

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


def test_multiple_workers_as_written(capsys: pytest.CaptureFixture[str]) -> None:
    # Initialize multiple workers
    workers = [
        DataProcessor.options(mode="thread").init(i)
        for i in range(1, 4)
    ]

    # Submit tasks to all workers
    futures = [w.process(10) for w in workers]

    # Collect results
    results = [f.result() for f in futures]
    print(results)  # [10, 20, 30]

    # Clean up
    for w in workers:
        w.stop()
    assert results == [10, 20, 30]
    assert capsys.readouterr().out == "[10, 20, 30]\n"


@MODES
def test_multiple_workers_in_every_mode(mode: str) -> None:
    workers = [DataProcessor.options(mode=mode).init(i) for i in range(1, 4)]
    futures = [w.process(10) for w in workers]
    assert [f.result() for f in futures] == [10, 20, 30]
    assert [w.get_count().result() for w in workers] == [1, 1, 1]
    for w in workers:
        w.stop()
