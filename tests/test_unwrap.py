"""Guide section "Automatic Future Unwrapping", and what it implies: a pending future never blocks the caller.

Non-blocking is shown structurally: the source call is held by an ``Event``, and the caller gets every
downstream future back (none done) while it is still held.
"""

from __future__ import annotations

import copy
import itertools
import pickle
import threading
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from concurry import CancelledError, ConcurrentFuture, SyncFuture, Worker
from concurry.core.future import BaseFuture, FailedSyncFuture
from concurry.core.unwrap import DeferredCall

pytestmark = [pytest.mark.usefixtures("stop_workers"), pytest.mark.timeout(90)]

MODES = ["sync", "thread", "asyncio", "process"]
PAIRS = list(itertools.product(MODES, MODES))


class DataSource(Worker):
    def __init__(self, value: int):
        self.value = value

    def get_data(self) -> int:
        return self.value * 10


class DataProcessor(Worker):
    def __init__(self) -> None:
        pass

    def process(self, data: int) -> int:
        return data + 100


class MathWorker(Worker):
    def __init__(self, base: int):
        self.base = base

    def add(self, x: int) -> int:
        return self.base + x

    def multiply(self, x: int) -> int:
        return self.base * x


class Aggregator(Worker):
    def __init__(self) -> None:
        pass

    def sum_list(self, numbers: list) -> int:  # type: ignore[type-arg]
        return sum(numbers)

    def sum_nested(self, data: dict) -> int:  # type: ignore[type-arg]
        """Sum all integers in a nested structure."""
        total = 0
        for value in data.values():
            if isinstance(value, int):
                total += value
            elif isinstance(value, list):
                total += sum(value)
            elif isinstance(value, dict):
                total += self.sum_nested(value)
        return total


class FutureInspector(Worker):
    def __init__(self) -> None:
        pass

    def is_future(self, obj: Any) -> bool:
        return isinstance(obj, BaseFuture)

    def get_future_id(self, obj: Any) -> str:
        if isinstance(obj, BaseFuture):
            return obj.uuid
        return "not a future"


class FailingWorker(Worker):
    def __init__(self) -> None:
        pass

    def may_fail(self, value: int) -> int:
        if value < 0:
            raise ValueError("Value must be positive")
        return value * 2


class Held(Worker):
    """Returns its argument once the event is set: a source call the test controls."""

    def __init__(self, event: threading.Event):
        self.event = event

    def get(self, value: Any) -> Any:
        assert self.event.wait(60)
        return value

    def fail(self, message: str) -> int:
        assert self.event.wait(60)
        raise ValueError(message)


class Step(Worker):
    def __init__(self) -> None:
        self.seen: list[Any] = []

    def inc(self, x: int) -> int:
        return x + 1

    def record(self, x: Any) -> Any:
        self.seen.append(x)
        return x

    def echo(self, *args: Any, **kwargs: Any) -> Any:
        return args, kwargs

    def seen_values(self) -> list[Any]:
        return self.seen


@pytest.fixture
def gate() -> Any:
    event = threading.Event()
    yield event
    event.set()  # never leave a held call behind


# -- the guide's examples ------------------------------------------------------------------------------------------


@pytest.mark.parametrize(("source_mode", "processor_mode"), PAIRS)
def test_basic_future_unwrapping_as_written(source_mode: str, processor_mode: str) -> None:
    source = DataSource.options(mode=source_mode).init(5)
    processor = DataProcessor.options(mode=processor_mode).init()
    future_data = source.get_data()  # Future -> 50
    result = processor.process(future_data).result()
    assert result == 150
    source.stop()
    processor.stop()


@pytest.mark.parametrize("mode", MODES)
def test_nested_structure_unwrapping_as_written(mode: str) -> None:
    math_worker = MathWorker.options(mode=mode).init(10)
    aggregator = Aggregator.options(mode=mode).init()
    f1 = math_worker.add(5)
    f2 = math_worker.add(10)
    f3 = math_worker.add(15)
    assert aggregator.sum_list([f1, f2, f3]).result() == 60
    nested_data = {"values": [f1, f2], "extra": {"bonus": f3}, "constant": 100}
    assert aggregator.sum_nested(nested_data).result() == 160
    math_worker.stop()
    aggregator.stop()


