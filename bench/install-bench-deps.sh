#!/usr/bin/env bash
# Installs what the benchmark harness needs: pgtrail's own dependencies plus
# the peers (pgBackRest, wal2json) and the measuring tools, through the one
# installer, deploy/install-deps.sh (idempotent).
set -euo pipefail
cd "$(dirname "$0")/.."
exec deploy/install-deps.sh \
  pgbackrest \
  postgresql-15-wal2json \
  time \
  gawk
