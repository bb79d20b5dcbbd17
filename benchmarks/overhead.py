"""Per-call overhead of concurry's modes beside the floors they are judged against (DESIGN.md's budget table).

    python benchmarks/overhead.py                 # the whole table
    python benchmarks/overhead.py --only thread   # rows whose key contains "thread" (and the floors they need)
    python benchmarks/overhead.py --json -        # machine-readable results on stdout

Each row is measured two ways: one at a time (``f(i).result()`` in a loop) and pipelined (submit N calls, then
wait for all). Rows are measured round-robin, ``--repeats`` rounds after a warm-up round, so load from other
programs spreads over every row alike; a row's figure is the median of its rounds, and a ratio is the median of
the per-round ratios to its floor measured in the same round. The cyclic GC runs as it would for users (holding
N futures makes it collect); ``--pause-gc`` pauses it during each sample, as ``timeit`` does.

Rows come from ``ROWS`` below and from any sibling module named in ``EXTRA_ROW_MODULES`` that has a ``rows()``
function returning ``Row`` objects (or mappings with the same fields); a missing module or backend turns its rows
into a note, never an error.
"""

from __future__ import annotations

import argparse
import gc
import importlib
import importlib.util
import json
import multiprocessing
import os
import pickle
import platform
import statistics
import sys
import threading
import time
from concurrent.futures import ProcessPoolExecutor, ThreadPoolExecutor
from dataclasses import dataclass, field
from queue import SimpleQueue
from typing import Any, Callable, Iterable, Mapping, Optional

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from concurry import Worker  # noqa: E402

EXTRA_ROW_MODULES = ("ray_overhead",)


@dataclass
class Case:
    """A started row: ``one(n)`` and ``pipelined(n)`` make ``n`` calls; ``close()`` releases what setup made."""

    one: Callable[[int], object]
    pipelined: Optional[Callable[[int], object]] = None
    close: Callable[[], object] = lambda: None


@dataclass(frozen=True)
class Check:
    """A budget line: ``column`` of this row divided by ``floor_column`` of row ``floor`` must be ≤ ``target``."""

    column: str
    floor: str
    floor_column: str
    target: Optional[float]


@dataclass(frozen=True)
class Row:
    key: str
    label: str
    setup: Callable[[], Case]
    n: int
    checks: tuple[Check, ...] = field(default=())


# -- the worker every row calls -------------------------------------------------------------------------------------
class Echo(Worker):
    def f(self, x: int) -> int:
        return x


class AsyncEcho(Worker):
    def f(self, x: int) -> int:
        return x

    async def af(self, x: int) -> int:
        return x


def echo(x: int) -> int:
    return x


# -- floors ----------------------------------------------------------------------------------------------------------
def _direct() -> Case:
    f = Echo().f

    def one(n: int) -> None:
        for i in range(n):
            f(i)

    return Case(one, one)


def _future_floor() -> Case:
    """The least a sync-mode future call can cost in Python: one function that calls ``f`` and returns its result in
    a new finished ``SyncFuture`` (no argument check, no stop check, no proxy). Not a floor any budget line uses;
    it shows how much of the sync row is the future itself."""
    from concurry.core.future import SyncFuture

    f = Echo().f

    def call(x: int) -> SyncFuture[int]:
        future: SyncFuture[int] = SyncFuture()
        future._result = f(x)  # pyright: ignore[reportPrivateUsage]
        return future

    def one(n: int) -> None:
        for i in range(n):
            call(i).result()

    return Case(one)


def serve_raw(inbox: SimpleQueue[Optional[int]], outbox: SimpleQueue[int], f: Callable[[int], int]) -> None:
    """The raw hand-off's worker loop: answer each int from ``inbox`` with ``f`` of it on ``outbox``, until None."""
    get, put = inbox.get, outbox.put
    while True:
        x = get()
        if x is None:
            return
        put(f(x))


def _raw_queue() -> Case:
    """A thread fed through one ``SimpleQueue`` that answers through another: the thread hand-off floor."""
    inbox: SimpleQueue[Optional[int]] = SimpleQueue()
    outbox: SimpleQueue[int] = SimpleQueue()
    thread = threading.Thread(target=serve_raw, args=(inbox, outbox, Echo().f), daemon=True)
    thread.start()
    put, get = inbox.put, outbox.get

    def one(n: int) -> None:
        for i in range(n):
            put(i)
            get()

    def pipelined(n: int) -> None:
        for i in range(n):
            put(i)
        for _ in range(n):
            get()

    def close() -> None:
        put(None)
        thread.join()

    return Case(one, pipelined, close)


