#!/usr/bin/env bash
# Feature generation: ours (build/bench/features_bench, the worker's path)
# beside a Python + OpenCV loop (bench/features_baseline.py), on the 60 000
# Fashion-MNIST training images, for 28->32 grayscale and 28->96 RGB.
#
# Each configuration runs REPEATS times, interleaved (ours, python plain loop,
# python Pool, ours, ...) so a noisy neighbour hits every side alike; each
# side's median is reported, and the ratio is against the faster of the two
# Python variants. Both sides use every core. Prints a table and writes it to
# bench/results/features.txt.
#
#   bash bench/run_features_bench.sh [--data DIR] [--repeats N]
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

# Debian's Python and its OpenCV bindings: the same libopencv ours links, so
# the ratio measures the pipelines, not two OpenCV builds. (A pyenv or venv
# python3 on PATH would not see python3-opencv.)
python=/usr/bin/python3
bash "$root/scripts/setup.sh" python3 python3-numpy python3-opencv

# Two jobs at most: the machine may be shared.
if [ ! -f "$root/build/build.ninja" ]; then
  cmake -S "$root" -B "$root/build" -G Ninja >/dev/null
fi
ninja -C "$root/build" -j2 features_bench >/dev/null

cores=$(nproc)
runs=$(mktemp)
scratch=$(mktemp -d)
trap 'rm -rf "$runs" "$scratch"' EXIT

# Runs one side and appends its JSON line.
run() {
  local line
  line=$("$@")
  echo "$line" >>"$runs"
  echo "  $line" >&2
}

# Start-up, apart from the timed work: each program's --help, which exits
# right after dynamic linking (ours) or the imports of numpy and cv2 (python).
startup() {
  local side=$1 start end
  shift
  start=$(date +%s.%N)
  "$@" --help >/dev/null
  end=$(date +%s.%N)
  echo "{\"side\":\"$side\",\"startup_s\":$(awk "BEGIN { print $end - $start }")}" >>"$runs"
}
for ((i = 0; i < repeats; i++)); do
  startup ours "$root/build/bench/features_bench"
  startup python "$python" "$root/bench/features_baseline.py"
done

configs=("32 grayscale" "96 rgb")
for config in "${configs[@]}"; do
  read -r size color <<<"$config"
  echo "bench: 28->$size $color, $repeats rounds" >&2
  for ((i = 0; i < repeats; i++)); do
    run "$root/build/bench/features_bench" --data "$data" --size "$size" --color "$color" \
      --threads "$cores"
    run "$python" "$root/bench/features_baseline.py" --data "$data" --size "$size" \
      --color "$color" --processes 1
    run "$python" "$root/bench/features_baseline.py" --data "$data" --size "$size" \
      --color "$color" --processes "$cores"
  done
done

# Same bytes on both sides, checked once per configuration outside the timing.
for config in "${configs[@]}"; do
  read -r size color <<<"$config"
  "$root/build/bench/features_bench" --data "$data" --size "$size" --color "$color" \
    --out "$scratch/ours.bin" >/dev/null
  "$python" "$root/bench/features_baseline.py" --data "$data" --size "$size" --color "$color" \
    --processes 1 --out "$scratch/python.npy" >/dev/null
  "$python" - "$scratch/ours.bin" "$scratch/python.npy" "28->$size $color" <<'EOF'
import struct, sys
import numpy as np
ours_path, python_path, config = sys.argv[1:]
python = np.load(python_path, mmap_mode="r")
with open(ours_path, "rb") as f:
    header = f.read(52)
rows, = struct.unpack_from("<Q", header, 28)
data_offset, = struct.unpack_from("<Q", header, 44)
ours = np.memmap(ours_path, dtype=np.uint8, mode="r", offset=data_offset, shape=python.shape)
if rows != len(python) or not np.array_equal(ours, python):
    sys.exit(f"bench: {config}: ours and python's features differ")
print(f"bench: {config}: ours and python's features are identical", file=sys.stderr)
EOF
  rm -f "$scratch"/*
done

mkdir -p "$root/bench/results"
"$python" - "$runs" "$cores" "$repeats" <<'EOF' | tee "$root/bench/results/features.txt"
import json, platform, statistics, sys, time
runs_path, cores, repeats = sys.argv[1:]
runs = [json.loads(line) for line in open(runs_path)]

def median(side, size, processes=None):
    return statistics.median(r["images_per_s"] for r in runs
                             if r["side"] == side and r.get("size") == size
                             and (processes is None or r["processes"] == processes))

def startup(side):
    return statistics.median(r["startup_s"] for r in runs
                             if r["side"] == side and "startup_s" in r)

cpu = next((l.split(":", 1)[1].strip() for l in open("/proc/cpuinfo")
            if l.startswith("model name")), platform.machine())
print(f"features_bench, {time.strftime('%Y-%m-%d %H:%M')}, {cores} cores ({cpu}), "
      f"median of {repeats} interleaved rounds, 60 000 Fashion-MNIST training images")
print("(whole job: gunzip the IDX pair, process, write the matrix to the page cache)")
print()
header = ("config", "ours img/s", "python img/s", "python variant", "ratio",
          "python loop", "python Pool")
print("| " + " | ".join(header) + " |")
print("|" + "|".join("---" for _ in header) + "|")
for size, color in ((32, "grayscale"), (96, "rgb")):
    ours = median("ours", size)
    loop = median("python", size, 1)
    pool = median("python", size, int(cores))
    best, variant = (loop, "plain loop") if loop >= pool else (pool, f"Pool({cores})")
    print(f"| 28->{size} {color} | {ours:,.0f} | {best:,.0f} | {variant} | {ours / best:.2f}x "
          f"| {loop:,.0f} | {pool:,.0f} |")
print()
print(f"start-up, not in the times above: ours {startup('ours'):.3f} s, "
      f"python + numpy + cv2 {startup('python'):.3f} s")
EOF
