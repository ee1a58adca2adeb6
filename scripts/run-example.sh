#!/usr/bin/env bash
# The main job: installs what is missing, builds, starts a local cluster
# (Redis, coordinator, workers), trains the example Fashion-MNIST impulse on
# it (features, training, evaluation, export) and prints the results;
# artifacts and metrics.json land in out/fashion-mnist/.
#
#   bash scripts/run-example.sh [--workers N] [--out DIR]
set -euo pipefail
cd "$(dirname "$0")/.."

WORKERS=1
OUT=out/fashion-mnist
while [ $# -gt 0 ]; do
  case "$1" in
    --workers) WORKERS=$2; shift 2 ;;
    --out) OUT=$2; shift 2 ;;
    *) echo "usage: bash scripts/run-example.sh [--workers N] [--out DIR]" >&2; exit 2 ;;
  esac
done

# The Cortex-M cross compiler gives the example's target (cortex-m4f-80mhz)
# a flash figure measured from the compiled C library (docs/DEVICES.md).
bash scripts/prepare.sh gcc-arm-none-eabi libnewlib-arm-none-eabi

address=$(deploy/local-cluster up --workers "$WORKERS" | tail -n 1)
echo "cluster up: coordinator at $address (deploy/local-cluster down stops it)" >&2

start=$(date +%s.%N)
build/client/impulse-client --coordinator "$address" \
  submit examples/fashion-mnist.yaml \
  --data /usr/share/datasets/fashion-mnist --wait --out "$OUT"
end=$(date +%s.%N)
awk -v s="$start" -v e="$end" -v out="$OUT" \
  'BEGIN { printf "main job: %.1f s from submit to artifacts in %s\n", e - s, out }' >&2
ls -l "$OUT" >&2
