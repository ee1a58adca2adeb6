#!/usr/bin/env bash
# The test command: installs what is missing, builds, runs the unit and
# integration tests (the "heavy" label is left to bench/).
set -euo pipefail
cd "$(dirname "$0")/.."
BUILD_DIR=${BUILD_DIR:-build}

t0=$(date +%s)
bash scripts/setup.sh
t1=$(date +%s)
bash scripts/build.sh
t2=$(date +%s)
echo "set-up: $((t1 - t0)) s, build: $((t2 - t1)) s" >&2
ctest --test-dir "$BUILD_DIR" -L 'unit|integration' --output-on-failure \
  --timeout 600 -j "${TEST_JOBS:-2}"
t3=$(date +%s)
echo "tests: $((t3 - t2)) s" >&2
