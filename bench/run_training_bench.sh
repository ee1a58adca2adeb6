#!/usr/bin/env bash
# Training: ours (build/bench/training_bench, the worker's training loop)
# beside the same network in Python PyTorch (bench/training_baseline.py,
# Debian's python3-torch: the same LibTorch 1.13), on the same uint8
# features, for the classification default at 32x32 grayscale and
# MobileNetV2 alpha 0.35 at 96x96 RGB.
#
# The features are made once by the worker's processing (features_bench
# --count N --out), training_bench exports them (.npy) with the layer graph
# (JSON) for the baseline, so both sides train the same architecture on the
# same bytes. Each configuration runs REPEATS rounds, interleaved (ours,
# python DataLoader, python index, ours, ...), each side's median is
# reported and the ratio is against the faster Python variant. Both sides
# use every core and OMP_WAIT_POLICY=PASSIVE, as the worker runs. Prints a
# table and writes it to bench/results/training.txt.
#
#   bash bench/run_training_bench.sh [--data DIR] [--repeats N]
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
data=/usr/share/datasets/fashion-mnist
repeats=3
while [ $# -gt 0 ]; do
  case "$1" in
    --data) data=$2; shift 2 ;;
    --repeats) repeats=$2; shift 2 ;;
    *) echo "usage: $0 [--data DIR] [--repeats N]" >&2; exit 2 ;;
  esac
done

# Debian's Python and PyTorch: the LibTorch ours links. (A pyenv or venv
# python3 on PATH would not see python3-torch.)
python=/usr/bin/python3
bash "$root/scripts/setup.sh" python3 python3-numpy python3-torch

# Two jobs at most: the machine may be shared.
if [ ! -f "$root/build/build.ninja" ]; then
  cmake -S "$root" -B "$root/build" -G Ninja >/dev/null
fi
ninja -C "$root/build" -j2 features_bench training_bench >/dev/null

# The worker runs LibTorch's OpenMP threads passive; so do both sides here.
export OMP_WAIT_POLICY=PASSIVE
cores=$(nproc)
runs=$(mktemp)
scratch=$(mktemp -d)
trap 'rm -rf "$runs" "$scratch"' EXIT

run() {
  local line
  line=$("$@")
  echo "$line" >>"$runs"
  echo "  $line" >&2
}

# name size color impulse rows warmup batches
configs=(
  "default-32 32 grayscale $root/examples/fashion-mnist.yaml 12800 5 150"
  "mobilenetv2-0.35-96 96 rgb $root/bench/training_mobilenetv2.yaml 1280 2 8"
)
for config in "${configs[@]}"; do
  read -r name size color impulse rows warmup batches <<<"$config"
  "$root/build/bench/features_bench" --data "$data" --size "$size" --color "$color" \
    --count "$rows" --out "$scratch/$name.bin" >/dev/null
  "$root/build/bench/training_bench" --features "$scratch/$name.bin" --impulse "$impulse" \
    --rows "$rows" --batches 0 --dump-model "$scratch/$name.json" --export-npy "$scratch/$name"
  batch=$("$python" -c "import sys, re; print(re.search(r'batch_size: *(\d+)', open(sys.argv[1]).read()).group(1))" "$impulse")
  echo "bench: $name, $rows rows, batch $batch, $warmup warm-up + $batches timed batches," \
    "$repeats rounds" >&2
  for ((i = 0; i < repeats; i++)); do
    run "$root/build/bench/training_bench" --features "$scratch/$name.bin" --impulse "$impulse" \
      --config "$name" --rows "$rows" --warmup "$warmup" --batches "$batches" --threads "$cores"
    for loader in dataloader index; do
      run "$python" "$root/bench/training_baseline.py" --model "$scratch/$name.json" \
        --data "$scratch/$name" --config "$name" --batch "$batch" --warmup "$warmup" \
        --batches "$batches" --loader "$loader"
    done
  done
done

mkdir -p "$root/bench/results"
"$python" - "$runs" "$cores" "$repeats" <<'EOF' | tee "$root/bench/results/training.txt"
import json, platform, statistics, sys, time
runs_path, cores, repeats = sys.argv[1:]
runs = [json.loads(line) for line in open(runs_path)]

def median(config, side, loader=None):
    return statistics.median(r["images_per_s"] for r in runs
                             if r["config"] == config and r["side"] == side
                             and (loader is None or r.get("loader") == loader))

cpu = next((l.split(":", 1)[1].strip() for l in open("/proc/cpuinfo")
            if l.startswith("model name")), platform.machine())
print(f"training_bench, {time.strftime('%Y-%m-%d %H:%M')}, {cores} cores ({cpu}), "
      f"median of {repeats} interleaved rounds, steady-state training images/s")
print()
header = ("config", "ours img/s", "python img/s", "python variant", "ratio",
          "python DataLoader", "python index")
print("| " + " | ".join(header) + " |")
print("|" + "|".join("---" for _ in header) + "|")
for config in dict.fromkeys(r["config"] for r in runs):
    ours = median(config, "ours")
    loader = median(config, "python", "dataloader")
    index = median(config, "python", "index")
    best, variant = (loader, "DataLoader") if loader >= index else (index, "index")
    print(f"| {config} | {ours:,.1f} | {best:,.1f} | {variant} | {ours / best:.2f}x "
          f"| {loader:,.1f} | {index:,.1f} |")
EOF
