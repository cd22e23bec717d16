#!/usr/bin/env bash
# pgtrail's main job on an embedded default, for a fresh Debian 12 machine:
# installs what is missing, builds, starts a throwaway PostgreSQL 15 (as the
# postgres user, wal_level=logical, in a temporary directory), starts
# pgtrail-agent on it, makes changes (including a mistaken UPDATE without
# WHERE), then shows `changelog grep` and a `pitr-restore` to just before the
# mistake, and a migration restored to a named mark. Everything keeps running afterwards; the last lines say where it
# is and how to stop it.
#
#   deploy/demo.sh          run the demo
#   deploy/demo.sh stop     stop the last demo's agent and server, remove its files
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT="$(pwd)"
STATE_FILE=/tmp/pgtrail-demo.last
PGBIN=/usr/lib/postgresql/15/bin

as_postgres() {
  if [ "$(id -u)" -eq 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi
}

if [ "${1:-}" = "stop" ]; then
  [ -f "$STATE_FILE" ] || { echo "no demo is running"; exit 0; }
  DEMO_DIR="$(cat "$STATE_FILE")"
  [ -f "$DEMO_DIR/agent.pid" ] && kill "$(cat "$DEMO_DIR/agent.pid")" 2>/dev/null || true
  sleep 1
  as_postgres "$PGBIN/pg_ctl" -D "$DEMO_DIR/pgdata" -m fast stop >/dev/null 2>&1 || true
  rm -rf "$DEMO_DIR" "$STATE_FILE"
  echo "demo stopped and removed"
  exit 0
fi

step() { printf '\n\033[1m== %s\033[0m\n' "$*"; }

step "dependencies"
deploy/install-deps.sh

step "build (Release)"
cmake -S . -B build-release -DCMAKE_BUILD_TYPE=Release -DPGTRAIL_BUILD_TESTS=OFF >/dev/null
cmake --build build-release -j"$(nproc)" 2>&1 | grep -E "error|warning|Built target (pgtrail-agent|pitr-restore|changelog)" || true
BIN="$ROOT/build-release"
AGENT="$BIN/agent/pgtrail-agent"; RESTORE="$BIN/tools/pitr-restore"; CHANGELOG="$BIN/tools/changelog"

step "throwaway PostgreSQL 15"
DEMO_DIR="$(mktemp -d /tmp/pgtrail-demo.XXXXXX)"
chmod 755 "$DEMO_DIR"
mkdir -p "$DEMO_DIR/pgdata" "$DEMO_DIR/socket"
[ "$(id -u)" -eq 0 ] && chown postgres:postgres "$DEMO_DIR/pgdata" "$DEMO_DIR/socket"
echo "$DEMO_DIR" > "$STATE_FILE"
as_postgres "$PGBIN/initdb" -D "$DEMO_DIR/pgdata" -U postgres --auth=trust -E UTF8 --no-sync >/dev/null
cat >> "$DEMO_DIR/pgdata/postgresql.conf" <<CONF
listen_addresses = ''
unix_socket_directories = '$DEMO_DIR/socket'
wal_level = logical
max_wal_senders = 5
max_replication_slots = 5
CONF
as_postgres "$PGBIN/pg_ctl" -D "$DEMO_DIR/pgdata" -l "$DEMO_DIR/pgdata/server.log" -w start >/dev/null
export PGHOST="$DEMO_DIR/socket" PGUSER=postgres
psql() { "$PGBIN/psql" -X -q -v ON_ERROR_STOP=1 "$@"; }
psql -d postgres -c "CREATE DATABASE shop"
psql -d shop <<'SQL'
CREATE TABLE customers (id serial PRIMARY KEY, name text NOT NULL, email text);
CREATE TABLE accounts (id serial PRIMARY KEY, customer_id int REFERENCES customers, balance numeric(12,2) NOT NULL);
INSERT INTO customers (name, email) VALUES ('Ada', 'ada@example.com'), ('Grace', 'grace@example.com'), ('Linus', NULL);
INSERT INTO accounts (customer_id, balance) VALUES (1, 100.00), (2, 250.50), (3, 75.25);
SQL
echo "PostgreSQL is running from $DEMO_DIR/pgdata (socket $PGHOST), database shop"

step "pgtrail-agent"
"$AGENT" --source "dbname=shop" --store "$DEMO_DIR/store" --progress-interval 5000 \
  >"$DEMO_DIR/agent.log" 2>&1 &
echo $! > "$DEMO_DIR/agent.pid"
for _ in $(seq 1 100); do
  grep -q "streaming from" "$DEMO_DIR/agent.log" && break
  sleep 0.2
done
grep -E "created|snapshot .* complete|streaming from" "$DEMO_DIR/agent.log" | sed 's/^/  /'

wait_durable() {
  local lsn
  lsn="$(psql -d shop -Atc "SELECT pg_current_wal_lsn()")"
  for _ in $(seq 1 100); do
    [ "$(psql -d shop -Atc "SELECT confirmed_flush_lsn >= '$lsn' FROM pg_replication_slots WHERE slot_name = 'pgtrail'")" = t ] && return 0
    sleep 0.1
  done
  echo "the agent did not catch up; see $DEMO_DIR/agent.log" >&2; return 1
}

step "changes"
psql -d shop -c "UPDATE accounts SET balance = balance + 20 WHERE customer_id = 1"
psql -d shop -c "INSERT INTO customers (name, email) VALUES ('Margaret', 'margaret@example.com')"
psql -d shop -c "DELETE FROM customers WHERE name = 'Linus' AND NOT EXISTS (SELECT 1 FROM accounts WHERE customer_id = customers.id)"
sleep 1.1
BEFORE_MISTAKE="$(psql -d shop -Atc "SELECT to_char(clock_timestamp() AT TIME ZONE 'UTC', 'YYYY-MM-DD HH24:MI:SS.US') || '+00'")"
sleep 1.1
echo "  the mistake, at $(date -u '+%H:%M:%S'): UPDATE accounts SET balance = 0   -- no WHERE"
psql -d shop -c "UPDATE accounts SET balance = 0"
wait_durable
psql -d shop -c "SELECT a.id, c.name, a.balance FROM accounts a JOIN customers c ON c.id = a.customer_id ORDER BY a.id"

step "changelog grep --table accounts"
"$CHANGELOG" --store "$DEMO_DIR/store" grep --table accounts

step "changelog grep 'margaret@' --format json"
"$CHANGELOG" --store "$DEMO_DIR/store" grep 'margaret@' --format json

step "pitr-restore --to '$BEFORE_MISTAKE' --dry-run"
"$RESTORE" --store "$DEMO_DIR/store" --to "$BEFORE_MISTAKE" --dry-run

step "pitr-restore --to '$BEFORE_MISTAKE' --target dbname=shop_before_mistake"
"$RESTORE" --store "$DEMO_DIR/store" --to "$BEFORE_MISTAKE" --target "dbname=shop_before_mistake"
psql -d shop_before_mistake -c "SELECT a.id, c.name, a.balance FROM accounts a JOIN customers c ON c.id = a.customer_id ORDER BY a.id"

step "a migration gone wrong: mark, migrate, restore to the mark"
"$AGENT" mark before-migration --source "dbname=shop"
psql -d shop -c "ALTER TABLE customers DROP COLUMN email"
psql -d shop -c "UPDATE customers SET name = 'oops'"
wait_durable
"$CHANGELOG" --store "$DEMO_DIR/store" grep --op ddl
"$RESTORE" --store "$DEMO_DIR/store" --list
"$RESTORE" --store "$DEMO_DIR/store" --to-mark before-migration --target "dbname=shop_before_migration" | tail -1
psql -d shop_before_migration -c "SELECT id, name, email FROM customers ORDER BY id"

step "where everything is"
cat <<INFO
  PostgreSQL 15:  $DEMO_DIR/pgdata  (socket $PGHOST; psql -h $PGHOST -U postgres shop)
  agent:          pid $(cat "$DEMO_DIR/agent.pid"), log $DEMO_DIR/agent.log
  store:          $DEMO_DIR/store
  binaries:       $BIN/agent/pgtrail-agent, $BIN/tools/pitr-restore, $BIN/tools/changelog
  try:            PGHOST=$PGHOST PGUSER=postgres $CHANGELOG --store $DEMO_DIR/store grep Grace
  stop it all:    deploy/demo.sh stop
INFO
