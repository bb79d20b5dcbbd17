"""Limits: definitions on a fake clock, release on failure, and joint enforcement across threads, processes and
Ray actors (counted from the intervals each holder reports while it holds)."""

from __future__ import annotations

import multiprocessing
import os
import pickle
import signal
import threading
import time
from fractions import Fraction

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import _limit_workers
from concurry.core.limits import CallLimit, LimitSet, RateLimit, ResourceLimit, as_limit_set
from concurry.core.limits.store import LocalStore

ALGORITHMS = ("token_bucket", "leaky_bucket", "sliding_window", "fixed_window", "gcra")
BUCKETS = ("token_bucket", "leaky_bucket", "gcra")


class FakeClock:
    def __init__(self, now: float = 0.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def admitted(limits, requested=None) -> bool:
    """One non-blocking attempt (timeout=0)."""
    try:
        with limits.acquire(requested, timeout=0):
            return True
    except TimeoutError:
        return False


def tries(limits, clock, at, count, requested=None) -> list[bool]:
    clock.now = at
    return [admitted(limits, requested) for _ in range(count)]


def peak_overlap(intervals) -> float:
    """The largest total amount held at one instant, from (enter, exit, amount) intervals; exits sort first."""
    events = sorted([(e, 1, a) for e, x, a in intervals] + [(x, 0, -a) for e, x, a in intervals])
    level = peak = 0
    for _, _, change in events:
        level += change
        peak = max(peak, level)
    return peak


def most_in_any_window(times, window) -> int:
    times = sorted(times)
    best = start = 0
    for end in range(len(times)):
        while times[end] - times[start] >= window:
            start += 1
        best = max(best, end - start + 1)
    return best


# -- definitions and validation ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("make", "words"),
    [
        (lambda: ResourceLimit("c", 0), ["ResourceLimit", "capacity=0", "> 0"]),
        (lambda: ResourceLimit("", 1), ["ResourceLimit", "key=''", "non-empty"]),
        (lambda: RateLimit("t", -1, 10), ["RateLimit", "window_seconds=-1"]),
        (lambda: RateLimit("t", 1, 10, algorithm="bucket"), ["algorithm='bucket'", "'token_bucket'", "'gcra'"]),
        (lambda: CallLimit(window_seconds=1, capacity=float("nan")), ["CallLimit", "capacity=nan"]),
        (lambda: LimitSet([ResourceLimit("c", 1), RateLimit("c", 1, 1)]), ["two limits with key 'c'"]),
        (lambda: LimitSet(["c"]), ["LimitSet got 'c'", "ResourceLimit, RateLimit and CallLimit"]),
        (lambda: as_limit_set({"c": 1}), ["limits={'c': 1}", "list of limits, a LimitSet or one limit"]),
    ],
)
def test_invalid_definitions_are_named(make, words):
    with pytest.raises(ValueError) as info:
        make()
    for word in words:
        assert word in str(info.value)


def test_defaults_and_the_limits_option_forms():
    assert RateLimit("t", 60, 1000).algorithm == "sliding_window"
    call = CallLimit(window_seconds=1, capacity=3)
    assert (call.key, call.algorithm) == ("call_count", "sliding_window")
    existing = LimitSet([ResourceLimit("c", 1)])
    assert as_limit_set(existing) is existing
    assert as_limit_set([ResourceLimit("c", 2)]).limits == (ResourceLimit("c", 2),)
    assert len(as_limit_set(None)) == 0


@pytest.mark.parametrize(
    ("requested", "words"),
    [
        ({"conections": 1}, ["'conections'", "does not have", "'connections'"]),
        ({"connections": 6}, ["6", "capacity 5", "never be admitted"]),
        ({"connections": -1}, ["-1", ">= 0"]),
    ],
)
def test_bad_requests_are_named(requested, words):
    limits = LimitSet([ResourceLimit("connections", 5)])
    with pytest.raises(ValueError) as info:
        limits.acquire(requested)
    for word in words:
        assert word in str(info.value)


