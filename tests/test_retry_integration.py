"""Retries and limits through workers: the guide's examples, and the guarantees behind them, in the modes whose
backends apply the worker-side config (sync and thread)."""

from __future__ import annotations

import asyncio
import json
import threading
import time

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from concurry import (
    CallLimit,
    LimitSet,
    RateLimit,
    ResourceLimit,
    RetryConfig,
    RetryValidationError,
    TaskWorker,
    Worker,
)

MODES = ["sync", "thread"]


@pytest.fixture(params=MODES)
def mode(request):
    return request.param


# -- the guide: basic retries, exception filtering, output validation --------------------------------------------


class FlakyAPI:
    """Stands in for the network: fails ``failures`` times with the given exception, then answers."""

    def __init__(self, failures, error=ConnectionError):
        self.failures = failures
        self.error = error
        self.calls = 0
        self.threads = set()
        self.lock = threading.Lock()

    def get(self, id):
        with self.lock:
            self.calls += 1
            self.threads.add(threading.get_ident())
            if self.calls <= self.failures:
                raise self.error(f"transient failure {self.calls}")
        return {"id": id}


class APIWorker(Worker):
    def __init__(self, api):
        self.api = api

    def fetch_data(self, id: int) -> dict:
        return self.api.get(id)


def test_basic_retry_configuration_of_the_guide(mode):
    api = FlakyAPI(failures=3)
    worker = APIWorker.options(
        mode=mode,
        num_retries=3,
        retry_algorithm="exponential",
        retry_wait=0.01,
        retry_jitter=0.3,
    ).init(api)
    result = worker.fetch_data(123).result()
    worker.stop()
    assert result == {"id": 123}
    assert api.calls == 4


def test_retries_run_inside_the_worker_thread():
    api = FlakyAPI(failures=2)
    worker = APIWorker.options(mode="thread", num_retries=2, retry_wait=0).init(api)
    assert worker.fetch_data(1).result() == {"id": 1}
    worker.stop()
    assert len(api.threads) == 1 and threading.get_ident() not in api.threads


def test_out_of_retries_the_last_error_arrives_with_its_type(mode):
    api = FlakyAPI(failures=10)
    worker = APIWorker.options(mode=mode, num_retries=2, retry_wait=0).init(api)
    with pytest.raises(ConnectionError, match="^transient failure 3$"):
        worker.fetch_data(1).result()
    worker.stop()
    assert api.calls == 3


def test_exception_filtering_by_class(mode):
    api = FlakyAPI(failures=10, error=ValueError)
    worker = APIWorker.options(mode=mode, num_retries=5, retry_on=[ConnectionError, TimeoutError]).init(api)
    with pytest.raises(ValueError, match="transient failure 1"):
        worker.fetch_data(1).result()
    worker.stop()
    assert api.calls == 1


class APIError(Exception):
    pass


def test_custom_retry_logic_of_the_guide(mode):
    def should_retry(exception, attempt, **ctx):
        return attempt < 3 and isinstance(exception, APIError)

    api = FlakyAPI(failures=10, error=APIError)
    worker = APIWorker.options(mode=mode, num_retries=5, retry_on=should_retry, retry_wait=0).init(api)
    with pytest.raises(APIError):
        worker.fetch_data(1).result()
    worker.stop()
    assert api.calls == 3


class FakeLLM:
    def __init__(self, responses):
        self.responses = list(responses)
        self.prompts = []

    def generate(self, prompt):
        self.prompts.append(prompt)
        return self.responses.pop(0)


class LLMWorker(Worker):
    def __init__(self, llm):
        self.llm = llm

    def generate_json(self, prompt: str) -> dict:
        response = self.llm.generate(prompt)
        return json.loads(response)


def is_valid_json(result, **ctx):
    return isinstance(result, dict) and "data" in result


def test_output_validation_of_the_guide(mode):
    llm = FakeLLM(['{"oops": 1}', "[]", '{"data": [1, 2]}'])
    worker = LLMWorker.options(mode=mode, num_retries=5, retry_until=is_valid_json, retry_wait=0).init(llm)
    result = worker.generate_json("Generate user data").result()
    worker.stop()
    assert result == {"data": [1, 2]}
    assert llm.prompts == ["Generate user data"] * 3


def test_output_validation_exhausted_carries_every_result(mode):
    llm = FakeLLM(['{"a": 1}', '{"b": 2}', '{"c": 3}'])
    worker = LLMWorker.options(mode=mode, num_retries=2, retry_until=is_valid_json, retry_wait=0).init(llm)
    with pytest.raises(RetryValidationError) as info:
        worker.generate_json("p").result()
    worker.stop()
    assert info.value.results == [{"a": 1}, {"b": 2}, {"c": 3}]
    assert info.value.method_name == "generate_json"


