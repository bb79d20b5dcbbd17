"""Running mypy (with the plugin) and pyright (with generated stubs) over the case files, and reading the results.

A case file is plain Python: ``assert_type(expr, T)`` lines must type-check cleanly (a wrong type is an error
in both checkers), and a line ending in ``# E`` (optionally ``# E: why``) must get at least one error.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path

HERE = Path(__file__).parent
CASES = HERE / "cases"
REPO = HERE.parent
EXAMPLES = [REPO / "examples" / "typed_workers.py", REPO / "examples" / "typed_app.py"]

EXPECTED_ERROR = re.compile(r"#\s*E(:|\s*$)")
MYPY_LINE = re.compile(r"^(?P<path>.+?):(?P<line>\d+): (?P<severity>error|note): (?P<message>.*)$")

MYPY_CONFIG = """\
[mypy]
python_version = 3.10
strict = True
warn_unused_ignores = True
plugins = concurry.mypy_plugin
cache_dir = {cache_dir}

[mypy-morphic.*]
follow_untyped_imports = True
"""


@dataclass
class Report:
    """Errors one checker reported: file name -> line (1-based) -> messages."""

    checker: str
    errors: dict[str, dict[int, list[str]]] = field(default_factory=dict[str, dict[int, list[str]]])
    raw: str = ""

    def add(self, path: str, line: int, message: str) -> None:
        self.errors.setdefault(Path(path).name, {}).setdefault(line, []).append(message)

    def lines(self, name: str) -> dict[int, list[str]]:
        return self.errors.get(name, {})


@dataclass
class Runs:
    """One mypy run and one pyright run over every case file, shared by all the tests."""

    mypy: Report
    pyright: Report
    mypy_config: Path
    files: list[Path]


def case_files() -> list[Path]:
    return sorted(CASES.glob("case_*.py"))


def expected_error_lines(path: Path) -> set[int]:
    return {
        number
        for number, text in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1)
        if EXPECTED_ERROR.search(text)
    }


def mypy_config(folder: Path, with_pydantic: bool = False) -> Path:
    """The suite's mypy configuration; ``with_pydantic`` also enables pydantic's plugin, before ours."""
    config = folder / ("mypy-pydantic.ini" if with_pydantic else "mypy.ini")
    text = MYPY_CONFIG.format(cache_dir=folder / ("mypy_cache_pydantic" if with_pydantic else "mypy_cache"))
    if with_pydantic:
        text = text.replace("plugins = concurry.mypy_plugin", "plugins = pydantic.mypy, concurry.mypy_plugin")
        text += "\n[pydantic-mypy]\ninit_typed = True\n"
    config.write_text(text, encoding="utf-8")
    return config


def run_mypy(files: list[Path], config: Path) -> Report:
    from mypy import api

    stdout, stderr, _ = api.run(["--config-file", str(config), "--show-absolute-path", *map(str, files)])
    report = Report("mypy", raw=stdout + stderr)
    for text in stdout.splitlines():
        match = MYPY_LINE.match(text)
        if match and match["severity"] == "error":
            report.add(match["path"], int(match["line"]), match["message"])
    return report


def pyright_config(folder: Path, stubs: Path, include: list[Path]) -> Path:
    config = folder / "pyrightconfig.json"
    config.write_text(
        json.dumps({
            "include": [os.path.relpath(p, folder) for p in include],
            "extraPaths": [str(CASES), str(REPO / "examples")],
            "stubPath": str(stubs),
            "pythonVersion": "3.10",
            "typeCheckingMode": "strict",
            "reportMissingTypeStubs": False,  # morphic ships no type information
            "reportUnnecessaryTypeIgnoreComment": "error",
        }),
        encoding="utf-8",
    )
    return config


def start_pyright(config: Path) -> subprocess.Popen[str]:
    """Start pyright in the background: it runs on its own core while mypy runs here."""
    pyright = str(Path(sys.executable).with_name("pyright"))
    return subprocess.Popen(
        [pyright, "--outputjson", "-p", str(config), "--pythonpath", sys.executable],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        cwd=config.parent,
    )


def finish_pyright(process: subprocess.Popen[str]) -> Report:
    stdout, stderr = process.communicate(timeout=300)
    report = Report("pyright", raw=stdout + stderr)
    try:
        diagnostics = json.loads(stdout)["generalDiagnostics"]
    except (ValueError, KeyError) as error:
        raise RuntimeError(f"pyright gave no JSON report:\n{stdout}\n{stderr}") from error
    for diagnostic in diagnostics:
        if diagnostic["severity"] in ("error", "warning"):
            rule = diagnostic.get("rule", "")
            line = diagnostic["range"]["start"]["line"] + 1
            report.add(diagnostic["file"], line, f"{diagnostic['message']} [{rule}]")
    return report