def test_update_checks_its_keys_and_its_moment():
    limits = LimitSet([ResourceLimit("a", 1), RateLimit("b", 1, 10)])
    acquisition = limits.acquire({"a": 1})
    with pytest.raises(RuntimeError, match="inside"):
        acquisition.update({"a": 1})
    with acquisition:
        with pytest.raises(ValueError, match="'b', which this acquisition did not request"):
            acquisition.update({"b": 1})
        with pytest.raises(ValueError, match="finite number >= 0"):
            acquisition.update({"a": -2})
    with pytest.raises(RuntimeError, match="entered once"):
        acquisition.__enter__()


def test_the_empty_set_admits_everything():
    limits = LimitSet()
    for _ in range(1000):
        with limits.acquire(requested={"connections": 10**9, "anything": 1}) as acquisition:
            acquisition.update(usage={"connections": 3, "whatever": 1})
    assert limits.in_use() == {}
    assert pickle.loads(pickle.dumps(limits)).in_use() == {}


# -- resource limits and release --------------------------------------------------------------------------------


def test_resource_units_are_held_until_release():
    limits = LimitSet([ResourceLimit("gpu", 2)])
    with limits.acquire({"gpu": 1}):
        with limits.acquire({"gpu": 1}):
            assert limits.in_use() == {"gpu": 2}
            assert not admitted(limits, {"gpu": 1})
        assert limits.in_use() == {"gpu": 1}
    assert limits.in_use() == {"gpu": 0}


class Boom(Exception):
    pass


@pytest.mark.parametrize("update_first", [False, True])
def test_an_exception_inside_the_block_arrives_unchanged_and_releases_everything(update_first):
    limits = LimitSet([ResourceLimit("connections", 1), RateLimit("tokens", 60, 100), CallLimit(60, 10)])
    boom = Boom("query failed")
    with pytest.raises(Boom) as info:
        with limits.acquire({"connections": 1, "tokens": 40}) as acquisition:
            if update_first:
                acquisition.update({"connections": 1, "tokens": 5})
            raise boom
    assert info.value is boom
    assert info.value.__context__ is None
    held = limits.in_use()
    assert held["connections"] == 0
    # the attempt happened: the rate limits count it, as reported or as requested
    assert held["tokens"] == (5 if update_first else 40)
    assert held["call_count"] == 1
    assert admitted(limits, {"connections": 1})


def test_a_timed_out_acquire_holds_nothing():
    limits = LimitSet([ResourceLimit("a", 1), ResourceLimit("b", 1)])
    with limits.acquire({"b": 1}):
        started = time.monotonic()
        with pytest.raises(TimeoutError, match="not admitted within 0.05 s"):
            with limits.acquire({"a": 1, "b": 1}, timeout=0.05):
                pass  # pragma: no cover - never admitted
        assert time.monotonic() - started >= 0.05
        assert limits.in_use() == {"a": 0, "b": 1}


def test_a_multi_key_request_never_holds_part_of_itself_while_waiting():
    limits = LimitSet([ResourceLimit("a", 1), ResourceLimit("b", 1)])
    got_both = threading.Event()

    def wants_both():
        with limits.acquire({"a": 1, "b": 1}):
            got_both.set()

    with limits.acquire({"b": 1}):
        waiter = threading.Thread(target=wants_both)
        waiter.start()
        time.sleep(0.05)
        assert not got_both.is_set()
        assert limits.in_use()["a"] == 0
        assert admitted(limits, {"a": 1})  # the waiter is not sitting on "a"
    waiter.join(10)
    assert got_both.is_set()
    assert limits.in_use() == {"a": 0, "b": 0}


def test_waiting_wakes_on_release():
    limits = LimitSet([ResourceLimit("c", 1)])
    order = []

    def waiter():
        with limits.acquire({"c": 1}):
            order.append("waiter")

    with limits.acquire({"c": 1}):
        thread = threading.Thread(target=waiter)
        thread.start()
        time.sleep(0.05)
        order.append("release")
    thread.join(10)
    assert order == ["release", "waiter"]
    assert limits.in_use() == {"c": 0}


# -- rate limits: each algorithm admits what its definition says (fake clock) -----------------------------------


