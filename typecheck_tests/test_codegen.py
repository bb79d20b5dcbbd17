"""``concurry codegen``: the committed stubs of examples/ are current, and every way of calling it behaves."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

from checkers import REPO

from concurry.codegen.cli import main
from concurry.core.option_modes import MODE_SPECIFIC, MODES
from concurry.core.options import WorkerOptions


def test_committed_stubs_of_the_examples_are_current() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "concurry.codegen", "examples", "--out", "stubs", "--check"],
        cwd=REPO,
        capture_output=True,
        text=True,
    )
    assert result.returncode == 0, result.stdout + result.stderr


def _worker_module(folder: Path, name: str = "shop") -> Path:
    path = folder / f"{name}.py"
    path.write_text(
        "from concurry import Worker\n\n\n"
        "class Till(Worker):\n"
        "    def __init__(self, float_: int) -> None:\n"
        "        self.float_ = float_\n\n"
        "    def pay(self, amount: int) -> int:\n"
        "        return self.float_ + amount\n",
        encoding="utf-8",
    )
    return path


def test_check_lists_missing_stale_and_leftover_stubs(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    source = _worker_module(tmp_path)
    out = tmp_path / "typings"
    assert main(["codegen", str(source), "--out", str(out), "--check"]) == 1
    assert f"{out / 'shop.pyi'}: missing" in capsys.readouterr().out

    assert main(["codegen", str(source), "--out", str(out)]) == 0
    assert main(["codegen", str(source), "--out", str(out), "--check"]) == 0
    stub = (out / "shop.pyi").read_text(encoding="utf-8")
    assert "def pay(self, amount: int | _concurry_FutureOf[int]) -> _concurry_Future[int]: ..." in stub
    assert "def pay(self, amount: int | _concurry_FutureOf[int]) -> int: ..." in stub
    ast.parse(stub)

    (out / "shop.pyi").write_text(stub.replace("amount: int", "amount: str"), encoding="utf-8")
    capsys.readouterr()
    assert main(["codegen", str(source), "--out", str(out), "--check"]) == 1
    assert f"{out / 'shop.pyi'}: out of date" in capsys.readouterr().out

    (out / "shop.pyi").write_text(stub, encoding="utf-8")
    source.write_text("TILLS = 2\n", encoding="utf-8")
    _worker_module(tmp_path, "other")
    sys.modules.pop("shop", None)
    capsys.readouterr()
    assert main(["codegen", str(tmp_path), "--out", str(out), "--check"]) == 1
    assert f"{out / 'shop.pyi'}: its module has no workers any more" in capsys.readouterr().out
    assert main(["codegen", str(tmp_path), "--out", str(out)]) == 0
    assert not (out / "shop.pyi").exists() and (out / "other.pyi").exists()


def test_a_module_that_does_not_import(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "broken.py").write_text("import not_a_module_anywhere\n", encoding="utf-8")
    assert main(["codegen", str(tmp_path / "broken.py"), "--out", str(tmp_path / "out")]) == 1
    assert capsys.readouterr().err == (
        "concurry codegen: error: cannot import broken: ModuleNotFoundError: No module named "
        "'not_a_module_anywhere' (codegen imports each module to find its workers; run it where the module "
        "imports)\n"
    )
    assert not (tmp_path / "out").exists()


def test_a_module_without_workers(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    assert main(["codegen", "json.decoder", "--out", str(tmp_path)]) == 1
    assert capsys.readouterr().err == (
        "concurry codegen: error: json.decoder defines no worker classes (subclasses of concurry.Worker or "
        "@worker classes), so it needs no stub\n"
    )
    assert main(["codegen", "json", "--out", str(tmp_path)]) == 1
    assert capsys.readouterr().err == "concurry codegen: error: no worker classes found in json: nothing to generate\n"


def test_show_prints_the_runtime_proxy_source(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(sys, "path", [str(REPO / "examples"), *sys.path])
    assert main(["codegen", "--show", "typed_workers:Counter", "--mode", "thread", "--blocking", "true"]) == 0
    shown = capsys.readouterr().out
    assert shown.startswith("# --- typed_workers:Counter, mode='thread', blocking=True ---\n")
    assert "class CounterThreadBlockingProxy(_base):" in shown
    assert '        return self._submit("add", (amount,), None).result()\n' in shown
    assert main(["codegen", "--show", "typed_workers:Counter"]) == 0
    assert capsys.readouterr().out.count("# --- typed_workers:Counter") == 2 * len(MODES)


def test_show_rejects_what_is_not_a_worker(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["codegen", "--show", "json:JSONDecoder"]) == 1
    assert capsys.readouterr().err == "concurry codegen: error: json:JSONDecoder is not a worker class\n"


def test_library_options_overloads_follow_the_options_and_their_modes() -> None:
    """Each (mode, blocking) overload of Worker.options takes exactly the options that apply to its mode."""
    from concurry.codegen.stubs import library_options

    overloads = library_options()
    assert len(overloads) == 3 * len(MODES)
    seen: set[tuple[str, str]] = set()
    for params, flag in overloads:
        names = [name for name, _, _, _ in params]
        mode = next(annotation for name, annotation, _, _ in params if name == "mode")
        mode_name = ast.literal_eval(mode.removeprefix("Literal[").removesuffix("]"))
        expected = [o for o in WorkerOptions.model_fields if mode_name in MODE_SPECIFIC.get(o, MODES)]
        assert sorted(names) == sorted(expected), (mode_name, flag)
        seen.add((mode_name, flag))
    assert seen == {(m, f) for m in MODES for f in ("Literal[True]", "Literal[False]", "bool")}


def test_module_names_resolve_from_the_working_folder(tmp_path: Path) -> None:
    package = tmp_path / "app"
    package.mkdir()
    (package / "__init__.py").write_text("", encoding="utf-8")
    _worker_module(package)
    (package / "helpers.py").write_text("def helper() -> int:\n    return 1\n", encoding="utf-8")
    concurry = str(Path(sys.executable).with_name("concurry"))
    for target in ("app", "app.shop"):
        command = [concurry, "codegen", target, "--out", target]
        result = subprocess.run(command, cwd=tmp_path, capture_output=True, text=True)
        assert result.returncode == 0, result.stderr
        written = sorted(p.relative_to(tmp_path / target).as_posix() for p in (tmp_path / target).rglob("*.pyi"))
        assert written == ["app/__init__.pyi", "app/shop.pyi"]  # the package's own stub keeps its names visible
        assert "# The package's own stub" in (tmp_path / target / "app" / "__init__.pyi").read_text(encoding="utf-8")
