"""Retries and limits run inside the worker in every local mode (Ray is covered in test_ray_backend.py)."""

from __future__ import annotations

import pytest

from concurry import ResourceLimit, TaskWorker, Worker

pytestmark = [pytest.mark.usefixtures("stop_workers"), pytest.mark.timeout(60)]

MODES = ["sync", "thread", "asyncio", "process"]


class Flaky(Worker):
    """Fails its first calls; the attempt counter lives in the worker, so it shows retries ran inside it."""

    def __init__(self) -> None:
        self.attempts = 0

    def call(self, failures: int) -> int:
        self.attempts += 1
        if self.attempts <= failures:
            raise ConnectionError(f"attempt {self.attempts} failed")
        return self.attempts

    async def acall(self, failures: int) -> int:
        self.attempts += 1
        if self.attempts <= failures:
            raise ConnectionError(f"attempt {self.attempts} failed")
        return self.attempts

    def hold(self) -> float:
        with self.limits.acquire(requested={"conn": 1}) as acquisition:
            acquisition.update(usage={"conn": 1})
            return 1.0


def fails_until_third(counter: list[int]) -> int:
    counter.append(1)
    if len(counter) < 3:
        raise ConnectionError("transient")
    return len(counter)


@pytest.mark.parametrize("mode", MODES)
def test_retries_run_inside_the_worker(mode: str) -> None:
    worker = Flaky.options(mode=mode, num_retries=3, retry_on=[ConnectionError], retry_wait=0.001).init()
    assert worker.call(2).result() == 3
    assert worker.acall(5).result() == 6  # two more failures, then success on the third attempt
    with pytest.raises(ConnectionError, match="attempt 10 failed"):
        worker.call(100).result()  # 1 try + 3 retries, all failing: the last exception arrives unchanged
    assert worker.attempts == 10


@pytest.mark.parametrize("mode", MODES)
def test_worker_limits_are_set_inside_the_worker(mode: str) -> None:
    worker = Flaky.options(mode=mode, limits=[ResourceLimit(key="conn", capacity=1)]).init()
    assert [worker.hold().result() for _ in range(3)] == [1.0, 1.0, 1.0]


@pytest.mark.parametrize("mode", MODES)
def test_task_worker_submit_is_retried(mode: str) -> None:
    # The list is the worker's own copy in process mode, so its length counts the attempts made there.
    tasks = TaskWorker.options(mode=mode, num_retries=2, retry_on=[ConnectionError], retry_wait=0.001).init()
    assert tasks.submit(fails_until_third, []).result() == 3
