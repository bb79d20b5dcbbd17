from __future__ import annotations

import pytest

from checkers import (
    CASES,
    EXAMPLES,
    Runs,
    case_files,
    finish_pyright,
    mypy_config,
    pyright_config,
    run_mypy,
    start_pyright,
)


@pytest.fixture(scope="session")
def runs(tmp_path_factory: pytest.TempPathFactory) -> Runs:
    from concurry.codegen.cli import main

    folder = tmp_path_factory.mktemp("typecheck")
    stubs = folder / "stubs"
    assert main(["codegen", str(CASES / "workers.py"), str(EXAMPLES[0]), "--out", str(stubs)]) == 0
    files = [*case_files(), CASES / "workers.py", *EXAMPLES]
    pyright = start_pyright(pyright_config(folder, stubs, files))
    config = mypy_config(folder)
    mypy = run_mypy(files, config)
    return Runs(mypy=mypy, pyright=finish_pyright(pyright), mypy_config=config, files=files)
