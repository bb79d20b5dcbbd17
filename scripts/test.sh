#!/bin/sh
# Set up .venv (if needed) and run the whole test suite: runtime tests, the two-checker typing tests and the docs
# (every example runs; mkdocs build --strict).
set -eu
cd "$(dirname "$0")/.."
[ -x .venv/bin/python ] || python3 -m venv .venv
.venv/bin/python -m pip install --quiet --disable-pip-version-check -e '.[dev,ray,docs]'
exec .venv/bin/python -m pytest "$@"