def _executor(executor: Any) -> Case:
    submit = executor.submit

    def one(n: int) -> None:
        for i in range(n):
            submit(echo, i).result()

    def pipelined(n: int) -> None:
        futures = [submit(echo, i) for i in range(n)]
        for future in futures:
            future.result()

    return Case(one, pipelined, lambda: executor.shutdown(wait=True))


def _thread_pool() -> Case:
    return _executor(ThreadPoolExecutor(1))


def _process_pool() -> Case:
    return _executor(ProcessPoolExecutor(1, mp_context=multiprocessing.get_context("fork")))


PIPE_BATCH = 1000


def _serve_pipe(requests: Any, replies: Any) -> None:
    recv, send, loads, dumps = requests.recv_bytes, replies.send_bytes, pickle.loads, pickle.dumps
    while True:
        data = recv()
        if not data:
            return
        send(dumps(echo(loads(data))))


def _raw_pipe() -> Case:
    """A child process answering pickled ints over two one-way pipes: the process round-trip floor.

    Pipelined calls go in batches of ``PIPE_BATCH``, whose requests and replies fit the pipes' buffers, so sending
    a whole batch before reading cannot deadlock.
    """
    context = multiprocessing.get_context("fork")
    requests_in, requests_out = context.Pipe(duplex=False)
    replies_in, replies_out = context.Pipe(duplex=False)
    process = context.Process(target=_serve_pipe, args=(requests_in, replies_out), daemon=True)
    process.start()
    requests_in.close()
    replies_out.close()
    send, recv, dumps, loads = requests_out.send_bytes, replies_in.recv_bytes, pickle.dumps, pickle.loads

    def one(n: int) -> None:
        for i in range(n):
            send(dumps(i))
            loads(recv())

    def pipelined(n: int) -> None:
        for start in range(0, n, PIPE_BATCH):
            batch = range(start, min(n, start + PIPE_BATCH))
            for i in batch:
                send(dumps(i))
            for _ in batch:
                loads(recv())

    def close() -> None:
        send(b"")
        process.join()
        requests_out.close()
        replies_in.close()

    return Case(one, pipelined, close)


# -- concurry --------------------------------------------------------------------------------------------------------
def _concurry(cls: type, method: str, **options: Any) -> Callable[[], Case]:
    def setup() -> Case:
        proxy = cls.options(**options).init()
        f = getattr(proxy, method)

        def one(n: int) -> None:
            for i in range(n):
                f(i).result()

        def pipelined(n: int) -> None:
            futures = [f(i) for i in range(n)]
            for future in futures:
                future.result()

        return Case(one, pipelined, proxy.stop)

    return setup


def _concurry_blocking(cls: type, method: str, **options: Any) -> Callable[[], Case]:
    """A blocking proxy: each call returns its result, so one at a time is all there is."""

    def setup() -> Case:
        proxy = cls.options(blocking=True, **options).init()
        f = getattr(proxy, method)

        def one(n: int) -> None:
            for i in range(n):
                f(i)

        return Case(one, None, proxy.stop)

    return setup


def _both(floor: str, target_one: Optional[float], target_pipelined: Optional[float]) -> tuple[Check, ...]:
    return (Check("one", floor, "one", target_one), Check("pipelined", floor, "pipelined", target_pipelined))


ROWS: tuple[Row, ...] = (
    Row("direct", "direct method call", _direct, 200_000),
    Row("sync-floor", "a finished SyncFuture around a direct call", _future_floor, 100_000,
        (Check("one", "direct", "one", None),)),
    Row("raw-queue", "raw SimpleQueue thread hand-off", _raw_queue, 20_000),
    Row("thread-pool", "ThreadPoolExecutor(1)", _thread_pool, 10_000),
    Row("process-pool", "ProcessPoolExecutor(1)", _process_pool, 1_000),
    Row("raw-pipe", "raw multiprocessing.Pipe round trip", _raw_pipe, 2_000),
    Row("sync", "concurry sync", _concurry(Echo, "f", mode="sync"), 100_000,
        (Check("one", "direct", "one", 5.0), Check("pipelined", "direct", "pipelined", None))),
    Row("sync-blocking", "concurry sync, blocking=True", _concurry_blocking(Echo, "f", mode="sync"), 100_000,
        (Check("one", "direct", "one", 5.0),)),
    Row("thread", "concurry thread", _concurry(Echo, "f", mode="thread"), 20_000, _both("raw-queue", 1.3, 4.0)),
    Row("asyncio-sync", "concurry asyncio, sync method", _concurry(AsyncEcho, "f", mode="asyncio"), 10_000,
        _both("raw-queue", None, None)),
    Row("asyncio-async", "concurry asyncio, async method", _concurry(AsyncEcho, "af", mode="asyncio"), 10_000,
        _both("raw-queue", None, None)),
    Row("process", "concurry process", _concurry(Echo, "f", mode="process"), 1_000,
        (*_both("process-pool", 0.5, 0.5), Check("one", "raw-pipe", "one", 2.0))),
)


