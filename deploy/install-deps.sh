#!/usr/bin/env bash
# Installs everything pgtrail needs to build, test and run its demo on Debian 12.
# Idempotent: packages already present are not reinstalled, and apt is not
# touched at all when nothing is missing.
#
#   deploy/install-deps.sh              pgtrail's own dependencies
#   deploy/install-deps.sh PKG...       those, and these extra packages (bench/ uses this)
set -euo pipefail

PACKAGES=(
  build-essential cmake pkg-config
  libpq-dev libprotobuf-dev protobuf-compiler
  librocksdb-dev libboost-program-options-dev libspdlog-dev libfmt-dev nlohmann-json3-dev
  googletest libgtest-dev libgmock-dev
  postgresql-15 postgresql-client-15
  "$@"
)

missing=()
for p in "${PACKAGES[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
    missing+=("$p")
  fi
done

if [ ${#missing[@]} -eq 0 ]; then
  echo "deploy: all dependencies present"
  exit 0
fi

if [ "$(id -u)" -ne 0 ]; then
  echo "deploy: missing packages: ${missing[*]}" >&2
  echo "HINT: run this script as root (or with sudo) to install them" >&2
  exit 1
fi

echo "deploy: installing ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
# Keep the Debian cluster-creation hook from starting a system-wide cluster:
# pgtrail's demo and tests start their own throwaway servers.
mkdir -p /etc/postgresql-common/createcluster.d
if [ ! -f /etc/postgresql-common/createcluster.d/pgtrail.conf ]; then
  echo "create_main_cluster = false" > /etc/postgresql-common/createcluster.d/pgtrail.conf
fi
apt-get update -qq
apt-get install -y -qq --no-install-recommends "${missing[@]}"
