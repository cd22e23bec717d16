#!/usr/bin/env bash
# Installs the Debian 12 packages the benchmark harness needs on top of
# pgtrail's own (deploy/install-deps.sh): the peers (pgBackRest, wal2json)
# and the measuring tools. Idempotent: apt is not touched when nothing is
# missing.
set -euo pipefail

PACKAGES=(
  pgbackrest               # peer for the restore figure
  postgresql-15-wal2json   # peer for the audit-query figure
  time                     # /usr/bin/time: peak RSS of pg_recvlogical
  gawk                     # the report's arithmetic
)

missing=()
for p in "${PACKAGES[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
    missing+=("$p")
  fi
done

if [ ${#missing[@]} -eq 0 ]; then
  echo "bench: all benchmark dependencies present"
  exit 0
fi

if [ "$(id -u)" -ne 0 ]; then
  echo "bench: missing packages: ${missing[*]}" >&2
  echo "HINT: run this script as root (or with sudo) to install them" >&2
  exit 1
fi

echo "bench: installing ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
# Same guard as deploy/install-deps.sh: no system-wide cluster.
mkdir -p /etc/postgresql-common/createcluster.d
if [ ! -f /etc/postgresql-common/createcluster.d/pgtrail.conf ]; then
  echo "create_main_cluster = false" > /etc/postgresql-common/createcluster.d/pgtrail.conf
fi
apt-get update -qq
apt-get install -y -qq --no-install-recommends "${missing[@]}"
