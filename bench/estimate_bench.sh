#!/usr/bin/env bash
# Estimate quality: the compute-time estimate a job gets at submit against
# the worker-seconds it was charged, for jobs of different sizes (input
# size, colour, architecture, width multiplier, epochs, rows), on a local
# cluster of one worker (docs/COMPUTE.md, "Estimates").
#
#   bash bench/estimate_bench.sh [--threads T] [--only NAME,NAME] [--no-prepare]
#
# --no-prepare skips scripts/prepare.sh (set-up and build) when the
# coordinator, worker and client are built already.
#
# 1. Fashion-MNIST subsets of 1 000 to 10 000 training images.
# 2. A cluster whose worker reports no cost table (--calibrate never):
#    `impulse-client estimate` of every job gives the default table's
#    estimate. The cluster is stopped and started again with the worker
#    measuring its table (--calibrate always), and every job is estimated
#    again, then submitted and followed to the end.
# 3. bench/estimate_table.py prints estimated vs charged seconds and their
#    ratio per job, with the stages, into bench/results/estimate/table.md.
set -euo pipefail
cd "$(dirname "$0")/.."

THREADS=""
ONLY=""
PREPARE=1
while [ $# -gt 0 ]; do
  case "$1" in
    --threads) THREADS=$2; shift 2 ;;
    --only) ONLY=",$2,"; shift 2 ;;
    --no-prepare) PREPARE=0; shift ;;
    *) echo "usage: bash bench/estimate_bench.sh [--threads T] [--only NAME,NAME] [--no-prepare]" >&2
       exit 2 ;;
  esac
done

bash scripts/setup.sh python3 python3-numpy
[ "$PREPARE" = 1 ] && bash scripts/prepare.sh

WORK=bench/results/estimate
STATE=$WORK/cluster
rm -rf "$WORK"
mkdir -p "$WORK"
# The binaries run from a copy: one consistent build for the whole run,
# whatever is rebuilt meanwhile.
for binary in client/impulse-client coordinator/impulse-coordinator worker/impulse-worker; do
  mkdir -p "$WORK/bin/$(dirname "$binary")"
  cp "${BUILD_DIR:-build}/$binary" "$WORK/bin/$binary"
done
export BUILD_DIR=$PWD/$WORK/bin

subset() {  # subset NAME TRAIN_PER_CLASS TEST_PER_CLASS [CLASSES]
  /usr/bin/python3 bench/fashion_subset.py --classes "${4:-0,1,2,3,4,5,6,7,8,9}" \
    --train-per-class "$2" --test-per-class "$3" --out "$WORK/data-$1"
}
subset 1k 100 20
subset 2k 200 50
subset 5k 500 50
subset 10k 1000 100

# name|data|extra client flags|impulse (input, processing, learning, training)
JOBS=(
  "cnn-28|5k||input: {width: 28, height: 28}, processing: {block: image, color: grayscale}, learning: {block: classification}, training: {epochs: 5}"
  "cnn-32-aug|2k||input: {width: 32, height: 32}, processing: {block: image, color: grayscale}, learning: {block: classification}, training: {epochs: 10, augmentation: true}"
  "cnn-48|2k||input: {width: 48, height: 48}, processing: {block: image, color: grayscale}, learning: {block: classification}, training: {epochs: 3}"
  "cnn-64-rgb|1k||input: {width: 64, height: 64}, processing: {block: image, color: rgb}, learning: {block: classification}, training: {epochs: 3, batch_size: 32}"
  "narrow-32|10k||input: {width: 32, height: 32, resize: fit-shortest}, processing: {block: image, color: grayscale}, learning: {block: classification, conv: [{filters: 8, pool: 2}, {filters: 16, pool: 2}], dense_layers: [{neurons: 32}]}, training: {epochs: 3}"
  "wide-32|2k||input: {width: 32, height: 32, resize: fit-longest}, processing: {block: image, color: grayscale}, learning: {block: classification, conv: [{filters: 32, pool: 2}, {filters: 64, pool: 2}, {filters: 128, pool: 2}], dense_layers: [{neurons: 64}]}, training: {epochs: 3}"
  "dense-28|10k||input: {width: 28, height: 28}, processing: {block: raw, color: grayscale}, learning: {block: classification}, training: {epochs: 10}"
  "mnv2-0.35-96|1k||input: {width: 96, height: 96}, processing: {block: image, color: rgb}, learning: {block: transfer, backbone: mobilenet_v2, alpha: 0.35}, training: {epochs: 2, batch_size: 32}"
  "mnv2-0.1-64|2k||input: {width: 64, height: 64}, processing: {block: image, color: grayscale}, learning: {block: transfer, backbone: mobilenet_v2, alpha: 0.1, dense: 16}, training: {epochs: 3, batch_size: 32}"
  "mnv1-0.25-64|2k||input: {width: 64, height: 64}, processing: {block: image, color: grayscale}, learning: {block: transfer, backbone: mobilenet_v1, alpha: 0.25}, training: {epochs: 3, batch_size: 32}"
  "mnv2-0.35-32|5k|--save-weights est-mnv2|input: {width: 32, height: 32}, processing: {block: image, color: grayscale}, learning: {block: transfer, backbone: mobilenet_v2, alpha: 0.35}, training: {epochs: 2, batch_size: 32}"
  "mnv2-0.35-32-frozen|2k||input: {width: 32, height: 32, resize: fit-shortest}, processing: {block: image, color: grayscale}, learning: {block: transfer, backbone: mobilenet_v2, alpha: 0.35, weights: est-mnv2, frozen_epochs: 4}, training: {epochs: 4, batch_size: 32}"
)

