"""The library itself passes mypy in strict mode and pyright in strict mode, with no errors.

mypy reads its configuration (``strict = true`` and the narrow third-party overrides) from ``pyproject.toml``;
pyright reads ``pyrightconfig.json`` at the repository root.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent


def test_mypy_strict_reports_no_errors() -> None:
    api = pytest.importorskip("mypy.api")
    stdout, stderr, status = api.run([
        "--config-file",
        str(REPO / "pyproject.toml"),
        "--cache-dir",
        "/dev/null",
        str(REPO / "concurry"),
    ])
    assert status == 0, stdout + stderr


def test_pyright_strict_reports_no_errors() -> None:
    pyright = Path(sys.executable).with_name("pyright")
    if not pyright.exists():
        pytest.skip("pyright is not installed")
    completed = subprocess.run(
        [str(pyright), "--outputjson", "-p", str(REPO / "pyrightconfig.json")],
        capture_output=True,
        text=True,
        cwd=REPO,
        timeout=600,
    )
    report = json.loads(completed.stdout)
    errors = [
        f"{d['file']}:{d['range']['start']['line'] + 1}: {d['message']} ({d.get('rule')})"
        for d in report["generalDiagnostics"]
        if d["severity"] == "error"
    ]
    assert not errors, "\n".join(errors)
    assert report["summary"]["filesAnalyzed"] > 0