def test_a_bad_json_response_is_retried_when_its_error_is_listed(mode):
    llm = FakeLLM(["not json", '{"data": 1}'])
    worker = LLMWorker.options(
        mode=mode, num_retries=1, retry_on=[json.JSONDecodeError], retry_until=is_valid_json, retry_wait=0
    ).init(llm)
    assert worker.generate_json("p").result() == {"data": 1}
    worker.stop()


# -- the guide: TaskWorker with retries ------------------------------------------------------------------------------


def test_task_worker_submit_and_map_retry(mode):
    failures = {"left": 0}
    lock = threading.Lock()

    def flaky_function(x):
        with lock:
            if failures["left"] > 0:
                failures["left"] -= 1
                raise ConnectionError("Transient error")
        return x * 2

    worker = TaskWorker.options(mode=mode, num_retries=3, retry_on=[ConnectionError], retry_wait=0).init()
    failures["left"] = 3
    assert worker.submit(flaky_function, 10).result() == 20
    failures["left"] = 3
    assert list(worker.map(flaky_function, range(10))) == [x * 2 for x in range(10)]
    assert failures["left"] == 0
    worker.stop()


def test_task_worker_retries_async_functions(mode):
    attempts = []

    async def flaky_async(x):
        attempts.append(x)
        await asyncio.sleep(0)
        if len(attempts) < 3:
            raise TimeoutError("slow")
        return x + 1

    worker = TaskWorker.options(mode=mode, num_retries=2, retry_on=[TimeoutError], retry_wait=0).init()
    assert worker.submit(flaky_async, 1).result() == 2
    worker.stop()
    assert attempts == [1, 1, 1]


class AsyncFetcher(Worker):
    def __init__(self):
        self.calls = 0

    async def fetch(self, x: int) -> int:
        self.calls += 1
        await asyncio.sleep(0)
        if self.calls < 3:
            raise ConnectionError("again")
        return x * 10

    def count(self) -> int:
        return self.calls


def test_async_methods_retry(mode):
    worker = AsyncFetcher.options(mode=mode, num_retries=2, retry_wait=0).init()
    assert worker.fetch(4).result() == 40
    assert worker.count().result() == 3
    worker.stop()


# -- which calls are retried --------------------------------------------------------------------------------------


class Nested(Worker):
    def __init__(self):
        self.inner_calls = 0
        self.outer_calls = 0

    def inner(self) -> None:
        self.inner_calls += 1
        raise ConnectionError("inner fails")

    def outer(self) -> None:
        self.outer_calls += 1
        self.inner()

    def counts(self) -> tuple:
        return self.outer_calls, self.inner_calls


def test_a_method_calling_another_public_method_is_not_retried_twice_over(mode):
    worker = Nested.options(mode=mode, num_retries=2, retry_wait=0).init()
    with pytest.raises(ConnectionError):
        worker.outer().result()
    assert worker.counts().result() == (3, 3)
    with pytest.raises(ConnectionError):
        worker.inner().result()
    assert worker.counts().result() == (3, 6)
    worker.stop()


def test_per_method_settings(mode):
    worker = Nested.options(mode=mode, num_retries={"inner": 4, "*": 1}, retry_wait={"inner": 0, "*": 0}).init()
    with pytest.raises(ConnectionError):
        worker.inner().result()
    assert worker.counts().result() == (0, 5)
    with pytest.raises(ConnectionError):
        worker.outer().result()
    assert worker.counts().result() == (2, 7)
    worker.stop()


@pytest.mark.parametrize(("per_method", "expected"), [(False, (2, 4)), (True, (2, 3))])
def test_a_retry_config_is_reusable_and_can_be_per_method(mode, per_method, expected):
    config = RetryConfig(num_retries=1, retry_wait=0)
    worker = Nested.options(mode=mode, retry={"outer": config} if per_method else config).init()
    with pytest.raises(ConnectionError):
        worker.outer().result()  # two attempts, each calling inner once
    with pytest.raises(ConnectionError):
        worker.inner().result()  # retried only when the config applies to every method
    assert worker.counts().result() == expected
    worker.stop()


# -- options() rejects bad values with clear messages -------------------------------------------------------------