# -- driver ----------------------------------------------------------------------------------------------------------
def _as_row(item: Any) -> Row:
    if isinstance(item, Mapping):
        item = dict(item)
        item["checks"] = tuple(c if not isinstance(c, Mapping) else Check(**c) for c in item.get("checks", ()))
        return Row(**item)
    return item  # duck-typed: any object with Row's fields


def row_groups() -> list[tuple[str, Callable[[], list[Row]]]]:
    """Rows in groups measured one after another: ours, then each extra module's. A group's module is imported
    only when its turn comes, so Ray's threads, processes and heap (a larger heap makes every garbage collection
    dearer) cannot weigh on the GC- and GIL-sensitive rows of the groups before it."""
    groups: list[tuple[str, Callable[[], list[Row]]]] = [("concurry", lambda: list(ROWS))]
    for name in EXTRA_ROW_MODULES:
        if importlib.util.find_spec(name) is not None:
            groups.append((name, lambda name=name: [_as_row(item) for item in importlib.import_module(name).rows()]))
    return groups


def _wanted(group: str, only: Optional[str]) -> bool:
    """Our group always (it holds the floors); an extra module's when ``--only`` names part of its name."""
    return only is None or group == "concurry" or any(word.strip() in group for word in only.split(",") if word.strip())


def select(rows: list[Row], only: Optional[str]) -> list[Row]:
    """Rows whose key contains one of the comma-separated words of ``only``, and the floors they are checked
    against."""
    if not only:
        return rows
    words = [w.strip() for w in only.split(",") if w.strip()]
    wanted = {r.key for r in rows if any(w in r.key for w in words)}
    wanted |= {c.floor for r in rows if r.key in wanted for c in r.checks}
    return [r for r in rows if r.key in wanted]


def timed(fn: Callable[[int], object], n: int, pause_gc: bool) -> float:
    """Microseconds per call of one run of ``fn(n)``, the cyclic GC paused during it with ``pause_gc``."""
    gc.collect()
    if pause_gc:
        gc.disable()
    try:
        start = time.perf_counter()
        fn(n)
        return (time.perf_counter() - start) / n * 1e6
    finally:
        gc.enable()


def measure(
    rows: list[Row], repeats: int, scale: float, pause_gc: bool = False
) -> tuple[dict[str, dict[str, list[float]]], dict[str, str]]:
    """Samples (µs/call) per row and column, measured round-robin; rows that cannot start are reported instead."""
    cases: dict[str, Case] = {}
    unavailable: dict[str, str] = {}
    for row in rows:
        try:
            cases[row.key] = row.setup()
        except Exception as error:  # a backend still being written must not stop the other rows
            unavailable[row.key] = f"{type(error).__name__}: {error}"
    samples: dict[str, dict[str, list[float]]] = {key: {"one": [], "pipelined": []} for key in cases}
    sizes = {row.key: max(1, int(row.n * scale)) for row in rows}
    try:
        for round_ in range(repeats + 1):  # round 0 warms up
            for key, case in list(cases.items()):
                for column, fn in (("one", case.one), ("pipelined", case.pipelined)):
                    if fn is None:
                        continue
                    try:
                        value = timed(fn, sizes[key], pause_gc)
                    except Exception as error:
                        unavailable[key] = f"failed while measured: {type(error).__name__}: {error}"
                        del cases[key], samples[key]
                        case.close()
                        break
                    if round_:
                        samples[key][column].append(value)
    finally:
        for case in cases.values():
            case.close()
    return samples, unavailable


