#!/bin/sh
# Set up .venv (if needed) and run the whole test suite: runtime tests and the two-checker typing tests.
set -eu
cd "$(dirname "$0")/.."
[ -x .venv/bin/python ] || python3 -m venv .venv
.venv/bin/python -m pip install --quiet --disable-pip-version-check -e '.[dev,ray]'
exec .venv/bin/python -m pytest "$@"
