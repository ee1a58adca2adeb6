#!/usr/bin/env bash
# Int8 quality on Fashion-MNIST: float32 against int8 test accuracy of
#   1. the example impulse, examples/fashion-mnist.yaml (the default network
#      at 32x32 grayscale, every training image, its own 10 epochs);
#   2. MobileNetV1 alpha 0.25 and
#   3. MobileNetV2 alpha 0.35, both 32x32 RGB (the grayscale images repeated
#      into three channels), random initial weights, trained end to end on
#      the first TRAIN_PER_CLASS training images of each class for EPOCHS
#      epochs.
# Each is trained and evaluated by build/bench/int8_quality through the
# worker's own train and quantize-evaluate tasks (calibration on 500
# training rows, per-channel int8 weights, the integer interpreter), and
# tested on all 10 000 test images. Prints a table and writes it to
# bench/results/int8_quality.txt; each run's results.json and artifacts are
# under bench/results/int8_quality/NAME/.
#
#   bash bench/int8_quality.sh [--epochs N] [--train-per-class N] [--only NAME] [--no-build]
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
epochs=5
train_per_class=2000
only=""
build=1
while [ $# -gt 0 ]; do
  case "$1" in
    --epochs) epochs=$2; shift 2 ;;
    --train-per-class) train_per_class=$2; shift 2 ;;
    --only) only=$2; shift 2 ;;
    --no-build) build=0; shift ;;
    *) echo "usage: $0 [--epochs N] [--train-per-class N] [--only NAME] [--no-build]" >&2; exit 2 ;;
  esac
done

bash "$root/scripts/setup.sh" python3 dataset-fashion-mnist
if [ "$build" = 1 ]; then
  if [ ! -f "$root/build/build.ninja" ]; then
    cmake -S "$root" -B "$root/build" -G Ninja >/dev/null
  fi
  ninja -C "$root/build" -j2 int8_quality >/dev/null
fi
export OMP_WAIT_POLICY=PASSIVE  # as the worker runs LibTorch

work=$root/bench/results/int8_quality
mkdir -p "$work"

mobilenet() {  # NAME BACKBONE ALPHA
  cat <<YAML
name: $1
input: { width: 32, height: 32 }
processing: { block: image, color: rgb }
learning: { block: transfer, backbone: $2, alpha: $3, dropout: 0.1 }
training: { epochs: $epochs, learning_rate: 0.002, batch_size: 32, validation_split: 0.2,
            seed: 1, lr_step_epochs: $((epochs - 1)), lr_step_gamma: 0.1 }
YAML
}
mobilenet mobilenet-v1-0.25 mobilenet_v1 0.25 >"$work/mobilenet-v1-0.25.yaml"
mobilenet mobilenet-v2-0.35 mobilenet_v2 0.35 >"$work/mobilenet-v2-0.35.yaml"

# name impulse train-per-class (0: all)
configs=(
  "fashion-32 $root/examples/fashion-mnist.yaml 0"
  "mobilenet-v1-0.25 $work/mobilenet-v1-0.25.yaml $train_per_class"
  "mobilenet-v2-0.35 $work/mobilenet-v2-0.35.yaml $train_per_class"
)
lines=$work/runs.jsonl
: >"$lines"
for config in "${configs[@]}"; do
  read -r name impulse per_class <<<"$config"
  if [ -n "$only" ] && [ "$only" != "$name" ]; then continue; fi
  echo "== $name" >&2
  "$root/build/bench/int8_quality" --impulse "$impulse" --out "$work/$name" \
    --train-per-class "$per_class" | tee -a "$lines"
done

/usr/bin/python3 - "$lines" <<'PY' | tee "$root/bench/results/int8_quality.txt"
import json, sys
print("| impulse | training images | float32 test | int8 test | int8 - float32 | ranges |")
print("|---|---|---|---|---|---|")
for line in open(sys.argv[1]):
    r = json.loads(line)
    f, i = r["float32"]["test"], r["int8"]["test"]
    train = r["feature_rows"] - r["test_rows"]
    print(f"| {r['impulse']} | {train} | {100*f:.2f} % | {100*i:.2f} % | {100*(i-f):+.2f} | {r['method']} |")
PY
