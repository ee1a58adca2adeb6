#!/usr/bin/env bash
# Installs the Debian 12 packages the build, the tests and the main job need,
# plus any package names given as arguments (the benchmarks' baselines).
# Idempotent: a no-op (no apt-get at all) when everything is present.
#
#   bash scripts/setup.sh [EXTRA_PACKAGE...]
set -euo pipefail

PACKAGES=(
  g++ cmake ninja-build pkg-config git
  libgrpc++-dev protobuf-compiler-grpc libprotobuf-dev
  libopencv-dev libhiredis-dev prometheus-cpp-dev
  libtorch-dev libopenblas0-pthread libonnx-dev
  libyaml-cpp-dev nlohmann-json3-dev libcli11-dev libspdlog-dev
  libssl-dev zlib1g-dev
  libgtest-dev libgmock-dev
  redis-server redis-tools
  dataset-fashion-mnist
  "$@"
)

# The ONNX agreement tests run onnxruntime-node; any Node.js with npm will do.
if ! command -v node >/dev/null || ! command -v npm >/dev/null; then
  PACKAGES+=(nodejs npm)
fi

missing=()
for package in "${PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$package" 2>/dev/null | grep -q "install ok installed" ||
    missing+=("$package")
done
if [ ${#missing[@]} -eq 0 ]; then
  echo "setup: all ${#PACKAGES[@]} packages present" >&2
  exit 0
fi

SUDO=""
if [ "$(id -u)" -ne 0 ]; then SUDO="sudo"; fi
echo "setup: installing ${missing[*]}" >&2
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
# The packaged redis-server service is not ours: our clusters start their own.
if command -v systemctl >/dev/null && systemctl is-active --quiet redis-server 2>/dev/null; then
  $SUDO systemctl disable --now redis-server >/dev/null 2>&1 || true
fi
