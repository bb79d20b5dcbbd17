"""Every ```python block in docs/ (and in README.md) runs, and prints what the page says it prints.

Conventions (also described in docs/contributing.md):

- The ```python blocks of one page run in order in one namespace, so a later block may use what an earlier one
  defined. Each page runs as a fresh module, pickled by value like a script's ``__main__``.
- Expected output: a fence opened as ```text title="Output" right after a python block (blank lines between
  are allowed) holds exactly what that block prints. Trailing spaces and blank lines at the end are ignored.
  A python block without one may print anything; it must not raise.
- Skipping: the HTML comment ``<!-- docs-test: skip REASON -->`` on the line(s) before a block skips that block.
  The reason is required. The comment is invisible on the rendered page.
- Ray: pages whose code mentions ray share one local Ray (``ray.init(num_cpus=2, include_dashboard=False)``),
  started before the first such page and shut down after the last test of this module.
"""

from __future__ import annotations

import contextlib
import io
import re
import sys
import textwrap
import types
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator, Optional

import pytest

DOCS = Path(__file__).resolve().parent.parent / "docs"

FENCE = re.compile(r"^(?P<indent>[ \t]*)(?P<fence>`{3,})(?P<info>[^`\n]*)$")
SKIP = re.compile(r"<!--\s*docs-test:\s*skip\b(?P<reason>.*?)-->", re.S)
OUTPUT_INFO = re.compile(r'^text\s+title="Output"\s*$')


@dataclass
class Block:
    line: int  # 1-based line of the opening fence
    info: str
    code: str
    skip: Optional[str] = None
    expected: Optional[str] = None


def _fences(text: str) -> Iterator[tuple[int, int, str, str]]:
    """(start line index, end line index, info string, body) of each fenced block, nested indentation allowed."""
    lines = text.split("\n")
    i = 0
    while i < len(lines):
        match = FENCE.match(lines[i])
        if match and match["info"].strip():
            indent, fence, info = match["indent"], match["fence"], match["info"].strip()
            body = []
            j = i + 1
            while j < len(lines) and lines[j].strip() != fence:
                body.append(lines[j][len(indent):] if lines[j].startswith(indent) else lines[j])
                j += 1
            yield i, j, info, "\n".join(body)
            i = j + 1
        else:
            i += 1


def parse(text: str) -> list[Block]:
    """The python blocks of a page, each with its skip reason and expected output."""
    lines = text.split("\n")
    blocks: list[Block] = []
    previous_end = -1
    pending: Optional[Block] = None
    for start, end, info, body in _fences(text):
        between = "\n".join(lines[previous_end + 1:start])
        if pending is not None and OUTPUT_INFO.match(info) and not between.strip():
            pending.expected = body
            pending = None
            previous_end = end
            continue
        pending = None
        if info.split()[0] == "python":
            skip = SKIP.search(between)
            block = Block(start + 1, info, textwrap.dedent(body))
            if skip is not None:
                block.skip = skip["reason"].strip()
            blocks.append(block)
            pending = block
        previous_end = end
    return blocks


def _normal(text: str) -> str:
    return "\n".join(line.rstrip() for line in text.strip("\n").split("\n")).rstrip()


ROOT = DOCS.parent
PAGES = sorted(DOCS.rglob("*.md")) + [ROOT / "README.md"]


def _uses_ray(blocks: list[Block]) -> bool:
    return any(re.search(r"\bray\b", b.code) for b in blocks if b.skip is None)


@pytest.fixture(scope="module")
def shared_ray() -> Iterator[object]:
    """Starts one local Ray on first use and shuts it down after this module's last test."""
    state: dict[str, object] = {}

    def start() -> None:
        if "ray" not in state:
            ray = pytest.importorskip("ray")
            if not ray.is_initialized():
                ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
            state["ray"] = ray

    yield start
    if "ray" in state:
        state["ray"].shutdown()  # type: ignore[attr-defined]


def test_pages_found() -> None:
    assert PAGES, f"no pages under {DOCS}"


def test_parser_conventions() -> None:
    page = textwrap.dedent(
        '''
        ```python
        print(1)
        ```

        ```text title="Output"
        1
        ```

        <!-- docs-test: skip needs a GPU -->
        ```python
        boom()
        ```

        ```python
        x = 2
        ```
        '''
    )
    first, second, third = parse(page)
    assert (first.code.strip(), first.expected, first.skip) == ("print(1)", "1", None)
    assert second.skip == "needs a GPU" and second.expected is None
    assert third.skip is None and third.expected is None


@pytest.mark.timeout(120)
@pytest.mark.parametrize("page", PAGES, ids=[str(p.relative_to(ROOT)) for p in PAGES])
def test_page_examples(page: Path, shared_ray: object) -> None:
    blocks = parse(page.read_text())
    if not blocks:
        pytest.skip("no python blocks")
    if _uses_ray(blocks):
        shared_ray()  # type: ignore[operator]
    with page_module(page) as namespace:
        run_blocks(page, blocks, namespace)


@contextlib.contextmanager
def page_module(page: Path) -> Iterator[dict[str, object]]:
    """A fresh module for the page's code, as a user's script would be: registered in ``sys.modules`` (pydantic
    resolves a model's annotations there) and pickled by value (as ``__main__`` would be), so spawned children and
    Ray workers, which cannot import it, receive its classes and functions."""
    import cloudpickle

    name = f"docs_{'_'.join(page.relative_to(ROOT).with_suffix('').parts).replace('-', '_')}"
    module = types.ModuleType(name)
    sys.modules[name] = module
    cloudpickle.register_pickle_by_value(module)
    try:
        yield module.__dict__
    finally:
        cloudpickle.unregister_pickle_by_value(module)
        del sys.modules[name]


def run_blocks(page: Path, blocks: list[Block], namespace: dict[str, object]) -> None:
    for block in blocks:
        where = f"{page.relative_to(ROOT)}:{block.line}"
        if block.skip is not None:
            assert block.skip, f"{where}: a skip marker must say why the block cannot run"
            continue
        out = io.StringIO()
        try:
            with contextlib.redirect_stdout(out):
                exec(compile(block.code, where, "exec"), namespace)
        except BaseException as error:
            raise AssertionError(f"{where}: the example raised {type(error).__name__}: {error}\n"
                                 f"printed so far:\n{out.getvalue()}") from error
        if block.expected is not None:
            assert _normal(out.getvalue()) == _normal(block.expected), f"{where}: printed output differs"
