"""RetryConfig and the retry wrapper, with injected sleep and randomness: no test waits for real."""

from __future__ import annotations

import asyncio
import inspect
import pickle

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from concurry.core.retry import RETRY_ALGORITHMS, RetryConfig, RetryValidationError, retrying


class Flaky:
    """Fails with the given exceptions in order, then returns the given results in order (the last repeats)."""

    def __init__(self, failures=(), results=("ok",)):
        self.failures = list(failures)
        self.results = list(results)
        self.calls = []

    def __call__(self, *args, **kwargs):
        self.calls.append((args, kwargs))
        if self.failures:
            raise self.failures.pop(0)
        return self.results.pop(0) if len(self.results) > 1 else self.results[0]


class Sleeps(list):
    def __call__(self, seconds):
        self.append(seconds)


def wrap(fn, sleeps=None, uniform=lambda lo, hi: hi, **config):
    return retrying(fn, RetryConfig(**config), "method", sleep=sleeps if sleeps is not None else Sleeps(), uniform=uniform)


# -- validation ---------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("config", "words"),
    [
        ({"num_retries": -1}, ["num_retries=-1", ">= 0"]),
        ({"num_retries": 1.5}, ["num_retries=1.5", "whole number"]),
        ({"num_retries": True}, ["num_retries=True"]),
        ({"retry_wait": -0.5}, ["retry_wait=-0.5", ">= 0"]),
        ({"retry_wait": float("inf")}, ["retry_wait=inf"]),
        ({"retry_jitter": 1.5}, ["retry_jitter=1.5", "between 0 and 1"]),
        ({"retry_jitter": -0.1}, ["retry_jitter=-0.1", "between 0 and 1"]),
        ({"retry_algorithm": "quadratic"}, ["retry_algorithm='quadratic'", "'exponential', 'linear', 'fibonacci'"]),
        ({"retry_on": [ValueError, int]}, ["retry_on", "int", "not an exception class"]),
        ({"retry_on": "ValueError"}, ["retry_on", "'ValueError'"]),
        ({"retry_on": []}, ["retry_on=[]", "empty"]),
        ({"retry_until": 3}, ["retry_until", "3", "callable"]),
        ({"retry_until": [lambda r, **c: True, "x"]}, ["retry_until", "'x'"]),
    ],
)
def test_invalid_values_are_named_with_what_is_allowed(config, words):
    with pytest.raises(ValueError) as info:
        RetryConfig(**config)
    for word in words:
        assert word in str(info.value)


def test_defaults():
    config = RetryConfig()
    assert (config.num_retries, config.retry_algorithm, config.retry_wait, config.retry_jitter) == (
        0, "exponential", 1.0, 0.3,
    )
    assert not config.active
    assert RetryConfig(num_retries=1).active
    assert RetryConfig(retry_until=lambda r, **c: True).active


# -- waits --------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("algorithm", "expected"),
    [
        ("exponential", [1, 2, 4, 8, 16, 32]),
        ("linear", [1, 2, 3, 4, 5, 6]),
        ("fibonacci", [1, 1, 2, 3, 5, 8]),
    ],
)
def test_algorithm_waits_before_jitter(algorithm, expected):
    config = RetryConfig(retry_algorithm=algorithm, retry_wait=0.5)
    assert [config.base_wait(n) for n in range(1, 7)] == [0.5 * e for e in expected]


@given(
    algorithm=st.sampled_from(RETRY_ALGORITHMS),
    base=st.floats(0, 10),
    jitter=st.floats(0, 1),
    attempt=st.integers(1, 12),
    fraction=st.floats(0, 1),
)
def test_jittered_wait_is_w_times_one_minus_j_plus_uniform_share(algorithm, base, jitter, attempt, fraction):
    config = RetryConfig(retry_algorithm=algorithm, retry_wait=base, retry_jitter=jitter)
    w = config.base_wait(attempt)
    seen = []

    def uniform(lo, hi):
        seen.append((lo, hi))
        return lo + fraction * (hi - lo)

    wait = config.wait(attempt, uniform)
    assert wait == pytest.approx(w * (1 - jitter) + fraction * w * jitter)
    assert w * (1 - jitter) - 1e-9 <= wait <= w + 1e-9
    if jitter:
        assert seen == [(0.0, w * jitter)]


