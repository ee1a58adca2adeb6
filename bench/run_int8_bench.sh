#!/usr/bin/env bash
# Int8 inference: the emitted C library (gcc -O2, one thread), the worker's
# interpreter (every core), float32 LibTorch (every core) and
# onnxruntime-node on model_i8.onnx (every core, batch 1 and 256), on the
# same model and the same Fashion-MNIST test images, in interleaved rounds
# (build/bench/int8_bench; bench/README.md explains each side). Two models:
# the example impulse's default network at 32x32 grayscale and MobileNetV2
# alpha 0.35 at 96x96 RGB, each trained briefly by the train task (speed
# does not depend on accuracy; calibration needs real weights). Prints a
# table and writes it to bench/results/int8.txt.
#
#   bash bench/run_int8_bench.sh [--data DIR] [--rounds N] [--skip-build]
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
data=/usr/share/datasets/fashion-mnist
rounds=3
build=1
while [ $# -gt 0 ]; do
  case "$1" in
    --data) data=$2; shift 2 ;;
    --rounds) rounds=$2; shift 2 ;;
    --skip-build) build=0; shift ;;
    *) echo "usage: $0 [--data DIR] [--rounds N] [--skip-build]" >&2; exit 2 ;;
  esac
done

bash "$root/scripts/setup.sh"
if [ "$build" = 1 ]; then
  if [ ! -f "$root/build/build.ninja" ]; then
    cmake -S "$root" -B "$root/build" -G Ninja >/dev/null
  fi
  # Two jobs at most: the machine may be shared.
  ninja -C "$root/build" -j2 int8_bench >/dev/null
fi

# onnxruntime-node where the agreement tests install it (same version, same
# flags: --ignore-scripts skips its GPU download; the CPU library is inside).
ort_dir="$root/build/onnxruntime-node"
mkdir -p "$ort_dir"
flock "$ort_dir.lock" sh -c "grep -q '\"version\": \"1.30.0\"' \
  '$ort_dir/node_modules/onnxruntime-node/package.json' 2>/dev/null ||
  npm install --prefix '$ort_dir' --ignore-scripts --no-audit --no-fund --loglevel=error \
    onnxruntime-node@1.30.0"

# LibTorch runs its OpenMP threads passive, as the worker does.
export OMP_WAIT_POLICY=PASSIVE
cores=$(nproc)
scratch=$(mktemp -d)
trap 'rm -rf "$scratch"' EXIT
table=$(mktemp -p "$scratch")

# name impulse train-images epochs test-images
configs=(
  "default-32 $root/examples/fashion-mnist.yaml 12000 1 10000"
  "mobilenetv2-0.35-96 $root/bench/training_mobilenetv2.yaml 4000 2 1000"
)
for config in "${configs[@]}"; do
  read -r name impulse train epochs test <<<"$config"
  "$root/build/bench/int8_bench" --impulse "$impulse" --config "$name" --data "$data" \
    --train-images "$train" --epochs "$epochs" --test-images "$test" --rounds "$rounds" \
    --node-path "$ort_dir/node_modules" --out "$scratch/$name" >>"$table"
done

mkdir -p "$root/bench/results"
{
  cpu=$(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ *//')
  echo "int8_bench, $(date '+%Y-%m-%d %H:%M'), $cores cores ($cpu), $rounds interleaved" \
    "rounds: median images/s per side, median of the per-round ratios"
  echo
  echo "| config | MMAC/img | C library 1 thread | interpreter $cores threads | LibTorch f32 |" \
    "ORT int8 (best batch) | C / LibTorch | C / ORT | interp / LibTorch | interp / ORT |"
  echo "|---|---|---|---|---|---|---|---|---|---|"
  grep '^|' "$table"
  echo
  grep -v '^|' "$table"
} | tee "$root/bench/results/int8.txt"