@pytest.mark.parametrize("algorithm", BUCKETS)
def test_buckets_burst_to_capacity_then_admit_at_the_steady_rate(algorithm):
    clock = FakeClock()
    limits = LimitSet([RateLimit("r", window_seconds=1, capacity=3, algorithm=algorithm)], clock=clock)
    assert tries(limits, clock, 0.0, 4, {"r": 1}) == [True, True, True, False]
    assert tries(limits, clock, 0.33, 1, {"r": 1}) == [False]
    assert tries(limits, clock, 1 / 3, 2, {"r": 1}) == [True, False]
    assert tries(limits, clock, 2 / 3, 2, {"r": 1}) == [True, False]
    assert tries(limits, clock, 10.0, 4, {"r": 1}) == [True, True, True, False]  # refilled to capacity, no more
    # and again, long after: a leaky bucket keeps leaking
    assert tries(limits, clock, 100.0, 4, {"r": 1}) == [True, True, True, False]


def test_sliding_window_counts_the_last_window_seconds():
    clock = FakeClock()
    limits = LimitSet([RateLimit("r", window_seconds=1, capacity=3, algorithm="sliding_window")], clock=clock)
    assert tries(limits, clock, 0.0, 1, {"r": 1}) == [True]
    assert tries(limits, clock, 0.5, 3, {"r": 1}) == [True, True, False]
    assert tries(limits, clock, 0.999, 1, {"r": 1}) == [False]
    assert tries(limits, clock, 1.0, 2, {"r": 1}) == [True, False]  # the admission at 0 left the window
    assert tries(limits, clock, 1.499, 1, {"r": 1}) == [False]
    assert tries(limits, clock, 1.5, 3, {"r": 1}) == [True, True, False]


def test_fixed_window_restarts_at_each_boundary():
    clock = FakeClock()
    limits = LimitSet([RateLimit("r", window_seconds=1, capacity=3, algorithm="fixed_window")], clock=clock)
    assert tries(limits, clock, 0.9, 4, {"r": 1}) == [True, True, True, False]
    assert tries(limits, clock, 1.0, 4, {"r": 1}) == [True, True, True, False]  # six within 0.1 s: by definition
    assert tries(limits, clock, 1.999, 1, {"r": 1}) == [False]
    assert tries(limits, clock, 2.0, 1, {"r": 1}) == [True]


@pytest.mark.parametrize(
    ("algorithm", "at", "expected_wait"),
    [
        ("token_bucket", 0.0, 1 / 3),
        ("leaky_bucket", 0.0, 1 / 3),
        ("gcra", 0.0, 1 / 3),
        ("sliding_window", 0.25, 1.0),
        ("fixed_window", 0.25, 0.75),
    ],
)
def test_the_wait_hint_is_exactly_when_the_next_unit_is_admitted(algorithm, at, expected_wait):
    clock = FakeClock()
    store = LocalStore([RateLimit("r", 1, 3, algorithm)], clock)
    clock.now = at
    for _ in range(3):
        assert store.try_acquire({"r": 1})[0] is not None
    ticket, wait = store.try_acquire({"r": 1})
    assert ticket is None and wait == pytest.approx(expected_wait)
    clock.now = at + wait - 1e-6
    assert store.try_acquire({"r": 1})[0] is None
    clock.now = at + wait
    assert store.try_acquire({"r": 1})[0] is not None


def envelope_admits(history, at, amount, capacity, rate):
    """Token bucket by its envelope definition: over every interval [s, at], what was admitted plus ``amount``
    fits in ``capacity + rate·(at − s)``."""
    starts = [s for s, _ in history] + [at]
    return all(
        amount + sum(n for t, n in history if s <= t <= at) <= capacity + rate * (at - s) for s in starts
    )


def window_admits(history, at, amount, capacity, window):
    return amount + sum(n for t, n in history if at - window < t <= at) <= capacity