def test_zero_jitter_waits_exactly_and_full_jitter_spans_zero_to_w():
    exact = RetryConfig(retry_wait=2.0, retry_jitter=0, retry_algorithm="linear")
    assert [exact.wait(n) for n in (1, 2, 3)] == [2.0, 4.0, 6.0]
    full = RetryConfig(retry_wait=2.0, retry_jitter=1, retry_algorithm="linear")
    assert full.wait(3, lambda lo, hi: lo) == 0.0
    assert full.wait(3, lambda lo, hi: hi) == 6.0
    samples = [RetryConfig(retry_wait=1.0, retry_jitter=0.3).wait(3) for _ in range(2000)]
    assert all(4 * 0.7 <= s <= 4.0 for s in samples)


# -- attempt counts -----------------------------------------------------------------------------------------------


@settings(max_examples=60)
@given(failures=st.integers(0, 6), retries=st.integers(0, 5))
def test_exact_attempt_counts(failures, retries):
    fn = Flaky([ConnectionError(f"boom {i}") for i in range(failures)])
    sleeps = Sleeps()
    call = wrap(fn, sleeps, num_retries=retries, retry_wait=1.0, retry_jitter=0.0)
    if failures <= retries:
        assert call(7) == "ok"
        assert len(fn.calls) == failures + 1
        assert sleeps == [2.0 ** (n - 1) for n in range(1, failures + 1)]
    else:
        with pytest.raises(ConnectionError, match=f"^boom {retries}$"):
            call(7)
        assert len(fn.calls) == retries + 1
        assert sleeps == [2.0 ** (n - 1) for n in range(1, retries + 1)]
    assert all(args == ((7,), {}) for args in fn.calls)


def test_waits_follow_the_algorithm_and_the_jitter_draw():
    fn = Flaky([OSError()] * 4)
    sleeps = Sleeps()
    call = wrap(fn, sleeps, uniform=lambda lo, hi: hi / 2, num_retries=4, retry_algorithm="fibonacci",
                retry_wait=1.0, retry_jitter=0.5)
    assert call() == "ok"
    # w·(1−j) + half of w·j, for w = 1, 1, 2, 3
    assert sleeps == [0.75, 0.75, 1.5, 2.25]


def test_the_exception_that_ends_the_retries_is_the_last_one_unchanged():
    last = ConnectionError("third")
    fn = Flaky([ConnectionError("first"), ConnectionError("second"), last])
    with pytest.raises(ConnectionError) as info:
        wrap(fn, num_retries=2)()
    assert info.value is last


# -- which exceptions are retried ---------------------------------------------------------------------------------


def test_retry_on_classes_only_retries_those():
    fn = Flaky([TimeoutError(), ValueError("not transient")])
    with pytest.raises(ValueError, match="not transient"):
        wrap(fn, num_retries=5, retry_on=[ConnectionError, TimeoutError])()
    assert len(fn.calls) == 2


def test_retry_on_single_class():
    fn = Flaky([KeyError("k")])
    assert wrap(fn, num_retries=1, retry_on=KeyError)() == "ok"


class APIError(Exception):
    pass


def test_the_guides_should_retry_callable_stops_after_three_attempts():
    def should_retry(exception, attempt, **ctx):
        return attempt < 3 and isinstance(exception, APIError)

    fn = Flaky([APIError(str(i)) for i in range(10)])
    with pytest.raises(APIError, match="^2$"):
        wrap(fn, num_retries=5, retry_on=should_retry)()
    assert len(fn.calls) == 3


def test_retry_on_callable_gets_exception_attempt_and_context():
    seen = []

    def decide(exception, attempt, **ctx):
        seen.append((exception.args, attempt, ctx))
        return True

    fn = Flaky([RuntimeError("a"), RuntimeError("b")])
    call = retrying(fn, RetryConfig(num_retries=3, retry_on=decide), "fetch", sleep=Sleeps())
    assert call(1, key="v") == "ok"
    assert seen == [
        (("a",), 1, {"method_name": "fetch", "args": (1,), "kwargs": {"key": "v"}}),
        (("b",), 2, {"method_name": "fetch", "args": (1,), "kwargs": {"key": "v"}}),
    ]


def test_retry_on_mixes_classes_and_callables():
    fn = Flaky([ValueError(), LookupError("retry me"), LookupError("not me")])
    retry_on = [ValueError, lambda e, attempt, **ctx: e.args == ("retry me",)]
    with pytest.raises(LookupError, match="not me"):
        wrap(fn, num_retries=5, retry_on=retry_on)()
    assert len(fn.calls) == 3


def test_base_exceptions_that_are_not_errors_are_never_retried():
    fn = Flaky([KeyboardInterrupt()])
    with pytest.raises(KeyboardInterrupt):
        wrap(fn, num_retries=3, retry_on=[BaseException])()
    assert len(fn.calls) == 1


# -- result validation --------------------------------------------------------------------------------------------


