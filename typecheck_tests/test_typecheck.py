"""mypy + plugin and pyright + generated stubs give the same, exact answers on every case file."""

from __future__ import annotations

from pathlib import Path

import pytest

from checkers import CASES, Report, Runs, case_files, expected_error_lines, mypy_config, run_mypy

CASE_NAMES = [path.name for path in case_files()]


def _mismatch(report: Report, path: Path) -> str:
    expected = expected_error_lines(path)
    actual = report.lines(path.name)
    lines = path.read_text(encoding="utf-8").splitlines()
    problems: list[str] = []
    for number in sorted(set(actual) - expected):
        problems.append(f"  line {number}: unexpected error: {lines[number - 1].strip()}")
        problems.extend(f"      {message}" for message in actual[number])
    for number in sorted(expected - set(actual)):
        problems.append(f"  line {number}: expected an error, got none: {lines[number - 1].strip()}")
    return "\n".join(problems)


@pytest.mark.parametrize("checker", ["mypy", "pyright"])
@pytest.mark.parametrize("case", CASE_NAMES)
def test_errors_exactly_on_marked_lines(runs: Runs, checker: str, case: str) -> None:
    report: Report = getattr(runs, checker)
    problems = _mismatch(report, CASES / case)
    assert not problems, f"{checker} on {case}:\n{problems}"


@pytest.mark.parametrize("case", CASE_NAMES)
def test_checkers_agree(runs: Runs, case: str) -> None:
    mypy_lines = set(runs.mypy.lines(case))
    pyright_lines = set(runs.pyright.lines(case))
    assert mypy_lines == pyright_lines, (
        f"only mypy: {sorted(mypy_lines - pyright_lines)}, only pyright: {sorted(pyright_lines - mypy_lines)}"
    )


@pytest.mark.parametrize("module", ["workers.py", "typed_workers.py", "typed_app.py"])
def test_workers_and_the_typed_example_are_clean(runs: Runs, module: str) -> None:
    assert runs.mypy.lines(module) == {}
    assert runs.pyright.lines(module) == {}


def test_suite_size() -> None:
    """The suite keeps at least 60 exact type expectations and 20 expected errors."""
    texts = [path.read_text(encoding="utf-8") for path in case_files()]
    assert sum(text.count("assert_type(") for text in texts) >= 60
    assert sum(len(expected_error_lines(path)) for path in case_files()) >= 20


def test_incremental_run_gives_the_same_report(runs: Runs) -> None:
    """A second mypy run, from the cache the first one wrote, reports exactly the same."""
    warm = run_mypy(runs.files, runs.mypy_config)
    assert warm.errors == runs.mypy.errors, warm.raw


def test_plugin_messages(runs: Runs) -> None:
    """The plugin names the problem in plain words."""
    options = runs.mypy.lines("case_options.py")
    members = runs.mypy.lines("case_members.py")
    text = (CASES / "case_options.py").read_text(encoding="utf-8").splitlines()
    line_of = {line.split("  #")[0].strip(): number for number, line in enumerate(text, start=1)}
    assert options[line_of['DataProcessor.options(mode="thread", mp_context="spawn")']] == [
        'Option "mp_context" applies only to mode="process", not to mode="thread"  [concurry-option]'
    ]
    assert options[line_of['DataProcessor.options(mode="threads")']] == [
        'Worker mode "threads" does not exist; use one of "sync", "thread", "asyncio", "process", "ray"  '
        "[concurry-option]"
    ]
    member_text = (CASES / "case_members.py").read_text(encoding="utf-8").splitlines()
    member_line = {line.split("  #")[0].strip(): number for number, line in enumerate(member_text, start=1)}
    assert members[member_line["w.nonexistent(1)"]] == [
        'Worker "DataProcessor" has no public method or attribute "nonexistent"  [attr-defined]'
    ]


def test_alongside_pydantic_plugin(runs: Runs) -> None:
    """With pydantic's mypy plugin enabled too, proxies are typed the same (pydantic's own init rules aside)."""
    cases = [CASES / "case_members.py", CASES / "case_modes.py", CASES / "case_tasks.py"]
    report = run_mypy([*cases, CASES / "workers.py"], mypy_config(runs.mypy_config.parent, with_pydantic=True))
    for case in cases:
        problems = _mismatch(report, case)
        assert not problems, f"mypy with pydantic.mypy on {case.name}:\n{problems}"


def test_incremental_run_sees_a_changed_worker(tmp_path: Path) -> None:
    """From a warm cache, a changed worker method changes the proxy's types where the worker is used."""
    (tmp_path / "shop.py").write_text(
        "from concurry import Worker\n\n\nclass Till(Worker):\n    def pay(self, amount: int) -> int:\n"
        "        return amount\n",
        encoding="utf-8",
    )
    (tmp_path / "use.py").write_text(
        "from typing_extensions import assert_type\n\nfrom concurry import Future\nfrom shop import Till\n\n"
        'assert_type(Till.options(mode="thread").init().pay(1), Future[int])\n',
        encoding="utf-8",
    )
    files = [tmp_path / "use.py", tmp_path / "shop.py"]
    config = mypy_config(tmp_path)
    assert run_mypy(files, config).errors == {}
    changed = (tmp_path / "shop.py").read_text(encoding="utf-8").replace("-> int:", "-> str:")
    (tmp_path / "shop.py").write_text(changed.replace("return amount", "return str(amount)"), encoding="utf-8")
    assert run_mypy(files, config).errors == {
        "use.py": {6: ['Expression is of type "Future[str]", not "Future[int]"  [assert-type]']}
    }