@pytest.mark.parametrize("mode", MODES)
def test_supported_collections_keep_their_types(mode: str) -> None:
    math_worker = MathWorker.options(mode="thread").init(10)
    step = Step.options(mode=mode).init()
    f1, f2 = math_worker.add(1), math_worker.add(2)
    args, kwargs = step.echo([f1, f2], (f1, f2), {"key": f1}, {f1, f2}, frozenset([f1, f2]), k=[(f2,)]).result()
    assert args == ([11, 12], (11, 12), {"key": 11}, {11, 12}, frozenset([11, 12]))
    assert [type(a) for a in args] == [list, tuple, dict, set, frozenset]
    assert kwargs == {"k": [(12,)]}
    math_worker.stop()
    step.stop()


@pytest.mark.parametrize(("producer_mode", "consumer_mode"), [("thread", "process"), ("process", "thread")])
def test_cross_worker_communication_as_written(producer_mode: str, consumer_mode: str) -> None:
    producer = DataSource.options(mode=producer_mode).init(100)
    consumer = DataProcessor.options(mode=consumer_mode).init()
    future = producer.get_data()
    assert consumer.process(future).result() == 1100
    producer.stop()
    consumer.stop()


@pytest.mark.parametrize("mode", ["sync", "thread", "asyncio"])
def test_disabling_future_unwrapping_as_written(mode: str) -> None:
    inspector = FutureInspector.options(mode=mode, unwrap_futures=False).init()
    producer = DataSource.options(mode="thread").init(42)
    future = producer.get_data()
    assert inspector.is_future(future).result() is True
    assert inspector.get_future_id(future).result() == future.uuid
    inspector.stop()
    producer.stop()


def test_a_sync_future_passed_through_to_a_process_arrives_whole() -> None:
    """With unwrapping off, a finished sync-mode future is pickled to the child as it is: result, error and uuid."""
    inspector = FutureInspector.options(mode="process", unwrap_futures=False).init()
    source = DataSource.options(mode="sync").init(7)
    future = source.get_data()
    assert isinstance(future, SyncFuture)
    assert inspector.is_future(future).result(timeout=30) is True
    assert inspector.get_future_id(future).result(timeout=30) == future.uuid
    copied = pickle.loads(pickle.dumps(future))
    assert (type(copied), copied.result(), copied.uuid, copied.done()) == (SyncFuture, 70, future.uuid, True)
    original_failure = SyncFuture.of_exception(KeyError("gone"))
    failed = pickle.loads(pickle.dumps(original_failure))
    assert (type(failed), failed.uuid, failed.done()) == (FailedSyncFuture, original_failure.uuid, True)
    with pytest.raises(KeyError, match="gone"):
        failed.result()
    assert copy.copy(future).result() == 70
    inspector.stop()
    source.stop()


def test_unwrap_futures_false_passes_a_pending_future_at_once(gate: threading.Event) -> None:
    inspector = FutureInspector.options(mode="thread", unwrap_futures=False).init()
    held = Held.options(mode="thread").init(gate)
    pending = held.get(1)
    assert inspector.is_future(pending).result(timeout=30) is True  # answered while the source is still held
    assert not pending.done()
    gate.set()
    inspector.stop()
    held.stop()


@pytest.mark.parametrize("mode", MODES)
def test_mixing_futures_and_regular_values_as_written(mode: str) -> None:
    aggregator = Aggregator.options(mode=mode).init()
    math_worker = MathWorker.options(mode=mode).init(10)
    f1 = math_worker.add(5)
    assert aggregator.sum_list([f1, 20, 30, 40]).result() == 105
    aggregator.stop()
    math_worker.stop()


@pytest.mark.parametrize(("producer_mode", "consumer_mode"), PAIRS)
def test_exception_handling_as_written(producer_mode: str, consumer_mode: str) -> None:
    producer = FailingWorker.options(mode=producer_mode).init()
    consumer = DataProcessor.options(mode=consumer_mode).init()
    failing_future = producer.may_fail(-5)
    with pytest.raises(ValueError, match="^Value must be positive$"):
        consumer.process(failing_future).result()
    producer.stop()
    consumer.stop()


# -- never blocking the caller ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("chain", [[mode] * 3 for mode in MODES] + [["thread", "process", "asyncio"],
                                                                    ["process", "sync", "thread"]])
def test_a_chain_fed_a_pending_future_returns_at_once(chain: list[str], gate: threading.Event) -> None:
    source = Held.options(mode="thread").init(gate)
    steps = [Step.options(mode=mode).init() for mode in chain]
    pending = source.get(1)
    futures = []
    value: Any = pending
    for step in steps:
        value = step.inc(value)
        futures.append(value)
    assert not pending.done()  # the caller got every future back while the source call is held
    assert all(isinstance(f, DeferredCall) and not f.done() for f in futures)
    gate.set()
    assert [f.result(timeout=30) for f in futures] == [2, 3, 4]
    source.stop()
    for step in steps:
        step.stop()