def test_retry_until_retries_until_accepted():
    fn = Flaky(results=[{}, {"x": 1}, {"data": 1}])
    sleeps = Sleeps()

    def is_valid_json(result, **ctx):
        return isinstance(result, dict) and "data" in result

    assert wrap(fn, sleeps, num_retries=5, retry_until=is_valid_json, retry_jitter=0)() == {"data": 1}
    assert len(fn.calls) == 3
    assert sleeps == [1.0, 2.0]


def test_retry_until_exhaustion_carries_every_result():
    fn = Flaky(results=[1, 2, 3, 4])
    with pytest.raises(RetryValidationError) as info:
        wrap(fn, num_retries=3, retry_until=lambda result, **ctx: result > 10)()
    error = info.value
    assert error.results == [1, 2, 3, 4]
    assert error.attempts == 4
    assert error.method_name == "method"
    assert "all 4 attempts" in str(error)
    copy = pickle.loads(pickle.dumps(error))
    assert (type(copy), copy.results, copy.method_name, str(copy)) == (RetryValidationError, [1, 2, 3, 4], "method", str(error))


def test_retry_until_without_retries_still_validates_once():
    fn = Flaky(results=["bad"])
    with pytest.raises(RetryValidationError) as info:
        wrap(fn, retry_until=lambda r, **c: r == "good")()
    assert info.value.results == ["bad"]


def test_retry_until_list_needs_every_check_and_gets_context():
    seen = []

    def has_a(result, **ctx):
        seen.append(ctx)
        return "a" in result

    fn = Flaky(results=["a", "b", "ab"])
    call = retrying(fn, RetryConfig(num_retries=4, retry_until=[has_a, lambda r, **c: "b" in r]), "gen", sleep=Sleeps())
    assert call("p") == "ab"
    assert [ctx["attempt"] for ctx in seen] == [1, 2, 3]
    assert seen[0] == {"attempt": 1, "method_name": "gen", "args": ("p",), "kwargs": {}}


def test_results_record_failed_attempts_as_their_exception():
    boom = ConnectionError("boom")
    fn = Flaky([boom], results=["bad", "worse"])
    with pytest.raises(RetryValidationError) as info:
        wrap(fn, num_retries=2, retry_until=lambda r, **c: False)()
    assert info.value.results == [boom, "bad", "worse"]


# -- async ----------------------------------------------------------------------------------------------------------


def test_async_methods_retry_with_async_sleep():
    calls = []
    waits = []

    async def fetch(x):
        calls.append(x)
        if len(calls) < 3:
            raise ConnectionError("again")
        return x * 2

    async def fake_sleep(seconds):
        waits.append(seconds)

    def blocking_sleep(seconds):
        raise AssertionError("an async method must not block the event loop")

    call = retrying(fetch, RetryConfig(num_retries=3, retry_jitter=0, retry_wait=0.5), "fetch", is_async=True,
                    sleep=blocking_sleep, async_sleep=fake_sleep)
    assert inspect.iscoroutinefunction(call)
    assert call.__name__ == "fetch"
    assert asyncio.run(call(21)) == 42
    assert calls == [21, 21, 21]
    assert waits == [0.5, 1.0]


def test_a_sync_callable_returning_a_coroutine_is_retried_asynchronously():
    """TaskWorker.submit(async_fn) returns the coroutine of the function it was given."""
    attempts = []
    waits = []

    async def flaky_async(x):
        attempts.append(x)
        if len(attempts) < 2:
            raise TimeoutError("slow")
        return x + 1

    def submit(fn, *args):
        return fn(*args)

    async def fake_sleep(seconds):
        waits.append(seconds)

    call = retrying(submit, RetryConfig(num_retries=2, retry_on=[TimeoutError], retry_jitter=0), "submit",
                    async_sleep=fake_sleep, sleep=None)
    pending = call(flaky_async, 1)
    assert inspect.iscoroutine(pending)
    assert asyncio.run(pending) == 2
    assert attempts == [1, 1]
    assert waits == [1.0]


def test_async_retry_until_exhaustion():
    async def gen():
        return "nope"

    call = retrying(gen, RetryConfig(num_retries=2, retry_until=lambda r, **c: False), "gen", is_async=True,
                    async_sleep=lambda s: asyncio.sleep(0))
    with pytest.raises(RetryValidationError) as info:
        asyncio.run(call())
    assert info.value.results == ["nope"] * 3


def test_wrapper_keeps_the_callables_name_and_doc():
    def fetch_data(id):
        """Fetch one record."""
        return id

    call = wrap(fetch_data, num_retries=1)
    assert (call.__name__, call.__doc__) == ("fetch_data", "Fetch one record.")