@pytest.mark.parametrize(
    ("options", "words"),
    [
        ({"retry_wait": -1}, ["APIWorker.options()", "retry_wait=-1", ">= 0"]),
        ({"retry_jitter": 2}, ["retry_jitter=2", "between 0 and 1"]),
        ({"retry_algorithm": "random"}, ["retry_algorithm='random'", "'exponential', 'linear', 'fibonacci'"]),
        ({"num_retries": -3}, ["num_retries=-3"]),
        ({"retry_on": [int]}, ["retry_on", "int", "not an exception class"]),
        ({"num_retries": {"fetch_dat": 2}}, ["num_retries", "'fetch_dat'", "not a method", "'fetch_data'"]),
        ({"retry": RetryConfig(num_retries=1), "retry_wait": 2}, ["cannot be combined with retry_wait=2"]),
        ({"limits": [ResourceLimit("c", 1), "c"]}, ["limits", "'c'", "ResourceLimit, RateLimit and CallLimit"]),
    ],
)
def test_invalid_options_fail_in_options(options, words):
    with pytest.raises(ValueError) as info:
        APIWorker.options(mode="thread", **options)
    for word in words:
        assert word in str(info.value)


# -- Integration with Limits: the guide's DatabaseWorker ----------------------------------------------------------


class DatabaseError(Exception):
    pass


class FakeDatabase:
    """Counts simultaneous connections; the first ``failures`` queries fail."""

    def __init__(self, failures=0, latency=0.0):
        self.failures = failures
        self.latency = latency
        self.lock = threading.Lock()
        self.open = 0
        self.peak = 0
        self.queries = 0

    def execute_query(self, sql):
        with self.lock:
            self.open += 1
            self.peak = max(self.peak, self.open)
            self.queries += 1
            fail = self.queries <= self.failures
        try:
            time.sleep(self.latency)
            if fail:
                raise DatabaseError(f"query {sql!r} failed")
            return [sql]
        finally:
            with self.lock:
                self.open -= 1


class DatabaseWorker(Worker):
    def __init__(self, db):
        self.db = db

    def query(self, sql: str) -> list:
        with self.limits.acquire(requested={"connections": 1}) as acq:
            result = self.db.execute_query(sql)
            acq.update(usage={"connections": 1})
            return result

    def held(self) -> dict:
        return self.limits.in_use()


def test_the_guides_database_worker(mode):
    db = FakeDatabase(failures=2)
    worker = DatabaseWorker.options(
        mode=mode,
        num_retries=3,
        retry_on=[DatabaseError],
        retry_wait=0,
        limits=[ResourceLimit(key="connections", capacity=5)],
    ).init(db)
    assert worker.query("SELECT 1").result() == ["SELECT 1"]
    assert db.queries == 3
    assert worker.held().result() == {"connections": 0}
    worker.stop()


def test_a_failed_attempt_releases_before_the_retry_waits(mode):
    """Capacity 1: a retry that still held the failed attempt's connection could never acquire it again. The
    retry_on check runs after the attempt and before the wait, and sees the connection free."""
    limits = LimitSet([ResourceLimit("connections", 1)])
    seen_before_wait = []

    def retry_db_errors(exception, attempt, **ctx):
        seen_before_wait.append(limits.in_use()["connections"])
        return isinstance(exception, DatabaseError)

    db = FakeDatabase(failures=3)
    worker = DatabaseWorker.options(
        mode=mode, num_retries=3, retry_on=retry_db_errors, retry_wait=0.01, limits=limits
    ).init(db)
    assert worker.query("SELECT 2").result() == ["SELECT 2"]
    worker.stop()
    assert seen_before_wait == [0, 0, 0]
    assert db.queries == 4
    assert limits.in_use() == {"connections": 0}


def test_a_worker_without_limits_gets_a_set_that_admits_everything(mode):
    worker = DatabaseWorker.options(mode=mode).init(FakeDatabase())
    assert worker.query("SELECT 3").result() == ["SELECT 3"]
    assert worker.held().result() == {}
    worker.stop()


def test_thread_workers_sharing_limits_never_exceed_capacity():
    limits = LimitSet([ResourceLimit("connections", 2)])
    db = FakeDatabase(failures=5, latency=0.002)
    workers = [
        DatabaseWorker.options(mode="thread", num_retries=6, retry_on=[DatabaseError], retry_wait=0, limits=limits).init(db)
        for _ in range(5)
    ]
    futures = [worker.query(f"q{i}") for i in range(8) for worker in workers]
    assert sorted(f.result()[0] for f in futures) == sorted(f"q{i}" for i in range(8) for _ in workers)
    for worker in workers:
        worker.stop()
    assert db.peak == 2
    assert db.queries == 40 + 5
    assert limits.in_use() == {"connections": 0}


