#!/usr/bin/env bash
# Runs every test: the type check of fswan/, then unit, daemon and (as root) the namespace/lab tests.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install-deps.sh
${PYTHON:-python3} -m mypy   # configuration in setup.cfg: all of fswan/, zero errors
exec ${PYTHON:-python3} -m pytest -q "$@"