def summarize(
    rows: list[Row], samples: dict[str, dict[str, list[float]]], unavailable: dict[str, str]
) -> dict[str, Any]:
    by_key = {row.key: row for row in rows}
    results: list[dict[str, Any]] = []
    checks: list[dict[str, Any]] = []
    for row in rows:
        entry: dict[str, Any] = {"key": row.key, "label": row.label, "n": row.n}
        if row.key in unavailable:
            entry["unavailable"] = unavailable[row.key]
            results.append(entry)
            continue
        for column, values in samples[row.key].items():
            if values:
                entry[column] = {
                    "median_us": statistics.median(values),
                    "min_us": min(values),
                    "max_us": max(values),
                    "samples_us": values,
                }
        results.append(entry)
        for check in row.checks:
            floor = samples.get(check.floor, {}).get(check.floor_column)
            mine = samples[row.key].get(check.column)
            if not floor or not mine or check.floor not in by_key:
                continue
            ratios = [a / b for a, b in zip(mine, floor)]
            ratio = statistics.median(ratios)
            checks.append({
                "row": row.key,
                "column": check.column,
                "floor": check.floor,
                "floor_column": check.floor_column,
                "ratio": ratio,
                "ratio_min": min(ratios),
                "ratio_max": max(ratios),
                "target": check.target,
                "met": None if check.target is None else ratio <= check.target,
            })
    return {"rows": results, "checks": checks}


def machine() -> dict[str, Any]:
    return {
        "date": time.strftime("%Y-%m-%d %H:%M %Z"),
        "python": platform.python_version(),
        "platform": platform.platform(),
        "cpus": os.cpu_count(),
        "load_average": os.getloadavg() if hasattr(os, "getloadavg") else None,
    }


def render(report: dict[str, Any]) -> str:
    info = report["machine"]
    lines = [
        f"{info['date']} · Python {info['python']} · {info['cpus']} CPUs · load "
        f"{', '.join(f'{x:.2f}' for x in info['load_average'] or ())} · {report['repeats']} rounds, "
        f"median (min–max) µs/call · GC {'paused' if report['gc_paused'] else 'running'} during samples",
        "",
        f"{'row':<40} {'one at a time':>24} {'pipelined':>24}",
    ]

    def cell(entry: dict[str, Any], column: str) -> str:
        data = entry.get(column)
        if data is None:
            return "—"
        return f"{data['median_us']:.3f} ({data['min_us']:.3f}–{data['max_us']:.3f})"

    for entry in report["rows"]:
        if "unavailable" in entry:
            lines.append(f"{entry['label']:<40} unavailable: {entry['unavailable']}")
            continue
        lines.append(f"{entry['label']:<40} {cell(entry, 'one'):>24} {cell(entry, 'pipelined'):>24}")
    if report["checks"]:
        lines += ["", f"{'budget (median of per-round ratios)':<52} {'ratio (min–max)':>22} {'target':>8}"]
        for check in report["checks"]:
            what = f"{check['row']} {check['column']} / {check['floor']} {check['floor_column']}"
            target = "—" if check["target"] is None else f"≤ {check['target']:g}×"
            verdict = "" if check["met"] is None else ("ok" if check["met"] else "MISSED")
            ratio = f"{check['ratio']:.2f}× ({check['ratio_min']:.2f}–{check['ratio_max']:.2f})"
            lines.append(f"{what:<52} {ratio:>22} {target:>8} {verdict}".rstrip())
    lines += [f"note: {note}" for note in report["notes"]]
    return "\n".join(lines)


def main(argv: Optional[Iterable[str]] = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--only", help="comma-separated words; keep rows whose key contains one (plus their floors)")
    parser.add_argument("--repeats", type=int, default=9, help="measured rounds per row (default 9)")
    parser.add_argument("--scale", type=float, default=1.0, help="multiply every row's call count (default 1)")
    parser.add_argument("--json", metavar="PATH", help="write the results as JSON to PATH ('-' for stdout)")
    parser.add_argument("--list", action="store_true", help="list the row keys and exit")
    parser.add_argument("--pause-gc", action="store_true",
                        help="pause the cyclic GC while a sample runs, as timeit does (default: GC runs, as for users)")
    args = parser.parse_args(list(argv) if argv is not None else None)

    notes: list[str] = []
    rows: list[Row] = []
    samples: dict[str, dict[str, list[float]]] = {}
    unavailable: dict[str, str] = {}
    for name, load in row_groups():
        if not (args.list or _wanted(name, args.only)):
            continue
        try:
            group = load()
        except Exception as error:  # a module being written, or ray not installed, must not stop the other rows
            notes.append(f"{name}: rows unavailable ({type(error).__name__}: {error})")
            continue
        if args.list:
            rows += group
            continue
        chosen = select(group, args.only)
        group_samples, group_unavailable = measure(chosen, args.repeats, args.scale, args.pause_gc)
        rows += chosen
        samples.update(group_samples)
        unavailable.update(group_unavailable)
    if args.list:
        for row in rows:
            print(f"{row.key:<16} {row.label}")
        return
    report = {"machine": machine(), "repeats": args.repeats, "scale": args.scale, "gc_paused": args.pause_gc,
              "notes": notes,
              **summarize(rows, samples, unavailable)}
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
