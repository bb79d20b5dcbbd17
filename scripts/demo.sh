#!/bin/sh
# Set up .venv (if needed) and run the feature tour in examples/tour.py, Ray included.
set -eu
cd "$(dirname "$0")/.."
[ -x .venv/bin/python ] || python3 -m venv .venv
.venv/bin/python -m pip install --quiet --disable-pip-version-check -e '.[ray]'
exec .venv/bin/python examples/tour.py
