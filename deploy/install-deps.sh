#!/usr/bin/env bash
# install-deps.sh - install the Debian packages Skick needs, only those missing.
#
# Idempotent: when everything is present it only checks (no apt-get update).
# Usage: deploy/install-deps.sh [--test]   (--test adds what the test suite needs)
set -euo pipefail

build_pkgs=(gcc make cmake pkg-config libjson-c-dev libssl-dev libboost-context-dev
            libzmq3-dev libczmq-dev libcivetweb-dev libhiredis-dev librabbitmq-dev)
test_pkgs=(libcriterion-dev json-schema-test-suite python3 python3-websockets python3-zmq openssl
           clang libclang-rt-14-dev redis-server redis-tools prometheus
           rabbitmq-server python3-pika amqp-tools)

want=("${build_pkgs[@]}")
if [[ "${1:-}" == "--test" ]]; then
    want+=("${test_pkgs[@]}")
fi

missing=()
for p in "${want[@]}"; do
    if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
        missing+=("$p")
    fi
done

if [[ ${#missing[@]} -eq 0 ]]; then
    echo "install-deps: all ${#want[@]} packages present"
    exit 0
fi

echo "install-deps: installing ${missing[*]}"
sudo=""
if [[ $(id -u) -ne 0 ]]; then
    sudo="sudo"
fi
export DEBIAN_FRONTEND=noninteractive
$sudo apt-get -o DPkg::Lock::Timeout=600 update -qq
$sudo apt-get -o DPkg::Lock::Timeout=600 install -y -qq --no-install-recommends "${missing[@]}"