@pytest.mark.parametrize("mode", MODES)
def test_a_pending_future_deep_in_containers_defers_the_call(mode: str, gate: threading.Event) -> None:
    source = Held.options(mode="thread").init(gate)
    step = Step.options(mode=mode).init()
    pending = source.get(7)
    call = step.echo({"a": [(1, {"b": pending})]}, k=frozenset([pending, 8]))
    assert not call.done()
    gate.set()
    assert call.result(timeout=30) == (({"a": [(1, {"b": 7})]},), {"k": frozenset([7, 8])})
    source.stop()
    step.stop()


@pytest.mark.parametrize("mode", MODES)
def test_a_failure_propagates_down_a_chain(mode: str, gate: threading.Event) -> None:
    source = Held.options(mode="thread").init(gate)
    steps = [Step.options(mode=mode).init() for _ in range(3)]
    value: Any = source.fail("broken source")
    futures = []
    for step in steps:
        value = step.inc(value)
        futures.append(value)
    gate.set()
    for future in futures:
        with pytest.raises(ValueError, match="^broken source$"):
            future.result(timeout=30)
    source.stop()
    for step in steps:
        step.stop()


@pytest.mark.parametrize("mode", MODES)
def test_blocking_mode_waits_for_a_pending_argument(mode: str, gate: threading.Event) -> None:
    source = Held.options(mode="thread").init(gate)
    step = Step.options(mode=mode, blocking=True).init()
    pending = source.get(41)
    threading.Timer(0.05, gate.set).start()
    assert step.inc(pending) == 42
    source.stop()
    step.stop()


def test_done_futures_are_forwarded_at_once() -> None:
    step = Step.options(mode="thread").init()
    done = ConcurrentFuture()
    done.set_result(3)
    call = step.inc(done)
    assert not isinstance(call, DeferredCall)
    assert call.result(timeout=30) == 4
    assert not isinstance(step.inc(SyncFuture.of_result(5)), DeferredCall)
    step.stop()


@pytest.mark.parametrize("mode", MODES)
def test_cancelling_a_deferred_call_prevents_it(mode: str, gate: threading.Event) -> None:
    source = Held.options(mode="thread").init(gate)
    step = Step.options(mode=mode).init()
    call = step.record(source.get("late"))
    assert call.cancel() and call.cancelled()
    gate.set()
    assert step.record("after").result(timeout=30) == "after"
    assert source.get("flush").result(timeout=30) == "flush"  # the held argument has completed by now
    assert step.seen_values().result(timeout=30) == ["after"]
    with pytest.raises(CancelledError):
        call.result()
    source.stop()
    step.stop()


def test_cancel_racing_the_forwarding_either_prevents_the_call_or_lets_it_run_once() -> None:
    step = Step.options(mode="thread").init()
    outcomes = []
    for i in range(300):
        argument: ConcurrentFuture[int] = ConcurrentFuture()
        call = step.record(argument)
        completer = threading.Thread(target=argument.set_result, args=(i,))
        completer.start()
        cancelled = call.cancel()
        completer.join()
        outcomes.append((i, cancelled, call))
    seen = step.seen_values().result(timeout=30)
    assert len(seen) == len(set(seen))
    for i, cancelled, call in outcomes:
        if cancelled:
            assert call.cancelled() and i not in seen
        else:
            assert call.result(timeout=30) == i and i in seen
    step.stop()


def test_a_cancelled_argument_fails_the_call(gate: threading.Event) -> None:
    source = Held.options(mode="thread").init(gate)
    step = Step.options(mode="thread").init()
    source.get(0)  # keeps the worker busy, so the next call stays queued
    queued = source.get(1)
    call = step.inc(queued)
    assert queued.cancel()
    with pytest.raises(CancelledError):
        call.result(timeout=30)
    gate.set()
    source.stop()
    step.stop()


def test_ordering_a_deferred_call_is_overtaken_by_later_ready_calls(gate: threading.Event) -> None:
    """Documented ordering: ready calls keep their order; a deferred call joins when its arguments complete."""
    source = Held.options(mode="thread").init(gate)
    step = Step.options(mode="thread").init()
    step.record("first")
    deferred = step.record(source.get("deferred"))
    step.record("third")
    assert step.seen_values().result(timeout=30) == ["first", "third"]
    gate.set()
    deferred.result(timeout=30)
    assert step.seen_values().result(timeout=30) == ["first", "third", "deferred"]
    source.stop()
    step.stop()


