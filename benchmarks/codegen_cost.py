"""Cost of generating the proxy classes of a worker class with 20 methods (target: ≤ 1 ms per class and mode).

    python benchmarks/codegen_cost.py
    python benchmarks/codegen_cost.py --classes 200 --json -

Every sample is a brand-new worker class, so nothing is cached: the figure is render + compile + exec + class
creation (``concurry.codegen.runtime.proxy_class``), cold, per class. Introspecting the class into its spec
(``spec_of``) is reported on its own line, and so is the one-time cost paid by the first class in a process
(importing jinja2, compiling the template), which a later class does not pay again. The cyclic GC is paused
while a sample runs, as in ``timeit``.
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import statistics
import sys
import time
from typing import Any, Callable, Optional

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from concurry import Worker  # noqa: E402
from concurry.codegen.runtime import proxy_class  # noqa: E402
from concurry.codegen.spec import spec_of  # noqa: E402

TARGET_MS = 1.0
METHODS = 20

# Four method shapes, five of each: plain, defaulted, keyword-only, and variadic.
_SHAPES = (
    "    def m{i}(self, x: int) -> int:\n        return x\n",
    "    def m{i}(self, a: int, b: str = 'b', c: float = 1.0) -> str:\n        return b\n",
    "    def m{i}(self, a: int, *, key: str = 'k', flag: bool = False) -> bool:\n        return flag\n",
    "    def m{i}(self, first: int, *rest: int, **extra: Any) -> int:\n        return first\n",
)

_counter = 0


def fresh_worker_class() -> type:
    """A new worker class with ``METHODS`` methods, defined the way user code defines one."""
    global _counter
    _counter += 1
    body = "".join(_SHAPES[i % len(_SHAPES)].format(i=i) for i in range(METHODS))
    source = f"class Bench{_counter}(Worker):\n    '''A worker of {METHODS} methods.'''\n{body}"
    namespace: dict[str, Any] = {"Worker": Worker, "Any": Any, "__name__": "codegen_bench"}
    exec(source, namespace)
    return namespace[f"Bench{_counter}"]


def _ms(fn: Callable[[], object]) -> float:
    """Milliseconds of one ``fn()``, with the cyclic GC paused as ``timeit`` does (a collection that happens to
    fall inside one sample measures the heap, not the generation)."""
    gc.disable()
    try:
        start = time.perf_counter()
        fn()
        return (time.perf_counter() - start) * 1e3
    finally:
        gc.enable()


def measure(classes: int, modes: list[str]) -> dict[str, Any]:
    first_cls = fresh_worker_class()
    first_spec = spec_of(first_cls)
    first = {mode: _ms(lambda: proxy_class(first_spec, mode, False)) for mode in modes}
    spec_ms: list[float] = []
    per_mode: dict[str, list[float]] = {f"{mode}{' blocking' if blocking else ''}": [] for mode in modes
                                         for blocking in (False, True)}
    for _ in range(classes):
        cls = fresh_worker_class()
        holder: dict[str, Any] = {}
        spec_ms.append(_ms(lambda: holder.setdefault("spec", spec_of(cls))))
        spec = holder["spec"]
        assert len(spec.methods) == METHODS
        for mode in modes:
            for blocking in (False, True):
                per_mode[f"{mode}{' blocking' if blocking else ''}"].append(
                    _ms(lambda: proxy_class(spec, mode, blocking)))
    return {
        "methods": METHODS,
        "classes": classes,
        "target_ms": TARGET_MS,
        "first_class_ms": first,
        "spec_of_ms": _stats(spec_ms),
        "proxy_class_ms": {key: _stats(values) for key, values in per_mode.items()},
    }


def _stats(values: list[float]) -> dict[str, float]:
    ordered = sorted(values)
    return {
        "median": statistics.median(ordered),
        "p10": ordered[len(ordered) // 10],
        "p90": ordered[(len(ordered) * 9) // 10],
    }


def render(report: dict[str, Any]) -> str:
    lines = [
        f"proxy generation for a worker class of {report['methods']} methods, {report['classes']} fresh classes "
        f"({time.strftime('%Y-%m-%d %H:%M')}, load {os.getloadavg()[0]:.2f})",
        f"{'':<28} {'median ms':>10} {'p10':>8} {'p90':>8}",
    ]
    for key, stats in report["proxy_class_ms"].items():
        verdict = "ok" if stats["median"] <= report["target_ms"] else "MISSED"
        lines.append(f"{'proxy class, ' + key:<28} {stats['median']:>10.3f} {stats['p10']:>8.3f} {stats['p90']:>8.3f}"
                     f"   target ≤ {report['target_ms']:g} ms {verdict}")
    spec = report["spec_of_ms"]
    lines.append(f"{'spec_of (introspection)':<28} {spec['median']:>10.3f} {spec['p10']:>8.3f} {spec['p90']:>8.3f}")
    first = ", ".join(f"{mode} {ms:.2f} ms" for mode, ms in report["first_class_ms"].items())
    lines.append(f"first class in this process (imports jinja2, compiles the template): {first}")
    return "\n".join(lines)


def main(argv: Optional[list[str]] = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--classes", type=int, default=100, help="fresh classes measured (default 100)")
    parser.add_argument("--modes", default="sync,thread", help="comma-separated modes (default sync,thread)")
    parser.add_argument("--json", metavar="PATH", help="write the results as JSON to PATH ('-' for stdout)")
    args = parser.parse_args(argv)
    report = measure(args.classes, [m.strip() for m in args.modes.split(",") if m.strip()])
    if args.json == "-":
        json.dump(report, sys.stdout, indent=1)
        print()
        return
    if args.json:
        with open(args.json, "w") as out:
            json.dump(report, out, indent=1)
    print(render(report))


if __name__ == "__main__":
    main()
