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