# -- property: nested structures round-trip -------------------------------------------------------------------------


class _Fut:
    """A placeholder in a generated structure: becomes a future of ``value``, done or pending."""

    def __init__(self, value: int, pending: bool):
        self.value = value
        self.pending = pending

    def __repr__(self) -> str:
        return f"_Fut({self.value}, pending={self.pending})"


_scalars = st.one_of(st.integers(), st.text(max_size=3), st.none(), st.booleans(), st.floats(allow_nan=False))
_hashable = st.recursive(
    st.one_of(st.integers(), st.builds(_Fut, st.integers(), st.booleans())),
    lambda inner: st.tuples(inner, inner),
    max_leaves=4,
)
_values = st.recursive(
    st.one_of(_scalars, st.builds(_Fut, st.integers(), st.booleans())),
    lambda inner: st.one_of(
        st.lists(inner, max_size=4),
        st.lists(inner, max_size=4).map(tuple),
        st.dictionaries(st.text(max_size=3), inner, max_size=4),
        st.sets(_hashable, max_size=4),
        st.frozensets(_hashable, max_size=4),
    ),
    max_leaves=20,
)


def _build(value: Any, pending: list[tuple[ConcurrentFuture[Any], int]]) -> tuple[Any, Any]:
    """(structure with futures, the structure the worker should receive)."""
    if isinstance(value, _Fut):
        if value.pending:
            future: Any = ConcurrentFuture()
            pending.append((future, value.value))
        else:
            future = SyncFuture.of_result(value.value)
        return future, value.value
    if isinstance(value, dict):
        built = {k: _build(v, pending) for k, v in value.items()}
        return {k: b[0] for k, b in built.items()}, {k: b[1] for k, b in built.items()}
    if isinstance(value, (list, tuple, set, frozenset)):
        items = [_build(v, pending) for v in value]
        return type(value)(i[0] for i in items), type(value)(i[1] for i in items)
    return value, value


def _assert_same(received: Any, expected: Any) -> None:
    assert type(received) is type(expected), (received, expected)
    if isinstance(expected, dict):
        assert received.keys() == expected.keys()
        for key in expected:
            _assert_same(received[key], expected[key])
    elif isinstance(expected, (list, tuple)):
        assert len(received) == len(expected)
        for r, e in zip(received, expected):
            _assert_same(r, e)
    else:
        assert received == expected


@pytest.fixture(scope="module")
def echo_workers() -> Any:
    workers = {mode: Step.options(mode=mode).init() for mode in MODES}
    yield workers
    for worker in workers.values():
        worker.stop()


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(structure=st.lists(_values, max_size=4), mode=st.sampled_from(MODES))
def test_nested_structures_of_futures_round_trip(echo_workers: Any, structure: list[Any], mode: str) -> None:
    pending: list[tuple[ConcurrentFuture[Any], int]] = []
    with_futures, expected = _build(structure, pending)
    call = echo_workers[mode].echo(*with_futures, last=with_futures)
    if pending:
        assert not call.done()  # returned while its arguments are pending
    for future, value in pending:
        future.set_result(value)
    args, kwargs = call.result(timeout=30)
    _assert_same(list(args), expected)
    _assert_same(kwargs["last"], expected)


# -- Ray: other futures are awaited without blocking, Ray's own still travel as references -----------------------------


def test_a_pending_thread_future_passed_to_a_ray_worker_returns_at_once(gate: threading.Event) -> None:
    ray = pytest.importorskip("ray")
    started_here = not ray.is_initialized()
    if started_here:
        ray.init(num_cpus=1, include_dashboard=False, log_to_driver=False)
    try:
        source = Held.options(mode="thread").init(gate)
        ray_step = MathWorker.options(mode="ray").init(10)
        first = ray_step.add(source.get(1))
        second = ray_step.multiply(first)  # a deferred call's future, not a RayFuture: passed as its value
        assert isinstance(first, DeferredCall) and not first.done() and not second.done()
        gate.set()
        assert first.result(timeout=60) == 11
        assert second.result(timeout=60) == 110
        from concurry.backends.ray import _prepare

        refs: list[Any] = []
        _prepare([first], refs)  # once forwarded to Ray, a deferred call travels as its reference
        assert refs == [first._inner.object_ref]  # type: ignore[union-attr]
        assert ray_step.multiply(first).result(timeout=60) == 110
        ray_step.stop()
        source.stop()
    finally:
        if started_here:
            ray.shutdown()