selected() { [ -z "$ONLY" ] || [[ "$ONLY" == *",$1,"* ]]; }

for job in "${JOBS[@]}"; do  # a YAML flow mapping is an impulse file too
  IFS='|' read -r name _ _ body <<<"$job"
  printf '{name: %s, %s}\n' "$name" "$body" >"$WORK/$name.yaml"
done

up() {  # up CALIBRATE: the cluster's address
  local threads=()
  [ -n "$THREADS" ] && threads=(--threads "$THREADS")
  deploy/local-cluster up --workers 1 "${threads[@]}" --state-dir "$STATE" \
    --worker-args "--calibrate $1" | tail -n 1
}
trap 'deploy/local-cluster down --state-dir "$STATE" >/dev/null 2>&1 || true' EXIT
client() { "$BUILD_DIR/client/impulse-client" --coordinator "$address" --project estimate-bench "$@"; }

estimate_all() {  # estimate_all SUFFIX
  for job in "${JOBS[@]}"; do
    IFS='|' read -r name data _ _ <<<"$job"
    selected "$name" || continue
    client --json estimate "$WORK/$name.yaml" --data "$WORK/data-$data" \
      >"$WORK/$name.$1.json" 2>>"$WORK/client.log"
  done
}

# The default table: the worker reports none and nothing is cached yet.
address=$(up never)
estimate_all default
deploy/local-cluster down --state-dir "$STATE" >/dev/null
address=$(up always)
# Estimate as a job would be submitted: the worker has registered its table.
for _ in $(seq 1 60); do
  client --json workers | grep -q cost_table && break
  sleep 1
done

: >"$WORK/results.jsonl"
for job in "${JOBS[@]}"; do
  IFS='|' read -r name data flags _ <<<"$job"
  selected "$name" || continue
  client --json estimate "$WORK/$name.yaml" --data "$WORK/data-$data" \
    >"$WORK/$name.calibrated.json" 2>>"$WORK/client.log"
  # shellcheck disable=SC2086
  id=$(client --json submit "$WORK/$name.yaml" --data "$WORK/data-$data" $flags 2>>"$WORK/client.log" |
    /usr/bin/python3 -c 'import json, sys; print(json.load(sys.stdin)["id"])')
  client watch "$id" >/dev/null 2>>"$WORK/client.log" || true
  client --json status "$id" >"$WORK/$name.job.json"
  /usr/bin/python3 - "$name" "$data" "$WORK" >>"$WORK/results.jsonl" <<'PY'
import json, sys
name, data, work = sys.argv[1:4]
load = lambda suffix: json.load(open(f"{work}/{name}.{suffix}.json"))
print(json.dumps({"name": name, "data": data, "default": load("default"),
                  "calibrated": load("calibrated"), "job": load("job")}))
PY
  echo "$name: done" >&2
done
client --json workers >"$WORK/workers.json"

{
  echo "$(date '+%F %H:%M'), $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //'), load average at the end: $(cut -d' ' -f1-3 /proc/loadavg)"
  echo
  /usr/bin/python3 bench/estimate_table.py "$WORK/results.jsonl"
} | tee "$WORK/table.md"
