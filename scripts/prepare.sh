#!/usr/bin/env bash
# Set-up and build, each timed apart: what both of the README's commands do
# before their own work. Arguments are extra packages for scripts/setup.sh.
set -euo pipefail
cd "$(dirname "$0")/.."
t0=$(date +%s)
bash scripts/setup.sh "$@"
t1=$(date +%s)
bash scripts/build.sh
t2=$(date +%s)
echo "set-up: $((t1 - t0)) s, build: $((t2 - t1)) s" >&2
