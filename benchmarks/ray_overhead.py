"""Ray mode's per-call overhead beside a raw Ray actor call (DESIGN.md budget: ≤ 1.15×, both ways).

    python benchmarks/ray_overhead.py               # standalone table with ratios
    python benchmarks/ray_overhead.py --repeats 9

Two columns per row: one at a time (``f(i).result()`` in a loop) and pipelined (submit N calls, then wait for
all). The floor is the cheapest raw Ray idiom: a cached ``actor.f`` handle, ``ray.get(m.remote(i))`` one at a
time and one ``ray.get(refs)`` for the pipelined batch. Rows are measured round-robin after a warm-up round; a
figure is the median of its rounds and a ratio the median of the per-round ratios.

``rows()`` gives the same rows in the form ``benchmarks/overhead.py`` merges (key, label, setup, n, checks);
``results()`` measures them here and returns ``(name, us_per_call, floor_name)`` tuples.
"""

from __future__ import annotations

import argparse
import gc
import logging
import os
import statistics
import sys
import time
from dataclasses import dataclass
from typing import Any, Callable, Optional

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import ray  # noqa: E402

from concurry import Worker  # noqa: E402

TARGET = 1.15
ONE_N = 1_000
PIPELINED_N = 2_000


class Echo(Worker):
    def f(self, x: int) -> int:
        return x


@ray.remote
class RawEcho:
    def f(self, x: int) -> int:
        return x


@dataclass
class Case:
    """A started row (the shape ``benchmarks/overhead.py`` measures): ``one(n)`` and ``pipelined(n)`` make n calls."""

    one: Callable[[int], object]
    pipelined: Callable[[int], object]
    close: Callable[[], object]


def _connect() -> None:
    if not ray.is_initialized():
        ray.init(num_cpus=2, include_dashboard=False, logging_level=logging.WARNING)


def raw_actor() -> Case:
    _connect()
    actor = RawEcho.remote()
    m = actor.f
    ray.get(m.remote(0))

    def one(n: int) -> None:
        for i in range(n):
            ray.get(m.remote(i))

    def pipelined(n: int) -> None:
        ray.get([m.remote(i) for i in range(n)])

    return Case(one, pipelined, lambda: ray.kill(actor))


def concurry_ray() -> Case:
    _connect()
    proxy = Echo.options(mode="ray").init()
    f = proxy.f
    f(0).result()

    def one(n: int) -> None:
        for i in range(n):
            f(i).result()

    def pipelined(n: int) -> None:
        futures = [f(i) for i in range(n)]
        for future in futures:
            future.result()

    return Case(one, pipelined, proxy.stop)


def rows() -> list[dict[str, Any]]:
    """The rows in the form ``benchmarks/overhead.py`` merges (its ``Row`` and ``Check`` fields)."""
    return [
        {"key": "ray-raw", "label": "raw Ray actor call", "setup": raw_actor, "n": ONE_N},
        {"key": "ray", "label": "concurry ray", "setup": concurry_ray, "n": ONE_N, "checks": (
            {"column": "one", "floor": "ray-raw", "floor_column": "one", "target": TARGET},
            {"column": "pipelined", "floor": "ray-raw", "floor_column": "pipelined", "target": TARGET},
        )},
    ]


def _timed(fn: Callable[[int], object], n: int) -> float:
    gc.collect()
    start = time.perf_counter()
    fn(n)
    return (time.perf_counter() - start) / n * 1e6


_NAMES = {
    ("raw", "one"): "raw Ray actor, one at a time",
    ("raw", "pipelined"): "raw Ray actor, pipelined",
    ("concurry", "one"): "concurry ray, one at a time",
    ("concurry", "pipelined"): "concurry ray, pipelined",
}


def _measure(repeats: int) -> dict[tuple[str, str], list[float]]:
    """µs/call samples per (who, column), measured round-robin after a warm-up round."""
    cases = {"raw": raw_actor(), "concurry": concurry_ray()}
    samples: dict[tuple[str, str], list[float]] = {key: [] for key in _NAMES}
    try:
        for round_ in range(repeats + 1):
            for who, case in cases.items():
                for column, fn, n in (("one", case.one, ONE_N), ("pipelined", case.pipelined, PIPELINED_N)):
                    value = _timed(fn, n)
                    if round_:
                        samples[(who, column)].append(value)
    finally:
        for case in cases.values():
            case.close()
    return samples


def _as_results(samples: dict[tuple[str, str], list[float]]) -> list[tuple[str, float, Optional[str]]]:
    return [
        (_NAMES[(who, column)], statistics.median(samples[(who, column)]),
         None if who == "raw" else _NAMES[("raw", column)])
        for who in ("raw", "concurry")
        for column in ("one", "pipelined")
    ]


def results(repeats: int = 7) -> list[tuple[str, float, Optional[str]]]:
    """``(name, median µs/call, floor name or None)`` for each row and column."""
    return _as_results(_measure(repeats))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeats", type=int, default=7, help="measured rounds (default 7)")
    args = parser.parse_args()
    samples = _measure(args.repeats)
    print(f"ray {ray.__version__} · Python {sys.version.split()[0]} · {os.cpu_count()} CPUs · "
          f"{args.repeats} rounds · median µs/call; ratio = median of per-round ratios (min–max)")
    for name, us, floor in _as_results(samples):
        if floor is None:
            print(f"{name:<30} {us:>9.1f}")
            continue
        column = "one" if "one at a time" in name else "pipelined"
        ratios = [c / r for c, r in zip(samples[("concurry", column)], samples[("raw", column)])]
        ratio = statistics.median(ratios)
        verdict = "ok" if ratio <= TARGET else "MISSED"
        print(f"{name:<30} {us:>9.1f}   {ratio:.3f}× ({min(ratios):.2f}–{max(ratios):.2f}) "
              f"of {floor}, target ≤ {TARGET}× {verdict}")
    ray.shutdown()


if __name__ == "__main__":
    main()
