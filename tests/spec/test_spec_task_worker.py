"""Guide sections "Submitting Arbitrary Functions with TaskWorker" and "TaskWorker"."""

from __future__ import annotations

import inspect
import itertools

import pytest

from concurry import BaseFuture, TaskWorker, Worker

pytestmark = [pytest.mark.usefixtures("stop_workers"), pytest.mark.timeout(60)]

MODES = pytest.mark.parametrize("mode", ["sync", "thread", "process", "asyncio"])


def complex_computation(x, y):
    return (x ** 2 + y ** 2) ** 0.5


def square(x):
    return x ** 2


def compute(x, y):
    return x ** 2 + y ** 2


def factorial(n):
    if n <= 1:
        return 1
    return n * factorial(n - 1)


def fails_on_three(x):
    if x == 3:
        raise ValueError(f"bad input {x}")
    return x


def keywords(a, *, b, c=3):
    return (a, b, c)


# Using Custom Worker (more structure, better for complex logic)
class Calculator(Worker):
    def __init__(self, multiplier):
        self.multiplier = multiplier
        self.count = 0

    def compute(self, x):
        self.count += 1
        return x * self.multiplier


def test_submitting_arbitrary_functions_as_written(capsys: pytest.CaptureFixture[str]) -> None:
    # Create a task worker
    worker = TaskWorker.options(mode="process").init()

    # Submit function
    future = worker.submit(complex_computation, 3, 4)
    result = future.result()  # 5.0
    assert result == 5.0
    assert type(result) is float

    # Also works with lambdas
    future2 = worker.submit(lambda x: x * 100, 5)
    result2 = future2.result()  # 500
    assert result2 == 500

    results = list(worker.map(square, range(10)))
    print(results)  # [0, 1, 4, 9, 16, 25, 36, 49, 64, 81]

    worker.stop()
    assert capsys.readouterr().out == "[0, 1, 4, 9, 16, 25, 36, 49, 64, 81]\n"


def test_task_worker_basic_usage_as_written(capsys: pytest.CaptureFixture[str]) -> None:
    # Initialize a task worker
    worker = TaskWorker.options(mode="thread").init()

    future = worker.submit(compute, 3, 4)
    result = future.result()  # 25
    assert result == 25

    results = list(worker.map(square, range(10)))
    print(results)  # [0, 1, 4, 9, 16, 25, 36, 49, 64, 81]

    worker.stop()
    assert capsys.readouterr().out == "[0, 1, 4, 9, 16, 25, 36, 49, 64, 81]\n"


def test_factorial_map_as_written(capsys: pytest.CaptureFixture[str]) -> None:
    # Initialize a process-based task worker for CPU-intensive work
    worker = TaskWorker.options(mode="process").init()

    results = list(worker.map(factorial, range(1, 11)))
    print(results)  # [1, 2, 6, 24, 120, 720, 5040, 40320, 362880, 3628800]

    worker.stop()
    assert capsys.readouterr().out == "[1, 2, 6, 24, 120, 720, 5040, 40320, 362880, 3628800]\n"


def test_submit_individual_tasks_as_written(capsys: pytest.CaptureFixture[str]) -> None:
    worker = TaskWorker.options(mode="thread").init()

    # Submit individual tasks
    futures = [worker.submit(factorial, i) for i in range(1, 11)]
    results = [f.result() for f in futures]
    print(results)  # [1, 2, 6, 24, 120, 720, 5040, 40320, 362880, 3628800]

    worker.stop()
    assert capsys.readouterr().out == "[1, 2, 6, 24, 120, 720, 5040, 40320, 362880, 3628800]\n"


def test_task_worker_vs_custom_worker_as_written() -> None:
    # Using TaskWorker (simpler, Executor-like interface)
    task_worker = TaskWorker.options(mode="thread").init()
    result = task_worker.submit(lambda x: x * 2, 10).result()
    assert result == 20
    task_worker.stop()

    calc_worker = Calculator.options(mode="thread").init(2)
    result = calc_worker.compute(10).result()  # 20
    assert result == 20
    count = calc_worker.count  # State is maintained
    assert count == 1
    calc_worker.stop()


@MODES
def test_custom_worker_state_is_readable_through_the_proxy(mode: str) -> None:
    calc_worker = Calculator.options(mode=mode).init(2)
    assert calc_worker.count == 0
    assert calc_worker.compute(10).result() == 20
    assert calc_worker.count == 1
    assert calc_worker.compute(11).result() == 22
    assert calc_worker.count == 2
    assert calc_worker.multiplier == 2
    calc_worker.stop()


@MODES
def test_submit_functions_and_lambdas_in_every_mode(mode: str) -> None:
    worker = TaskWorker.options(mode=mode).init()
    future = worker.submit(complex_computation, 3, 4)
    assert isinstance(future, BaseFuture)
    assert future.result() == 5.0
    assert worker.submit(lambda x: x * 100, 5).result() == 500
    assert worker.submit(keywords, 1, b=2).result() == (1, 2, 3)
    assert worker.submit(keywords, a=1, b=2, c=4).result() == (1, 2, 4)
    offset = 7
    assert worker.submit(lambda x: x + offset, 1).result() == 8  # closures travel too
    worker.stop()


@MODES
def test_map_in_every_mode(mode: str) -> None:
    worker = TaskWorker.options(mode=mode).init()
    assert list(worker.map(square, range(10))) == [0, 1, 4, 9, 16, 25, 36, 49, 64, 81]
    assert list(worker.map(factorial, range(1, 11))) == [1, 2, 6, 24, 120, 720, 5040, 40320, 362880, 3628800]
    worker.stop()


@MODES
def test_map_zips_several_iterables_like_executor_map(mode: str) -> None:
    worker = TaskWorker.options(mode=mode).init()
    assert list(worker.map(pow, [2, 3, 4], [5, 2])) == [32, 9]  # stops at the shortest
    assert list(worker.map(square, [])) == []
    worker.stop()


@MODES
def test_map_is_lazy_and_raises_at_the_failing_item(mode: str) -> None:
    worker = TaskWorker.options(mode=mode).init()
    results = worker.map(fails_on_three, range(6))
    assert inspect.isgenerator(results) or hasattr(results, "__next__")
    assert list(itertools.islice(results, 3)) == [0, 1, 2]  # items before the failure are delivered
    with pytest.raises(ValueError, match="^bad input 3$"):
        next(results)
    assert worker.submit(square, 5).result() == 25  # the worker keeps serving
    worker.stop()


@MODES
def test_map_submits_every_call_before_the_first_result_is_read(mode: str) -> None:
    calc = TaskWorker.options(mode=mode).init()
    results = calc.map(factorial, [5, 6])  # not consumed yet
    calc.stop()  # stop lets the already submitted calls finish
    assert list(results) == [120, 720]


@MODES
def test_submitted_function_errors_keep_their_type(mode: str) -> None:
    worker = TaskWorker.options(mode=mode).init()
    with pytest.raises(ValueError, match="^bad input 3$"):
        worker.submit(fails_on_three, 3).result()
    with pytest.raises(ZeroDivisionError):
        worker.submit(lambda: 1 / 0).result()
    worker.stop()
