"""Guide section "State Management": each worker instance keeps its own isolated state."""

from __future__ import annotations

import pytest

from concurry import Worker

pytestmark = [pytest.mark.usefixtures("stop_workers"), pytest.mark.timeout(60)]

MODES = pytest.mark.parametrize("mode", ["sync", "thread", "process", "asyncio"])


class Counter(Worker):
    def __init__(self):
        self.count = 0

    def increment(self) -> int:
        self.count += 1
        return self.count


def test_state_management_as_written(capsys: pytest.CaptureFixture[str]) -> None:
    # Each worker has separate state
    worker1 = Counter.options(mode="thread").init()
    worker2 = Counter.options(mode="thread").init()

    print(worker1.increment().result())  # 1
    print(worker1.increment().result())  # 2
    print(worker2.increment().result())  # 1 (separate state)

    worker1.stop()
    worker2.stop()
    assert capsys.readouterr().out == "1\n2\n1\n"


@MODES
def test_each_worker_has_separate_state(mode: str) -> None:
    worker1 = Counter.options(mode=mode).init()
    worker2 = Counter.options(mode=mode).init()
    assert worker1.increment().result() == 1
    assert worker1.increment().result() == 2
    assert worker2.increment().result() == 1
    assert worker1.count == 2
    assert worker2.count == 1
    worker1.stop()
    worker2.stop()


@MODES
def test_state_persists_across_many_calls(mode: str) -> None:
    worker = Counter.options(mode=mode).init()
    futures = [worker.increment() for _ in range(100)]
    assert [f.result() for f in futures] == list(range(1, 101))
    worker.stop()


def test_workers_of_different_modes_do_not_share_state() -> None:
    workers = [Counter.options(mode=mode).init() for mode in ("sync", "thread", "process", "asyncio")]
    for index, worker in enumerate(workers):
        for _ in range(index + 1):
            worker.increment().result()
    assert [w.increment().result() for w in workers] == [2, 3, 4, 5]
    for worker in workers:
        worker.stop()
