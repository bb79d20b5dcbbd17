"""The ``concurry`` command: ``concurry codegen`` writes, checks or shows generated code.

- ``concurry codegen PKG_OR_MODULE... --out DIR`` writes ``.pyi`` stubs for pyright (``stubPath``).
- ``concurry codegen PKG_OR_MODULE... --out DIR --check`` exits 1 and lists the stubs that are stale.
- ``concurry codegen --show module:Class [--mode M] [--blocking true|false]`` prints the proxy source the
  runtime generates for that worker.

Targets are module or package names, ``.py`` files or folders; each module is imported to find its workers.
"""

from __future__ import annotations

import argparse
import importlib
import os
import sys
from pathlib import Path
from typing import Optional, Sequence, TextIO

from concurry.core.option_modes import MODES

__all__ = ["main"]


def main(argv: Optional[Sequence[str]] = None) -> int:
    parser = _parser()
    args = parser.parse_args(argv)
    if args.command != "codegen":
        parser.print_help()
        return 2
    if "" not in sys.path and os.getcwd() not in sys.path:
        sys.path.insert(0, os.getcwd())  # as `python -m` does: module names resolve from where the command runs
    if args.show:
        if args.targets or args.check:
            parser.error("--show prints one worker's runtime proxies; give it no targets and no --check")
        return _show(args.show, args.mode, args.blocking, sys.stdout)
    if not args.targets:
        parser.error("give the modules, packages, files or folders to generate stubs for")
    if args.out is None:
        parser.error("--out DIR is required: stubs go to their own folder (pyright's stubPath), never beside the code")
    return _stubs(args.targets, Path(args.out), args.check, sys.stdout)


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="concurry", description="concurry command-line tools")
    commands = parser.add_subparsers(dest="command", required=True)
    codegen = commands.add_parser(
        "codegen",
        help="write or check .pyi stubs of worker modules, or show generated proxy source",
        description=(
            "Write .pyi stubs that give pyright the proxy types (Future[R] or R per method), "
            "or print the proxy source the runtime generates for one worker."
        ),
    )
    codegen.add_argument(
        "targets", nargs="*", metavar="PKG_OR_MODULE", help="module or package names, .py files, folders"
    )
    codegen.add_argument("--out", metavar="DIR", help="folder for the stubs (point pyright's stubPath at it)")
    codegen.add_argument("--check", action="store_true", help="write nothing; exit 1 listing stale stubs")
    codegen.add_argument("--show", metavar="MODULE:CLASS", help="print the runtime proxy source of a worker class")
    codegen.add_argument("--mode", choices=MODES, action="append", help="with --show: only this mode (repeatable)")
    codegen.add_argument(
        "--blocking", choices=("true", "false"), action="append", help="with --show: only this flavour (repeatable)"
    )
    return parser


def _stubs(targets: Sequence[str], out: Path, check: bool, output: TextIO) -> int:
    from concurry.codegen.stubs import CodegenError, generate_stubs, stale_stubs, write_stubs

    try:
        generated = generate_stubs(targets)
    except CodegenError as error:
        print(f"concurry codegen: error: {error}", file=sys.stderr)
        return 1
    if check:
        problems = stale_stubs(generated, out)
        if problems:
            print("concurry codegen: stale stubs (run the same command without --check to update them):", file=output)
            for problem in problems:
                print(f"  {problem}", file=output)
            return 1
        print(f"concurry codegen: {len(generated.stubs)} stub(s) in {out} are up to date", file=output)
        return 0
    written = write_stubs(generated, out)
    for path in written:
        print(f"wrote {path}", file=output)
    print(f"concurry codegen: {len(generated.stubs)} stub(s) in {out}, {len(written)} updated", file=output)
    return 0


def _show(target: str, modes: Optional[list[str]], blocking: Optional[list[str]], output: TextIO) -> int:
    from concurry.codegen.runtime import render_proxy_source
    from concurry.codegen.spec import spec_of
    from concurry.core.worker import Worker

    module_name, _, class_name = target.partition(":")
    if not module_name or not class_name:
        print(
            f"concurry codegen: error: --show takes MODULE:CLASS (e.g. app.workers:Cache), got {target!r}",
            file=sys.stderr,
        )
        return 1
    try:
        module = importlib.import_module(module_name)
    except Exception as error:
        print(f"concurry codegen: error: cannot import {module_name}: {type(error).__name__}: {error}", file=sys.stderr)
        return 1
    cls = getattr(module, class_name, None)
    if not (isinstance(cls, type) and issubclass(cls, Worker)):
        print(f"concurry codegen: error: {target} is not a worker class", file=sys.stderr)
        return 1
    spec = spec_of(cls)
    flavours = [flag == "true" for flag in blocking] if blocking else [False, True]
    for mode in modes or MODES:
        for flag in flavours:
            source, defaults = render_proxy_source(spec, mode, flag)
            print(f"# --- {target}, mode={mode!r}, blocking={flag} ---", file=output)
            output.write(source)
            if defaults:
                print(f"# _defaults = {defaults!r}", file=output)
            print(file=output)
    return 0