@settings(max_examples=15, deadline=None)
@given(
    capacity=st.integers(1, 3),
    thread_workers=st.integers(1, 4),
    sync_callers=st.integers(0, 2),
    calls=st.integers(1, 6),
    failures=st.integers(0, 6),
)
def test_workers_of_several_modes_sharing_limits_never_exceed_capacity(
    capacity, thread_workers, sync_callers, calls, failures
):
    """Thread workers and a sync worker called from several threads, one limit set, failures and retries."""
    limits = LimitSet([ResourceLimit("connections", capacity), CallLimit(window_seconds=60, capacity=10**6)])
    db = FakeDatabase(failures=failures, latency=0.0005)
    options = {"num_retries": failures, "retry_on": [DatabaseError], "retry_wait": 0, "limits": limits}
    workers = [DatabaseWorker.options(mode="thread", **options).init(db) for _ in range(thread_workers)]
    sync_worker = DatabaseWorker.options(mode="sync", blocking=True, **options).init(db)
    sync_results = []

    def call_sync():
        sync_results.extend(sync_worker.query("s") for _ in range(calls))

    callers = [threading.Thread(target=call_sync) for _ in range(sync_callers)]
    for caller in callers:
        caller.start()
    futures = [worker.query("t") for worker in workers for _ in range(calls)]
    results = [future.result() for future in futures]
    for caller in callers:
        caller.join()
    for worker in workers:
        worker.stop()
    sync_worker.stop()
    assert results == [["t"]] * (thread_workers * calls)
    assert sync_results == [["s"]] * (sync_callers * calls)
    assert db.peak <= capacity
    total = (thread_workers + sync_callers) * calls
    assert db.queries == total + failures  # each failed query is retried once more
    assert limits.in_use() == {"connections": 0, "call_count": db.queries}


class TokenWorker(Worker):
    def complete(self, prompt: str, estimate: int, actual: int) -> str:
        with self.limits.acquire(requested={"tokens": estimate}) as acq:
            acq.update(usage={"tokens": actual})
            return prompt.upper()


def test_rate_limits_count_reported_usage_through_a_worker(mode):
    class Clock:
        now = 0.0

        def __call__(self):
            return self.now

    limits = LimitSet([RateLimit("tokens", window_seconds=60, capacity=1000)], clock=Clock())
    worker = TokenWorker.options(mode=mode, limits=limits).init()
    assert worker.complete("hi", 800, 120).result() == "HI"
    assert worker.complete("yo", 800, 300).result() == "YO"
    worker.stop()
    assert limits.in_use() == {"tokens": 420}


# -- the worker-side config travels to other processes and Ray actors ---------------------------------------------


def _shipped_config(mode):
    """What a process or Ray backend builds in the caller for its worker (here the plain class ``Flaky``)."""
    from concurry.codegen.spec import spec_of
    from concurry.core.options import validate_options
    from concurry.core.worker_side import worker_side_config

    import _limit_workers

    options = validate_options(
        "Flaky",
        {"mode": mode, "num_retries": 2, "retry_on": lambda e, attempt, **ctx: "failure" in str(e), "retry_wait": 0,
         "limits": [ResourceLimit("connections", 1)]},
    )
    return worker_side_config(spec_of(_limit_workers.Flaky), options)


@pytest.mark.parametrize("method", ["fork", "spawn"])
def test_the_worker_side_config_applies_in_a_child_process(method):
    import multiprocessing

    import cloudpickle

    import _limit_workers

    config = _shipped_config("process")
    context = multiprocessing.get_context(method)
    results = context.Queue()
    child = context.Process(target=_limit_workers.apply_shipped_config, args=(cloudpickle.dumps(config), results))
    child.start()
    (value, calls), in_use = results.get(timeout=120)
    child.join(30)
    assert (value, calls) == (42, 3)
    assert in_use == {"connections": 0}
    assert config.limits.in_use() == {"connections": 0}


def test_the_worker_side_config_applies_in_a_ray_worker():
    ray = pytest.importorskip("ray")
    started = not ray.is_initialized()
    if started:
        ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    try:
        import _limit_workers

        config = _shipped_config("ray")
        flaky = _limit_workers.Flaky

        @ray.remote(num_cpus=0)
        def in_ray_worker(config):
            from concurry.core.worker_side import apply_worker_side_config

            instance = flaky(2)
            methods = apply_worker_side_config(instance, {"work": instance.work}, config)
            return methods["work"](21), type(instance.limits._store()).__name__

        ray.cloudpickle.register_pickle_by_value(_limit_workers)  # the Ray workers cannot import the tests
        try:
            (value, calls), store = ray.get(in_ray_worker.remote(config), timeout=300)
        finally:
            ray.cloudpickle.unregister_pickle_by_value(_limit_workers)
        assert (value, calls, store) == (42, 3, "RayStore")
        assert config.limits.in_use() == {"connections": 0}
    finally:
        if started:
            ray.shutdown()
