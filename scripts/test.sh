#!/usr/bin/env bash
# Runs every test: unit, daemon and (as root) the namespace/lab tests.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install-deps.sh
exec ${PYTHON:-python3} -m pytest -q "$@"
