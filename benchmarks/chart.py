"""Chart of the per-call overhead of each mode beside its floors, for the performance page of the docs.

    python benchmarks/chart.py                          # run overhead.py, write docs/assets/overhead.png (+ .json)
    python benchmarks/chart.py --from results.json      # chart results saved by `overhead.py --json results.json`
    python benchmarks/chart.py --repeats 5 --out chart.png

Each mode's bars sit beside the floors it is judged against (DESIGN.md's budget table): a direct method call for
sync, a raw ``SimpleQueue`` hand-off and ``ThreadPoolExecutor(1)`` for thread and asyncio, a raw pipe round trip
and ``ProcessPoolExecutor(1)`` for process, a raw Ray actor call for ray. Two panels: one call at a time
(``f(i).result()`` in a loop) and pipelined (submit N, then wait for all). The x axis is logarithmic, µs per call;
the title names the machine and the date of the measurement.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from typing import Any, Optional

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)

# (group title, row keys): floors first, then concurry's rows; a key missing from the results is left out.
GROUPS = [
    ("sync", ["direct", "sync-floor", "sync", "sync-blocking"]),
    ("thread / asyncio", ["raw-queue", "thread-pool", "thread", "asyncio-sync", "asyncio-async"]),
    ("process", ["raw-pipe", "process-pool", "process"]),
    ("ray", ["ray-raw", "ray"]),
]
FLOOR_COLOUR = "#9e9e9e"
CONCURRY_COLOUR = "#3f51b5"


def run_benchmark(repeats: int, json_path: str) -> dict[str, Any]:
    """Run ``overhead.py`` in a fresh interpreter (as a user would) and read its JSON."""
    subprocess.run([sys.executable, os.path.join(HERE, "overhead.py"), "--repeats", str(repeats), "--json", json_path],
                   check=True)
    with open(json_path) as f:
        return json.load(f)


def _figure(us: float) -> str:
    """Three significant figures without scientific notation: 0.0379, 12.4, 1,004."""
    if us >= 100:
        return f"{us:,.0f}"
    if us >= 10:
        return f"{us:.1f}"
    if us >= 1:
        return f"{us:.2f}"
    return f"{us:.3g}"


def chart(report: dict[str, Any], out: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = {row["key"]: row for row in report["rows"] if "unavailable" not in row}
    labels: list[str] = []
    colours: list[str] = []
    values: dict[str, list[Optional[float]]] = {"one": [], "pipelined": []}
    separators: list[float] = []
    for _, keys in GROUPS:
        present = [k for k in keys if k in rows]
        if not present:
            continue
        if labels:
            separators.append(len(labels) - 0.5)
        for key in present:
            row = rows[key]
            labels.append(row["label"])
            colours.append(CONCURRY_COLOUR if row["label"].startswith("concurry") else FLOOR_COLOUR)
            for column in values:
                data = row.get(column)
                values[column].append(None if data is None else data["median_us"])

    info = report["machine"]
    load = ", ".join(f"{x:.2f}" for x in info.get("load_average") or ())
    title = (f"µs per call (median of {report['repeats']} rounds, log scale) — grey: floors, blue: concurry\n"
             f"measured {info['date']} · {info['cpus']} CPUs · {info['platform']} · Python {info['python']}"
             f" · load {load}")

    fig, axes = plt.subplots(1, 2, figsize=(13, 0.42 * len(labels) + 1.6), sharey=True)
    positions = list(range(len(labels)))
    for ax, (column, heading) in zip(axes, [("one", "one call at a time"), ("pipelined", "pipelined")]):
        data = values[column]
        shown = [v if v is not None else 0.0 for v in data]
        ax.barh(positions, shown, color=colours, height=0.7)
        for y, v in zip(positions, data):
            ax.text(v if v else 0.011, y, " —" if v is None else f" {_figure(v)}", va="center", fontsize=8)
        ax.set_xscale("log")
        smallest = min(v for v in data if v) if any(data) else 0.01
        largest = max(v for v in data if v) if any(data) else 1.0
        ax.set_xlim(smallest / 2, largest * 6)
        ax.set_title(heading, fontsize=10)
        ax.set_xlabel("µs per call")
        ax.grid(axis="x", which="major", alpha=0.3)
        for y in separators:
            ax.axhline(y, color="black", linewidth=0.5, alpha=0.4)
    axes[0].set_yticks(positions, labels, fontsize=9)
    axes[0].invert_yaxis()
    fig.suptitle(title, fontsize=9)
    fig.tight_layout()
    os.makedirs(os.path.dirname(os.path.abspath(out)), exist_ok=True)
    fig.savefig(out, dpi=110)
    print(f"wrote {out}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--from", dest="source", metavar="JSON", help="chart these saved results instead of running")
    parser.add_argument("--repeats", type=int, default=9, help="rounds per row when running the benchmark")
    parser.add_argument("--out", default=os.path.join(ROOT, "docs", "assets", "overhead.png"))
    args = parser.parse_args()
    if args.source:
        with open(args.source) as f:
            report = json.load(f)
    else:
        report = run_benchmark(args.repeats, os.path.splitext(args.out)[0] + ".json")
    chart(report, args.out)


if __name__ == "__main__":
    main()
