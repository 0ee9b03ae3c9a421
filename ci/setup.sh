#!/usr/bin/env bash
# Installs the Debian packages dmahil builds with (only the missing ones) and builds it.
#   ci/setup.sh [BUILD_DIR] [extra cmake args...]     (default BUILD_DIR: build)
# DMAHIL_TARGETS="a b ...": build only these targets (and what they need); default: all.
set -euo pipefail
cd "$(dirname "$0")/.."
BUILD=${1:-build}
shift || true

PKGS=(cmake ninja-build g++ pkg-config protobuf-compiler libprotobuf-dev libgrpc++-dev
      protobuf-compiler-grpc libboost-dev libgtest-dev libgmock-dev libcli11-dev
      libspdlog-dev libfmt-dev nlohmann-json3-dev libpugixml-dev clang-format
      libboost-filesystem-dev git nanopb libgpiod-dev libusb-1.0-0-dev pdudaemon
      libxen-dev libssl-dev libblkid-dev)
ci/apt-install.sh setup "${PKGS[@]}"

cmake -S . -B "$BUILD" -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo "$@" >/dev/null
# shellcheck disable=SC2086  # a list of target names
cmake --build "$BUILD" -j"$(nproc)" ${DMAHIL_TARGETS:+--target $DMAHIL_TARGETS}
