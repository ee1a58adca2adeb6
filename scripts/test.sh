#!/usr/bin/env bash
# The test command: installs what is missing, builds, runs the unit and
# integration tests (the "heavy" label is left to bench/).
set -euo pipefail
cd "$(dirname "$0")/.."
BUILD_DIR=${BUILD_DIR:-build}

bash scripts/prepare.sh
t2=$(date +%s)
ctest --test-dir "$BUILD_DIR" -L 'unit|integration' --output-on-failure \
  --timeout 600 -j "${TEST_JOBS:-2}"
t3=$(date +%s)
echo "tests: $((t3 - t2)) s" >&2
