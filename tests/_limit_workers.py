"""Bodies run by the child processes of the limit tests (importable by name, as spawn needs)."""

from __future__ import annotations

import os
import time


def hold_many(limits, requested, rounds, hold_seconds, results):
    """Acquire ``requested`` ``rounds`` times; report each held interval (monotonic, system-wide on Linux)."""
    intervals = []
    for _ in range(rounds):
        with limits.acquire(requested):
            entered = time.monotonic()
            time.sleep(hold_seconds)
            intervals.append((entered, time.monotonic()))
    results.put((os.getpid(), intervals))


def hold_forever(limits, requested, ready):
    with limits.acquire(requested):
        ready.set()
        time.sleep(3600)


def fail_inside(limits, requested, results):
    try:
        with limits.acquire(requested) as acquisition:
            acquisition.update({key: 0 for key in requested})
            raise ValueError("raised inside the block")
    except ValueError as error:
        results.put(("ValueError", str(error), limits.in_use()))


class Flaky:
    """A worker that fails its first ``failures`` calls and holds a connection while it works."""

    def __init__(self, failures):
        self.failures = failures
        self.calls = 0

    def work(self, x):
        with self.limits.acquire(requested={"connections": 1}):
            self.calls += 1
            if self.calls <= self.failures:
                raise ConnectionError(f"failure {self.calls}")
            return x * 2, self.calls


def apply_shipped_config(blob, results):
    """What a process backend does in its child: unpickle the worker-side config and bind through it."""
    import cloudpickle

    from concurry.core.worker_side import apply_worker_side_config

    config = cloudpickle.loads(blob)
    instance = Flaky(2)
    methods = apply_worker_side_config(instance, {"work": instance.work}, config)
    results.put((methods["work"](21), instance.limits.in_use()))