def fixed_admits(history, at, amount, capacity, window):
    return amount + sum(n for t, n in history if t // window == at // window) <= capacity


step = st.tuples(st.integers(0, 8).map(lambda k: Fraction(k, 8)), st.integers(1, 5))


@settings(max_examples=80, deadline=None)
@given(capacity=st.integers(1, 5), window=st.sampled_from([1, 2, 4]), steps=st.lists(step, min_size=1, max_size=40))
def test_every_algorithm_matches_its_reference_definition(capacity, window, steps):
    """Exact rational times and reference models written from the definitions, compared request by request."""
    references = {
        "token_bucket": lambda h, t, n: envelope_admits(h, t, n, capacity, Fraction(capacity, window)),
        "sliding_window": lambda h, t, n: window_admits(h, t, n, capacity, window),
        "fixed_window": lambda h, t, n: fixed_admits(h, t, n, capacity, window),
    }
    references["leaky_bucket"] = references["gcra"] = references["token_bucket"]
    for algorithm in ALGORITHMS:
        clock = FakeClock()
        limits = LimitSet([RateLimit("r", window, capacity, algorithm)], clock=clock)
        history: list[tuple[Fraction, int]] = []
        now = Fraction(0)
        for dt, amount in steps:
            now += dt
            amount = min(amount, capacity)
            expected = references[algorithm](history, now, amount)
            clock.now = float(now)
            assert admitted(limits, {"r": amount}) == expected, (algorithm, now, amount, history)
            if expected:
                history.append((now, amount))


@pytest.mark.parametrize("algorithm", ALGORITHMS)
def test_reported_usage_replaces_the_request(algorithm):
    clock = FakeClock()
    limits = LimitSet([RateLimit("tokens", window_seconds=10, capacity=10, algorithm=algorithm)], clock=clock)
    with limits.acquire({"tokens": 8}) as acquisition:
        acquisition.update(usage={"tokens": 2})
    assert limits.in_use()["tokens"] == pytest.approx(2)
    assert admitted(limits, {"tokens": 8})
    assert not admitted(limits, {"tokens": 1})


@pytest.mark.parametrize("algorithm", ALGORITHMS)
def test_usage_above_the_request_is_charged(algorithm):
    clock = FakeClock()
    limits = LimitSet([RateLimit("tokens", window_seconds=10, capacity=10, algorithm=algorithm)], clock=clock)
    with limits.acquire({"tokens": 2}) as acquisition:
        acquisition.update(usage={"tokens": 9})
    assert not admitted(limits, {"tokens": 2})
    assert admitted(limits, {"tokens": 1})


def test_call_limits_count_every_acquire():
    clock = FakeClock()
    limits = LimitSet([CallLimit(window_seconds=1, capacity=3), ResourceLimit("c", 10)], clock=clock)
    assert tries(limits, clock, 0.0, 2) == [True, True]
    assert admitted(limits, {"c": 1})
    assert not admitted(limits)
    assert limits.in_use()["call_count"] == 3
    clock.now = 1.0
    assert admitted(limits, {"call_count": 3})  # a batch can count as several calls
    assert not admitted(limits)


@pytest.mark.parametrize("algorithm", ALGORITHMS)
def test_rate_admissions_under_thread_contention_are_exact(algorithm):
    """Many threads at once on a fake clock: each moment admits exactly what one thread alone would."""
    times = [0.0, 0.1, 0.5, 1.0, 1.05, 3.0]
    clock = FakeClock()
    limits = LimitSet([RateLimit("r", 1, 5, algorithm), ResourceLimit("slots", 3)], clock=clock)
    expected_clock = FakeClock()
    alone = LimitSet([RateLimit("r", 1, 5, algorithm), ResourceLimit("slots", 3)], clock=expected_clock)
    for at in times:
        expected = sum(tries(alone, expected_clock, at, 48, {"r": 1}))
        clock.now = at
        start = threading.Barrier(16)
        wins = []

        def hammer():
            start.wait()
            wins.extend(admitted(limits, {"r": 1}) for _ in range(3))

        threads = [threading.Thread(target=hammer) for _ in range(16)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        assert sum(wins) == expected
        if at == 0.0:
            assert expected == 5


# -- heavy concurrency: threads --------------------------------------------------------------------------------------


class Tracker:
    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.level: dict[str, float] = {}
        self.peak: dict[str, float] = {}

    def change(self, requested, sign) -> None:
        with self.lock:
            for key, amount in requested.items():
                self.level[key] = self.level.get(key, 0) + sign * amount
                self.peak[key] = max(self.peak.get(key, 0), self.level[key])


hold = st.tuples(st.integers(1, 4), st.booleans(), st.booleans(), st.sampled_from([0, 0, 0.0005]))


@settings(max_examples=30, deadline=None)
@given(capacity=st.integers(1, 4), plan=st.lists(st.lists(hold, min_size=1, max_size=10), min_size=2, max_size=10))
def test_threads_never_exceed_capacity(capacity, plan):
    limits = LimitSet([ResourceLimit("slots", capacity), ResourceLimit("gpu", 2), CallLimit(60, 10**6)])
    tracker = Tracker()
    start = threading.Barrier(len(plan))

    def run(steps):
        start.wait()
        for amount, fail, gpu, pause in steps:
            requested = {"slots": min(amount, capacity), **({"gpu": 1} if gpu else {})}
            try:
                with limits.acquire(requested) as acquisition:
                    tracker.change(requested, +1)
                    time.sleep(pause)
                    tracker.change(requested, -1)
                    if fail:
                        raise Boom()
                    acquisition.update({"slots": 1})
            except Boom:
                pass

    threads = [threading.Thread(target=run, args=(steps,)) for steps in plan]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert tracker.peak["slots"] <= capacity
    assert tracker.peak.get("gpu", 0) <= 2
    assert limits.in_use() == {"slots": 0, "gpu": 0, "call_count": sum(len(steps) for steps in plan)}


def test_calls_per_window_hold_in_real_time_within_a_tolerance():
    """8 threads for about a second against 4 calls per 0.25 s. Times are taken just after admission, so a time
    can be late by scheduling delay; counting windows 0.05 s shorter than the limit's absorbs that."""
    window, capacity, tolerance = 0.25, 4, 0.05
    limits = LimitSet([CallLimit(window_seconds=window, capacity=capacity)])
    stamps: list[float] = []
    lock = threading.Lock()
    stop_at = time.monotonic() + 1.0

    def run():
        while time.monotonic() < stop_at:
            with limits.acquire():
                with lock:
                    stamps.append(time.monotonic())

    threads = [threading.Thread(target=run) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(stamps) >= capacity
    assert most_in_any_window(stamps, window - tolerance) <= capacity


async def _async_holders(limits, count, tracker):
    import asyncio

    async def one():
        async with limits.acquire({"c": 1}):
            tracker.change({"c": 1}, +1)
            await asyncio.sleep(0.002)
            tracker.change({"c": 1}, -1)

    await asyncio.gather(*(one() for _ in range(count)))


def test_async_with_waits_without_blocking_the_loop():
    import asyncio

    limits = LimitSet([ResourceLimit("c", 2)])
    tracker = Tracker()
    asyncio.run(_async_holders(limits, 20, tracker))
    assert tracker.peak["c"] == 2
    assert limits.in_use() == {"c": 0}


def test_copies_are_the_same_set_and_unpickling_in_the_home_process_rejoins_it():
    import copy

    limits = LimitSet([ResourceLimit("c", 1)])
    assert copy.copy(limits) is limits and copy.deepcopy(limits) is limits
    twin = pickle.loads(pickle.dumps(limits))
    with limits.acquire({"c": 1}):
        assert twin.in_use() == {"c": 1}
        assert not admitted(twin, {"c": 1})


# -- across processes ------------------------------------------------------------------------------------------------


def _run_children(limits, context, count, requested, rounds, hold_seconds):
    results = context.Queue()
    children = [
        context.Process(target=_limit_workers.hold_many, args=(limits, requested, rounds, hold_seconds, results))
        for _ in range(count)
    ]
    for child in children:
        child.start()
    reports = [results.get(timeout=120) for _ in children]
    for child in children:
        child.join(30)
        assert child.exitcode == 0
    return [interval for _, intervals in reports for interval in intervals]


@pytest.mark.parametrize("method", ["fork", "spawn"])
def test_processes_share_one_resource_limit(method):
    limits = LimitSet([ResourceLimit("slots", 2)]).share("process")
    intervals = _run_children(limits, multiprocessing.get_context(method), 4, {"slots": 1}, 25, 0.002)
    assert len(intervals) == 100
    assert peak_overlap([(e, x, 1) for e, x in intervals]) <= 2
    assert limits.in_use() == {"slots": 0}


@settings(max_examples=6, deadline=None)
@given(
    capacity=st.integers(1, 3),
    amounts=st.lists(st.integers(1, 3), min_size=2, max_size=4),
    rounds=st.integers(1, 8),
    method=st.sampled_from(["fork", "spawn"]),
)
def test_processes_with_generated_schedules_never_exceed_capacity(capacity, amounts, rounds, method):
    limits = LimitSet([ResourceLimit("slots", capacity)]).share("process")
    context = multiprocessing.get_context(method)
    results = context.Queue()
    children = [
        context.Process(
            target=_limit_workers.hold_many,
            args=(limits, {"slots": min(amount, capacity)}, rounds, 0.001, results),
        )
        for amount in amounts
    ]
    for child in children:
        child.start()
    reports = dict(results.get(timeout=120) for _ in children)
    for child in children:
        child.join(30)
    weighted = [
        (entered, left, min(amount, capacity))
        for child, amount in zip(children, amounts)
        for entered, left in reports[child.pid]
    ]
    assert len(weighted) == rounds * len(amounts)
    assert peak_overlap(weighted) <= capacity
    assert limits.in_use() == {"slots": 0}


def test_a_set_pickled_without_share_is_served_and_a_forked_unshared_copy_refuses():
    pickled = LimitSet([ResourceLimit("slots", 1)])
    intervals = _run_children(pickled, multiprocessing.get_context("spawn"), 2, {"slots": 1}, 10, 0.002)
    assert peak_overlap([(e, x, 1) for e, x in intervals]) <= 1

    unshared = LimitSet([ResourceLimit("slots", 1)])
    read, write = multiprocessing.Pipe(duplex=False)
    pid = os.fork()
    if pid == 0:  # pragma: no cover - runs in the child
        try:
            unshared.in_use()
        except RuntimeError as error:
            write.send(str(error))
        else:
            write.send("no error")
        os._exit(0)
    os.waitpid(pid, 0)
    assert "without being shared" in read.recv()


def test_a_failing_child_releases_and_its_error_is_its_own():
    limits = LimitSet([ResourceLimit("slots", 1), RateLimit("tokens", 60, 100)]).share("process")
    results = multiprocessing.get_context("spawn").Queue()
    child = multiprocessing.get_context("spawn").Process(
        target=_limit_workers.fail_inside, args=(limits, {"slots": 1, "tokens": 30}, results)
    )
    child.start()
    assert results.get(timeout=120) == ("ValueError", "raised inside the block", {"slots": 0.0, "tokens": 0.0})
    child.join(30)


def test_a_killed_child_gives_back_what_it_held():
    limits = LimitSet([ResourceLimit("slots", 1)]).share("process")
    context = multiprocessing.get_context("fork")
    ready = context.Event()
    child = context.Process(target=_limit_workers.hold_forever, args=(limits, {"slots": 1}, ready))
    child.start()
    assert ready.wait(60)
    assert limits.in_use() == {"slots": 1}
    os.kill(child.pid, signal.SIGKILL)
    child.join(30)
    with limits.acquire({"slots": 1}, timeout=30):
        assert limits.in_use() == {"slots": 1}
    assert limits.in_use() == {"slots": 0}


def test_threads_and_processes_share_one_call_limit_within_a_tolerance():
    window, capacity, tolerance = 0.3, 5, 0.05
    limits = LimitSet([CallLimit(window_seconds=window, capacity=capacity), ResourceLimit("slots", 3)])
    limits.share("process")
    stamps: list[float] = []

    def local(rounds):
        for _ in range(rounds):
            with limits.acquire({"slots": 1}):
                stamps.append(time.monotonic())

    thread = threading.Thread(target=local, args=(6,))
    thread.start()
    intervals = _run_children(limits, multiprocessing.get_context("fork"), 2, {"slots": 1}, 6, 0)
    thread.join()
    stamps.extend(entered for entered, _ in intervals)
    assert len(stamps) == 18
    assert most_in_any_window(stamps, window - tolerance) <= capacity


# -- across Ray actors -----------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def ray_session():
    ray = pytest.importorskip("ray")
    started = not ray.is_initialized()
    if started:
        ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    yield ray
    if started:
        ray.shutdown()


def _holder_class(ray):
    @ray.remote(num_cpus=0)
    class Holder:
        def __init__(self, limits):
            self.limits = limits

        def run(self, requested, rounds, hold_seconds):
            intervals = []
            for _ in range(rounds):
                with self.limits.acquire(requested):
                    entered = time.monotonic()
                    time.sleep(hold_seconds)
                    intervals.append((entered, time.monotonic()))
            return intervals

        def store_kind(self):
            return type(self.limits._store()).__name__

    return Holder


def test_ray_actors_share_one_limit_set(ray_session):
    ray = ray_session
    limits = LimitSet([ResourceLimit("slots", 2)]).share("ray")
    holders = [_holder_class(ray).remote(limits) for _ in range(4)]
    assert ray.get(holders[0].store_kind.remote()) == "RayStore"
    reports = ray.get([holder.run.remote({"slots": 1}, 15, 0.003) for holder in holders], timeout=300)
    intervals = [interval for report in reports for interval in report]
    assert len(intervals) == 60
    assert peak_overlap([(e, x, 1) for e, x in intervals]) <= 2
    assert limits.in_use() == {"slots": 0}


def test_moving_to_ray_keeps_what_is_held_and_counted(ray_session):
    limits = LimitSet([ResourceLimit("slots", 1), RateLimit("calls", window_seconds=30, capacity=2)])
    with limits.acquire({"slots": 1, "calls": 1}):
        limits.share("ray")
        assert type(limits._store()).__name__ == "RayStore"
        assert limits.in_use() == {"slots": 1, "calls": 1}
        assert not admitted(limits, {"slots": 1})
    assert limits.in_use() == {"slots": 0, "calls": 1}
    assert admitted(limits, {"calls": 1})
    assert not admitted(limits, {"calls": 1})


def test_threads_processes_and_ray_actors_share_one_limit_set(ray_session):
    """The same set used at once by driver threads, forked and spawned processes (through the driver's server,
    which forwards to the Ray actor) and Ray actors."""
    ray = ray_session
    window, capacity, slots, tolerance = 0.4, 8, 3, 0.05
    limits = LimitSet([ResourceLimit("slots", slots), CallLimit(window_seconds=window, capacity=capacity)])
    limits.share("process").share("ray")
    holders = [_holder_class(ray).remote(limits) for _ in range(2)]
    ray.get([holder.store_kind.remote() for holder in holders])
    pending = [holder.run.remote({"slots": 1}, 8, 0.002) for holder in holders]
    local: list[tuple[float, float]] = []

    def in_thread():
        for _ in range(8):
            with limits.acquire({"slots": 1}):
                entered = time.monotonic()
                time.sleep(0.002)
                local.append((entered, time.monotonic()))

    threads = [threading.Thread(target=in_thread) for _ in range(2)]
    for thread in threads:
        thread.start()
    intervals = _run_children(limits, multiprocessing.get_context("fork"), 1, {"slots": 1}, 8, 0.002)
    intervals += _run_children(limits, multiprocessing.get_context("spawn"), 1, {"slots": 1}, 8, 0.002)
    for thread in threads:
        thread.join()
    intervals += local + [interval for report in ray.get(pending, timeout=300) for interval in report]
    assert len(intervals) == 48
    assert peak_overlap([(e, x, 1) for e, x in intervals]) <= slots
    assert most_in_any_window([e for e, _ in intervals], window - tolerance) <= capacity
    assert limits.in_use()["slots"] == 0
