"""How long ``import concurry`` takes beside importing its required dependencies (target: ≤ deps + 30 ms).

    python benchmarks/import_time.py
    python benchmarks/import_time.py --runs 21 --json -

Every sample is a fresh interpreter that times one import statement (interpreter start-up is not counted);
figures are medians. Required dependencies are the ``[project] dependencies`` of ``pyproject.toml``, imported by
their top-level module. The script asserts nothing: it also prints whether ray got imported, and which
third-party modules ``import concurry`` loads (the rest are imported on first use).
"""

from __future__ import annotations

import argparse
import json
import os
import re
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any, Optional

ROOT = Path(__file__).resolve().parent.parent
TARGET_MS = 30.0
FIRST_USE = "import concurry + first sync worker"
_FIRST_USE_CODE = """import concurry
class W(concurry.Worker):
    def f(self, x): return x
W.options(mode='sync').init().f(1)"""

# Distribution name -> module imported for it, where the two differ.
_MODULE_OF = {"typing-extensions": "typing_extensions"}

_PROBE = """
import sys, time, json
start = time.perf_counter()
{statement}
elapsed = time.perf_counter() - start
third_party = sorted({{name.split(".")[0] for name in sys.modules}} - set(sys.stdlib_module_names) - {{"__main__"}})
print(json.dumps({{"ms": elapsed * 1e3, "ray": "ray" in sys.modules, "modules": third_party}}))
"""


def required_modules() -> list[str]:
    """Top-level modules of the required dependencies listed in pyproject.toml."""
    text = (ROOT / "pyproject.toml").read_text()
    block = re.search(r"^dependencies\s*=\s*\[(.*?)\]", text, re.S | re.M)
    assert block is not None, "pyproject.toml has no [project] dependencies"
    names = re.findall(r'"([A-Za-z0-9_.\-]+)', block.group(1))
    return [_MODULE_OF.get(name.lower(), name.lower().replace("-", "_")) for name in names]


def probe(statement: str) -> dict[str, Any]:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))}
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    out = subprocess.run(
        [sys.executable, "-c", _PROBE.format(statement=statement)],
        capture_output=True, text=True, check=True, env=env, cwd=ROOT,
    ).stdout
    return json.loads(out.strip().splitlines()[-1])


def measure(runs: int) -> dict[str, Any]:
    deps = required_modules()
    statements = {
        "import concurry": "import concurry",
        "import " + ", ".join(deps): "import " + ", ".join(deps),
        FIRST_USE: _FIRST_USE_CODE,
    }
    for statement in statements.values():  # warm the bytecode caches once
        probe(statement)
    samples: dict[str, list[float]] = {label: [] for label in statements}
    last: dict[str, dict[str, Any]] = {}
    for _ in range(runs):  # alternate, so load from other programs falls on both alike
        for label, statement in statements.items():
            last[label] = probe(statement)
            samples[label].append(last[label]["ms"])
    at_start = set(probe("pass")["modules"])
    concurry_ms = statistics.median(samples["import concurry"])
    deps_label = next(label for label in statements if label not in ("import concurry", FIRST_USE))
    deps_ms = statistics.median(samples[deps_label])
    return {
        "date": time.strftime("%Y-%m-%d %H:%M %Z"),
        "runs": runs,
        "python": sys.version.split()[0],
        "dependencies": deps,
        "concurry_ms": concurry_ms,
        "dependencies_ms": deps_ms,
        "first_use_ms": statistics.median(samples[FIRST_USE]),
        "samples_ms": samples,
        "target": f"concurry ≤ dependencies + {TARGET_MS:g} ms",
        "met": concurry_ms <= deps_ms + TARGET_MS,
        "ray_imported": last["import concurry"]["ray"],
        "third_party_loaded_by_concurry": [
            m for m in last["import concurry"]["modules"] if m != "concurry" and m not in at_start
        ],
    }


def render(report: dict[str, Any]) -> str:
    def spread(values: list[float]) -> str:
        return f"{min(values):.1f}–{max(values):.1f}"

    samples = report["samples_ms"]
    deps_label = next(label for label in samples if label not in ("import concurry", FIRST_USE))
    lines = [
        f"import time, median of {report['runs']} fresh interpreters ({report['date']}, Python {report['python']})",
        f"{'import concurry':<52} {report['concurry_ms']:8.1f} ms  ({spread(samples['import concurry'])})",
        f"{'required dependencies':<52} {report['dependencies_ms']:8.1f} ms  ({spread(samples[deps_label])})",
        f"  ({', '.join(report['dependencies'])})",
        f"{FIRST_USE + ' (for information)':<52} {report['first_use_ms']:8.1f} ms  ({spread(samples[FIRST_USE])})",
        f"target: {report['target']}: {'ok' if report['met'] else 'MISSED'}",
        f"ray imported by import concurry: {'yes' if report['ray_imported'] else 'no'}",
        f"third-party modules import concurry loads: {', '.join(report['third_party_loaded_by_concurry']) or 'none'}",
    ]
    return "\n".join(lines)


def main(argv: Optional[list[str]] = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=11, help="fresh interpreters per statement (default 11)")
    parser.add_argument("--json", metavar="PATH", help="write the results as JSON to PATH ('-' for stdout)")
    args = parser.parse_args(argv)
    report = measure(args.runs)
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
