#!/usr/bin/env bash
# pgtrail's benchmark harness: one command, one throwaway PostgreSQL 15, every
# figure measured against its peer in the same run.
#
#   bench/run.sh            full run, ~7 minutes (plus the Release build): pgbench -s 10, 100,000
#                           transactions, a 1,000,000-row transaction, 60 s of
#                           lag, 5 restore reps; writes the results into
#                           docs/BENCHMARKS.md
#   bench/run.sh --smoke    the same steps at a tiny scale (about a minute); writes
#                           build-release/bench/BENCHMARKS-smoke.md
#   bench/run.sh --keep     keep the temporary directory (servers stopped)
#
# Scale knobs (environment; the defaults are the issue's, --smoke lowers them):
#   BENCH_SCALE=10          pgbench -i -s
#   BENCH_TXNS=100000       pgbench transactions in the backlog
#   BENCH_BIG_ROWS=1000000  rows of the single large INSERT
#   BENCH_LAG_SECONDS=60    length of the lag measurement (pgbench -c 8)
#   BENCH_REPS=5            repetitions of each restore and audit query (median)
#   BENCH_DRAIN_REPS=5      repetitions of the capture drain, both sides, interleaved
#   BENCH_TCP_DRAIN_REPS=3  the same over TCP to 127.0.0.1 (a sidecar in its own
#                           container reaches the server that way)
#   BENCH_PGBR_REPS=1       repetitions of the pgBackRest restore
#   BENCH_PROFILE=0         1: one more, untimed drain under perf record -a
#                           (reports in build-release/bench/perf-*.txt)
#   BENCH_OUT=FILE          where the report goes
#   BENCH_TMP=/tmp          where the temporary directory is made
#
# What runs, in order (details in docs/BENCHMARKS.md, "Method"):
#   1. build Release, start PostgreSQL 15 (fsync on, archive_command pushing to
#      a local pgBackRest repository), take a pgBackRest full backup;
#   2. create database "bench", first start of pgtrail-agent (publication,
#      slot, snapshot of an empty database), stop it;
#   3. with the agent stopped, make the backlog: pgbench -i, pgbench
#      transactions, one large INSERT; note its end LSN and an instant T just
#      after it; pg_dump -Fc; one more commit after T (the recovery target of
#      pgBackRest needs one);
#   4. capture drain: pg_recvlogical (pgoutput, a copy of the slot) to
#      /dev/null, then pgtrail-agent, each with --endpos at the end LSN;
#      peak RSS, store growth; then both again over TCP;
#   5. wal2json decode of the same backlog to a file (untimed), audit query;
#   6. restores to T: pitr-restore vs pg_restore -j2 vs pgBackRest, and
#      single-table pitr-restore;
#   7. lag under pgbench -c 8: marker commits against confirmed_flush_lsn;
#   8. the report.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT="$(pwd)"
PGBIN=/usr/lib/postgresql/15/bin
COMMAND_LINE="bench/run.sh${*:+ $*}"

SMOKE=0
KEEP=0
for arg in "$@"; do
  case "$arg" in
    --smoke) SMOKE=1 ;;
    --keep) KEEP=1 ;;
    -h|--help) sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
    *) echo "bench: unknown argument \"$arg\"" >&2
       echo "HINT: bench/run.sh [--smoke] [--keep] (see bench/run.sh --help)" >&2
       exit 1 ;;
  esac
done

if [ "$SMOKE" = 1 ]; then
  d_scale=1 d_txns=2000 d_big=20000 d_lag=5 d_reps=1 d_drain_reps=1 d_tcp_reps=1
  d_out="$ROOT/build-release/bench/BENCHMARKS-smoke.md"
else
  d_scale=10 d_txns=100000 d_big=1000000 d_lag=60 d_reps=5 d_drain_reps=5 d_tcp_reps=3
  d_out="$ROOT/docs/BENCHMARKS.md"
fi
SCALE="${BENCH_SCALE:-$d_scale}"
TXNS="${BENCH_TXNS:-$d_txns}"
BIG_ROWS="${BENCH_BIG_ROWS:-$d_big}"
LAG_SECONDS="${BENCH_LAG_SECONDS:-$d_lag}"
REPS="${BENCH_REPS:-$d_reps}"
DRAIN_REPS="${BENCH_DRAIN_REPS:-$d_drain_reps}"
TCP_DRAIN_REPS="${BENCH_TCP_DRAIN_REPS:-$d_tcp_reps}"
PGBR_REPS="${BENCH_PGBR_REPS:-1}"
OUT="${BENCH_OUT:-$d_out}"
for v in SCALE TXNS BIG_ROWS LAG_SECONDS REPS DRAIN_REPS TCP_DRAIN_REPS PGBR_REPS; do
  if ! [[ "${!v}" =~ ^[1-9][0-9]*$ ]]; then
    echo "bench: BENCH_$v must be a positive integer, not \"${!v}\"" >&2
    exit 1
  fi
done
KNOBS="BENCH_SCALE=$SCALE BENCH_TXNS=$TXNS BENCH_BIG_ROWS=$BIG_ROWS BENCH_LAG_SECONDS=$LAG_SECONDS BENCH_REPS=$REPS BENCH_DRAIN_REPS=$DRAIN_REPS BENCH_TCP_DRAIN_REPS=$TCP_DRAIN_REPS BENCH_PGBR_REPS=$PGBR_REPS"

# ---------------------------------------------------------------- helpers

step() { printf '\n\033[1m== %s\033[0m\n' "$*"; }
note() { printf '  %s\n' "$*"; }
die() { printf 'bench: %s\n' "$*" >&2; exit 1; }

as_postgres() {
  if [ "$(id -u)" -eq 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi
}

now() { date +%s.%N; }
since() { awk -v a="$1" -v b="$(now)" 'BEGIN { printf "%.3f", b - a }'; }
# median VALUE...: the middle value (mean of the two middle ones for an even count).
median() {
  printf '%s\n' "$@" | sort -g | awk '{ v[NR] = $1 }
    END { if (NR % 2) printf "%.3f", v[(NR + 1) / 2]; else printf "%.3f", (v[NR / 2] + v[NR / 2 + 1]) / 2 }'
}
# calc EXPR [FORMAT]: awk arithmetic; "n/a" when a value is missing or a
# divisor is zero.
calc() {
  local r
  if r="$(awk "BEGIN { printf \"${2:-%.2f}\", $1 }" 2>/dev/null)"; then printf '%s' "$r"; else printf 'n/a'; fi
}

declare -A R          # results, by name
record() { R["$1"]="$2"; printf '%s=%s\n' "$1" "$2" >> "$WORK/results"; }

PSQL=("$PGBIN/psql" -X -q -v ON_ERROR_STOP=1 -At)
q() { "${PSQL[@]}" "$@"; }

# ---------------------------------------------------------------- cleanup

WORK=""
AGENT_PID=""
BG_PIDS=()
cleanup() {
  local rc=$?
  set +e
  [ -n "$AGENT_PID" ] && kill "$AGENT_PID" 2>/dev/null && wait "$AGENT_PID" 2>/dev/null
  for pid in "${BG_PIDS[@]}"; do kill "$pid" 2>/dev/null; done
  if [ -n "$WORK" ]; then
    for data in "$WORK/pgbr-data" "$WORK/pgdata"; do
      [ -f "$data/postmaster.pid" ] && as_postgres "$PGBIN/pg_ctl" -D "$data" -m immediate stop >/dev/null 2>&1
    done
    if [ "$KEEP" = 1 ]; then
      echo "bench: kept $WORK"
    else
      if [ $rc -ne 0 ]; then
        # The logs outlive the run; the data does not.
        local logs="$ROOT/build-release/bench/failed-run"
        rm -rf "$logs" && mkdir -p "$logs"
        find "$WORK" -maxdepth 2 -path "$WORK/store*" -prune -o \
          \( -name '*.log' -o -name '*.out' -o -name '*.err' -o -name results \) -size -50M \
          -exec cp {} "$logs/" \; 2>/dev/null
        echo "bench: logs of the failed run in $logs (bench/run.sh --keep keeps everything)" >&2
      fi
      rm -rf "$WORK"
    fi
  fi
  [ $rc -ne 0 ] && echo "bench: failed (exit $rc)" >&2
  exit $rc
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# ---------------------------------------------------------------- 1. build, server, pgBackRest

step "dependencies"
bench/install-bench-deps.sh

step "build (Release)"
cmake -S . -B build-release -DCMAKE_BUILD_TYPE=Release -DPGTRAIL_BUILD_TESTS=OFF >/dev/null
cmake --build build-release -j"$(nproc)" >/dev/null 2>"${TMPDIR:-/tmp}/pgtrail-bench-build.$$" || {
  cat "${TMPDIR:-/tmp}/pgtrail-bench-build.$$" >&2; die "the Release build failed"; }
rm -f "${TMPDIR:-/tmp}/pgtrail-bench-build.$$"
BIN="$ROOT/build-release"
AGENT="$BIN/agent/pgtrail-agent"; RESTORE="$BIN/tools/pitr-restore"; CHANGELOG="$BIN/tools/changelog"
note "$("$AGENT" --version 2>&1 | head -1)"
# What was built: the tree may move on while the benchmark runs.
BUILT_COMMIT="$(git rev-parse --short HEAD 2>/dev/null || echo unknown)"
if [ -n "$(git status --porcelain -- agent storage tools proto CMakeLists.txt 2>/dev/null)" ]; then
  BUILT_COMMIT="$BUILT_COMMIT (with uncommitted changes)"
fi
LOAD_AT_START="$(cut -d' ' -f1-3 /proc/loadavg)"

step "throwaway PostgreSQL 15"
WORK="$(mktemp -d "${BENCH_TMP:-/tmp}/pgtrail-bench.XXXXXX")"
chmod 755 "$WORK"
: > "$WORK/results"
mkdir -p "$WORK/pgdata" "$WORK/socket" "$WORK/socket2" "$WORK/pgbr" "$WORK/pglog"
[ "$(id -u)" -eq 0 ] && chown postgres:postgres "$WORK/pgdata" "$WORK/socket" "$WORK/socket2" "$WORK/pgbr" "$WORK/pglog"
STORE="$WORK/store"
# A TCP port nothing listens on yet (the drain is measured over TCP too); the
# Unix socket, in its own directory, takes the same number.
PORT=""
for p in $(seq 54320 54399); do
  if ! (exec 3<>"/dev/tcp/127.0.0.1/$p") 2>/dev/null; then PORT=$p; break; fi
done
[ -n "$PORT" ] || die "no free TCP port on 127.0.0.1 in 54320-54399"
PGBR_CONF="$WORK/pgbr/pgbackrest.conf"
as_postgres "$PGBIN/initdb" -D "$WORK/pgdata" -U postgres --auth=trust -E UTF8 --no-sync >/dev/null
cat >> "$WORK/pgdata/postgresql.conf" <<CONF
# pgtrail bench
listen_addresses = '127.0.0.1'
unix_socket_directories = '$WORK/socket'
port = $PORT
wal_level = logical
max_wal_senders = 10
max_replication_slots = 10
shared_buffers = 256MB
max_wal_size = 8GB
checkpoint_timeout = 30min
autovacuum = off
fsync = on
synchronous_commit = on
archive_mode = on
archive_command = 'pgbackrest --config=$PGBR_CONF --stanza=bench archive-push %p'
CONF
as_postgres "$PGBIN/pg_ctl" -D "$WORK/pgdata" -l "$WORK/pglog/server.log" -w start >/dev/null
export PGHOST="$WORK/socket" PGPORT=$PORT PGUSER=postgres
note "running from $WORK/pgdata (socket $PGHOST)"
PG_VERSION="$(q -d postgres -c "SHOW server_version")"

# pgBackRest is a peer, not the subject: if it cannot be set up here, the
# report says why and the run goes on.
PGBR_ERROR=""
pgbr() { as_postgres pgbackrest --config="$PGBR_CONF" --stanza=bench "$@"; }
setup_pgbackrest() {
  cat > "$PGBR_CONF" <<CONF
[global]
repo1-path=$WORK/pgbr/repo
repo1-retention-full=1
log-path=$WORK/pgbr/log
lock-path=$WORK/pgbr/lock
spool-path=$WORK/pgbr/spool
compress-type=lz4
process-max=2
start-fast=y
log-level-console=warn
log-level-file=info

[bench]
pg1-path=$WORK/pgdata
pg1-socket-path=$WORK/socket
pg1-port=$PORT
CONF
  chown postgres:postgres "$PGBR_CONF" 2>/dev/null || true
  pgbr stanza-create >"$WORK/pgbr/stanza.out" 2>&1 || { PGBR_ERROR="stanza-create failed: $(tail -1 "$WORK/pgbr/stanza.out")"; return 1; }
  pgbr check >"$WORK/pgbr/check.out" 2>&1 || { PGBR_ERROR="check failed: $(tail -1 "$WORK/pgbr/check.out")"; return 1; }
  pgbr --type=full backup >"$WORK/pgbr/backup.out" 2>&1 || { PGBR_ERROR="backup failed: $(tail -1 "$WORK/pgbr/backup.out")"; return 1; }
}
step "pgBackRest: stanza and full backup (before the backlog)"
if command -v pgbackrest >/dev/null && setup_pgbackrest; then
  note "pgBackRest $(pgbackrest version | awk '{print $2}'), repository $WORK/pgbr/repo, full backup taken"
else
  [ -n "$PGBR_ERROR" ] || PGBR_ERROR="pgbackrest is not installed"
  note "pgBackRest unavailable: $PGBR_ERROR"
  q -d postgres -c "ALTER SYSTEM SET archive_command = '/bin/true'" -c "SELECT pg_reload_conf()" >/dev/null
fi

# ---------------------------------------------------------------- 2. agent's first start

step "database bench, agent's first start (snapshot of an empty database)"
q -d postgres -c "CREATE DATABASE bench"
q -d bench -c "CREATE TABLE bench_marker (id bigserial PRIMARY KEY, note text NOT NULL, at timestamptz NOT NULL DEFAULT clock_timestamp())"

# agent_start [STORE SLOT LOG]: the main store and slot by default.
# AGENT_SOURCE: the agent's conninfo (the Unix socket by default).
AGENT_SOURCE="dbname=bench"
agent_start() {
  AGENT_LOG="${3:-$WORK/agent.log}"
  AGENT_STREAMING_BEFORE="$(grep -c "streaming from" "$AGENT_LOG" 2>/dev/null || true)"
  "$AGENT" --source "$AGENT_SOURCE" --store "${1:-$STORE}" --slot "${2:-pgtrail}" \
    --progress-interval 5000 >>"$AGENT_LOG" 2>&1 &
  AGENT_PID=$!
}
agent_stop() {
  [ -n "$AGENT_PID" ] || return 0
  kill -TERM "$AGENT_PID" 2>/dev/null || true
  wait "$AGENT_PID" 2>/dev/null || true
  AGENT_PID=""
}
agent_wait_streaming() {
  for _ in $(seq 1 36000); do
    [ "$(grep -c "streaming from" "$AGENT_LOG" || true)" -gt "${AGENT_STREAMING_BEFORE:-0}" ] && return 0
    kill -0 "$AGENT_PID" 2>/dev/null || { tail -5 "$AGENT_LOG" >&2; die "the agent exited; see $AGENT_LOG"; }
    sleep 0.1
  done
  die "the agent did not start streaming; see $AGENT_LOG"
}
agent_hwm_kb() { awk '/^VmHWM:/ { print $2 }' "/proc/$1/status"; }
# slot_wait LSN SLOT TIMEOUT_S: returns when SLOT's confirmed_flush_lsn >= LSN.
# One session polls every 10 ms, so the poll costs the measured processes
# next to nothing.
slot_wait() {
  q -d bench -c "DO \$\$
    DECLARE deadline timestamptz := clock_timestamp() + interval '$3 s';
    BEGIN
      LOOP
        EXIT WHEN (SELECT confirmed_flush_lsn >= '$1'::pg_lsn FROM pg_replication_slots WHERE slot_name = '$2');
        IF clock_timestamp() > deadline THEN
          RAISE EXCEPTION 'slot % did not reach % within % s', '$2', '$1', $3;
        END IF;
        PERFORM pg_sleep(0.01);
      END LOOP;
    END \$\$"
}
current_lsn() { q -d bench -c "SELECT pg_current_wal_lsn()"; }

agent_start
agent_wait_streaming
agent_stop
grep -E "created|snapshot|streaming from" "$WORK/agent.log" | sed 's/^/  /'

# ---------------------------------------------------------------- 3. backlog

step "backlog (agent stopped): pgbench -i -s $SCALE, $TXNS pgbench transactions, a $BIG_ROWS-row INSERT"
q -d bench -c "CHECKPOINT"
START_LSN="$(current_lsn)"
t0=$(now)
"$PGBIN/pgbench" -i -s "$SCALE" -q bench >"$WORK/pgbench-init.log" 2>&1 || { cat "$WORK/pgbench-init.log" >&2; die "pgbench -i failed"; }
note "pgbench -i -s $SCALE: $(since "$t0") s"
LSN_INIT_END="$(current_lsn)"
CLIENTS=4
per_client=$(( (TXNS + CLIENTS - 1) / CLIENTS ))
t0=$(now)
"$PGBIN/pgbench" -n -c "$CLIENTS" -j 2 -t "$per_client" bench >"$WORK/pgbench-txns.log" 2>&1 || { cat "$WORK/pgbench-txns.log" >&2; die "pgbench failed"; }
note "pgbench -c $CLIENTS -t $per_client ($((per_client * CLIENTS)) transactions): $(since "$t0") s"
LSN_TXNS_END="$(current_lsn)"
t0=$(now)
q -d bench -c "CREATE TABLE bench_bulk (id bigint PRIMARY KEY, aid int NOT NULL, note text NOT NULL)"
q -d bench -c "INSERT INTO bench_bulk SELECT g, 1 + g % (100000 * $SCALE), md5(g::text) FROM generate_series(1, $BIG_ROWS) g"
note "INSERT of $BIG_ROWS rows in one transaction: $(since "$t0") s"
END_LSN="$(current_lsn)"
WAL_BYTES="$(q -d bench -c "SELECT pg_wal_lsn_diff('$END_LSN', '$START_LSN')::bigint")"
note "backlog: WAL $START_LSN .. $END_LSN = $WAL_BYTES bytes"
record wal_bytes "$WAL_BYTES"

# The instant of the restores: after the backlog, before anything else.
sleep 1.1
T_AFTER="$(q -d bench -c "SELECT to_char(clock_timestamp() AT TIME ZONE 'UTC', 'YYYY-MM-DD HH24:MI:SS.US') || '+00'")"
sleep 1.1
note "restore instant T = $T_AFTER"
# Source state at T, to check every restore against.
expect_sql="SELECT (SELECT count(*) || '/' || sum(abalance) FROM pgbench_accounts) || ' ' ||
  (SELECT count(*) FROM pgbench_history) || ' ' || (SELECT count(*) || '/' || sum(tbalance) FROM pgbench_tellers) || ' ' ||
  (SELECT count(*) FROM bench_bulk)"
EXPECT="$(q -d bench -c "$expect_sql")"
note "state at T (accounts/sum history tellers/sum bulk): $EXPECT"

step "pg_dump -Fc at T (no writes since)"
t0=$(now)
"$PGBIN/pg_dump" -Fc -d bench -f "$WORK/bench.dump"
record pgdump_s "$(since "$t0")"
note "pg_dump: ${R[pgdump_s]} s, $(stat -c %s "$WORK/bench.dump") bytes"

# A commit after T: pgBackRest's recovery to T needs to see one, and the
# store must cover T.
SENTINEL_LSN="$(q -d bench -c "INSERT INTO bench_marker (note) VALUES ('after T')" -c "SELECT pg_current_wal_lsn()")"
if [ -z "$PGBR_ERROR" ]; then
  seg="$(q -d bench -c "SELECT pg_walfile_name(pg_current_wal_lsn())")"
  q -d bench -c "SELECT pg_switch_wal()" >/dev/null
  t0=$(now)
  until [ "$(q -d bench -c "SELECT coalesce(last_archived_wal >= '$seg', false) FROM pg_stat_archiver")" = t ]; do
    if [ "$(q -d bench -c "SELECT failed_count > 0 AND coalesce(last_failed_time > last_archived_time, true) FROM pg_stat_archiver")" = t ] &&
       awk -v s="$(since "$t0")" 'BEGIN { exit !(s > 60) }'; then
      PGBR_ERROR="archive-push keeps failing: $(q -d bench -c "SELECT last_failed_wal FROM pg_stat_archiver")"
      break
    fi
    if awk -v s="$(since "$t0")" 'BEGIN { exit !(s > 1800) }'; then
      PGBR_ERROR="the WAL of the backlog was not archived within 30 minutes"
      break
    fi
    sleep 0.5
  done
  note "WAL archived up to $seg ($(since "$t0") s of waiting)"
fi
# Archiving is done for what pgBackRest needs; it must not compete with the
# measured work from here on.
q -d postgres -c "ALTER SYSTEM SET archive_command = '/bin/true'" -c "SELECT pg_reload_conf()" >/dev/null

# ---------------------------------------------------------------- 4. capture drain

step "capture drain: pg_recvlogical (pgoutput, slot copy) vs pgtrail-agent, until $END_LSN"
# Saved copies: the backlog can be drained again for each repetition.
q -d bench -c "SELECT pg_copy_logical_replication_slot('pgtrail', 'bench_saved')" >/dev/null
q -d bench -c "SELECT pg_copy_logical_replication_slot('pgtrail', 'bench_w2j', false, 'wal2json')" >/dev/null
cp -a "$STORE" "$WORK/store.saved"
STORE_BEFORE="$(du -sb "$STORE" | cut -f1)"

files_bytes() { find "$STORE" -name "$1" -printf '%s\n' | awk '{ s += $1 } END { print s + 0 }'; }
peer_times=(); agent_times=(); peer_rss=(); agent_rss=(); store_added=(); store_settled=()
# drain_peer CONNINFO: one pg_recvlogical drain of a fresh copy of the saved slot.
drain_peer() {
  q -d bench -c "SELECT pg_copy_logical_replication_slot('bench_saved', 'bench_peer')" >/dev/null
  local t0; t0=$(now)
  /usr/bin/time -f '%M' -o "$WORK/peer.rss" \
    "$PGBIN/pg_recvlogical" -d "$1" --slot=bench_peer --start --no-loop \
      --endpos="$END_LSN" -o proto_version=1 -o publication_names=pgtrail -o messages=true \
      -f /dev/null 2>"$WORK/peer.err" || { cat "$WORK/peer.err" >&2; die "pg_recvlogical failed"; }
  PEER_S="$(since "$t0")"
  PEER_RSS="$(tail -1 "$WORK/peer.rss")"
  q -d bench -c "SELECT pg_drop_replication_slot('bench_peer')" >/dev/null
}
# drain_agent FRESH: one agent drain, timed as pg_recvlogical's: from
# process start to exit, with --endpos at the end of the backlog (the agent
# exits once everything up to it is durable in the store and confirmed to
# the slot). FRESH=1: from the saved store and slot, as they were before it.
# Then, untimed, the agent runs on until the store covers T (the commit after
# it), and is left running.
drain_agent() {
  if [ "$1" = 1 ]; then
    rm -rf "$STORE" && cp -a "$WORK/store.saved" "$STORE"
    q -d bench -c "SELECT pg_drop_replication_slot('pgtrail')" \
      -c "SELECT pg_copy_logical_replication_slot('bench_saved', 'pgtrail')" >/dev/null
  fi
  local t0 st=0
  t0=$(now)
  /usr/bin/time -f '%M' -o "$WORK/agent.rss" \
    "$AGENT" --source "$AGENT_SOURCE" --store "$STORE" --slot pgtrail --endpos "$END_LSN" \
      --progress-interval 5000 >>"$WORK/agent.log" 2>&1 || st=$?
  AGENT_S="$(since "$t0")"
  if [ "$st" != 0 ]; then
    tail -5 "$WORK/agent.log" >&2
    die "the agent failed during the drain (exit status $st); see $WORK/agent.log"
  fi
  AGENT_RSS="$(tail -1 "$WORK/agent.rss")"
  # It confirmed the end before it exited; the walsender has applied that
  # by now, or within moments.
  slot_wait "$END_LSN" pgtrail 10
  agent_start
  slot_wait "$SENTINEL_LSN" pgtrail 600
}
for rep in $(seq 1 "$DRAIN_REPS"); do
  drain_peer "dbname=bench"
  peer_times+=("$PEER_S"); peer_rss+=("$PEER_RSS")
  note "rep $rep: pg_recvlogical ${peer_times[-1]} s, max RSS ${peer_rss[-1]} kB"
  drain_agent "$([ "$rep" -gt 1 ] && echo 1 || echo 0)"
  agent_times+=("$AGENT_S"); agent_rss+=("$AGENT_RSS")
  # The store as it is on disk while the agent runs (RocksDB's write-ahead
  # log included), then after its clean stop.
  store_added+=("$(( $(du -sb "$STORE" | cut -f1) - STORE_BEFORE ))")
  live_log_bytes="$(files_bytes '*.log')"
  agent_stop
  store_settled+=("$(( $(du -sb "$STORE" | cut -f1) - STORE_BEFORE ))")
  note "rep $rep: pgtrail-agent ${agent_times[-1]} s, VmHWM ${agent_rss[-1]} kB, store +${store_added[-1]} bytes running, +${store_settled[-1]} bytes stopped"
done
record store_settled_bytes "$(median "${store_settled[@]}")"
record store_live_log_bytes "$live_log_bytes"
record store_sst_bytes "$(files_bytes '*.sst')"
# The same over TCP to 127.0.0.1, both sides.
tcp_peer_times=(); tcp_agent_times=()
AGENT_SOURCE="host=127.0.0.1 port=$PORT dbname=bench"
for rep in $(seq 1 "$TCP_DRAIN_REPS"); do
  drain_peer "host=127.0.0.1 port=$PORT dbname=bench"
  tcp_peer_times+=("$PEER_S")
  drain_agent 1
  tcp_agent_times+=("$AGENT_S")
  agent_stop
  note "TCP rep $rep: pg_recvlogical ${tcp_peer_times[-1]} s, pgtrail-agent ${tcp_agent_times[-1]} s"
done
AGENT_SOURCE="dbname=bench"
if [ "${BENCH_PROFILE:-0}" = 1 ]; then
  # One more drain, untimed, under a system-wide perf profile: where the
  # agent's and the walsender's time goes.
  PROFILE_DIR="$BIN/bench"
  mkdir -p "$PROFILE_DIR"
  rm -rf "$STORE" && cp -a "$WORK/store.saved" "$STORE"
  q -d bench -c "SELECT pg_drop_replication_slot('pgtrail')" \
    -c "SELECT pg_copy_logical_replication_slot('bench_saved', 'pgtrail')" >/dev/null
  t0=$(now)
  agent_start
  perf record -q -a -g -F 499 -o "$WORK/perf.data" 2>"$WORK/perf.err" &
  perf_pid=$!
  # The agent's RSS against its progress through the backlog.
  {
    echo "# backlog: pgbench -i until $LSN_INIT_END, pgbench transactions until $LSN_TXNS_END, the large INSERT until $END_LSN"
    echo "# seconds  VmRSS_kB  confirmed_flush_lsn"
    while kill -0 "$AGENT_PID" 2>/dev/null; do
      printf '%s %s %s\n' "$(since "$t0")" "$(awk '/^VmRSS:/ { print $2 }' "/proc/$AGENT_PID/status" 2>/dev/null)" \
        "$(q -d bench -c "SELECT confirmed_flush_lsn FROM pg_replication_slots WHERE slot_name = 'pgtrail'")"
      sleep 0.5
    done
  } >"$PROFILE_DIR/agent-rss-during-drain.txt" 2>/dev/null &
  sampler_pid=$!
  BG_PIDS+=("$perf_pid" "$sampler_pid")
  slot_wait "$END_LSN" pgtrail 7200
  kill -INT "$perf_pid"; wait "$perf_pid" || true
  kill "$sampler_pid" 2>/dev/null; wait "$sampler_pid" 2>/dev/null || true
  BG_PIDS=()
  slot_wait "$SENTINEL_LSN" pgtrail 600
  agent_stop
  perf report -i "$WORK/perf.data" --stdio --no-children -g none --sort comm --percent-limit 0.5 \
    >"$PROFILE_DIR/perf-by-process.txt" 2>/dev/null || true
  perf report -i "$WORK/perf.data" --stdio --no-children --percentage relative -g none --comms pgtrail-agent,rocksdb:low,rocksdb:high \
    --sort comm,dso,symbol --percent-limit 0.3 >"$PROFILE_DIR/perf-agent.txt" 2>/dev/null || true
  perf report -i "$WORK/perf.data" --stdio --no-children --percentage relative -g caller,0.5,callee --comms pgtrail-agent \
    --sort symbol --percent-limit 2 >"$PROFILE_DIR/perf-agent-callers.txt" 2>/dev/null || true
  note "profile of one more drain: $PROFILE_DIR/{perf-by-process,perf-agent,perf-agent-callers,agent-rss-during-drain}.txt"
fi
q -d bench -c "SELECT pg_drop_replication_slot('bench_saved')" >/dev/null
rm -rf "$WORK/store.saved"
record drain_agent_s "$(median "${agent_times[@]}")"
record drain_peer_s "$(median "${peer_times[@]}")"
record drain_tcp_agent_s "$(median "${tcp_agent_times[@]}")"
record drain_tcp_peer_s "$(median "${tcp_peer_times[@]}")"
record rss_agent_kb "$(median "${agent_rss[@]}")"
record rss_peer_kb "$(median "${peer_rss[@]}")"
record store_added_bytes "$(median "${store_added[@]}")"
grep -E "progress:" "$WORK/agent.log" | tail -3 | sed 's/^/  /' || true

# ---------------------------------------------------------------- 5. wal2json, audit query

step "wal2json decode of the backlog to a file (untimed)"
t0=$(now)
"$PGBIN/pg_recvlogical" -d "dbname=bench" --slot=bench_w2j --start --no-loop --endpos="$END_LSN" \
  -o format-version=2 -o include-timestamp=1 -f "$WORK/wal2json.txt" 2>"$WORK/w2j.err" ||
  { cat "$WORK/w2j.err" >&2; die "pg_recvlogical -P wal2json failed"; }
q -d bench -c "SELECT pg_drop_replication_slot('bench_w2j')" >/dev/null
record w2j_s "$(since "$t0")"
record w2j_bytes "$(stat -c %s "$WORK/wal2json.txt")"
record changes "$(LC_ALL=C grep -c '^{"action":"[IUD]"' "$WORK/wal2json.txt" || true)"
record txns "$(LC_ALL=C grep -c '^{"action":"C"' "$WORK/wal2json.txt" || true)"
note "${R[changes]} row changes in ${R[txns]} transactions, ${R[w2j_bytes]} bytes of wal2json, ${R[w2j_s]} s"

step "audit query: one account's history"
# The most-changed account among those whose number cannot be mistaken for a
# branch, teller or small balance (PATTERN matches any column value).
AID="$(q -d bench -c "SELECT aid FROM pgbench_history WHERE aid > 10000 OR $SCALE = 1 AND aid > 1000
                      GROUP BY aid ORDER BY count(*) DESC, aid DESC LIMIT 1")"
[ -n "$AID" ] || AID=$((100000 * SCALE))
record aid "$AID"
W2J_RE="^\\{\"action\":\"[IUD]\",.*\"table\":\"pgbench_accounts\",.*\\{\"name\":\"aid\",\"type\":\"integer\",\"value\":$AID\\}"
changelog_times=(); grep_times=(); key_times=()
for rep in $(seq 1 "$REPS"); do
  t0=$(now)
  "$CHANGELOG" --store "$STORE" grep "^$AID\$" --table public.pgbench_accounts --format json >"$WORK/audit.pgtrail"
  changelog_times+=("$(since "$t0")")
  # The same row by its key, through the row index. Changes made while the
  # table had no primary key (pgbench -i loads before adding it) are not
  # under the key, so this can list fewer changes than PATTERN.
  t0=$(now)
  "$CHANGELOG" --store "$STORE" grep --table public.pgbench_accounts --key "$AID" --format json >"$WORK/audit.key"
  key_times+=("$(since "$t0")")
  t0=$(now)
  LC_ALL=C grep -E "$W2J_RE" "$WORK/wal2json.txt" >"$WORK/audit.grep" || true
  grep_times+=("$(since "$t0")")
done
record audit_pgtrail_s "$(median "${changelog_times[@]}")"
record audit_grep_s "$(median "${grep_times[@]}")"
record audit_pgtrail_lines "$(wc -l < "$WORK/audit.pgtrail")"
record audit_key_s "$(median "${key_times[@]}")"
record audit_key_lines "$(wc -l < "$WORK/audit.key")"
record audit_grep_lines "$(wc -l < "$WORK/audit.grep")"
note "aid $AID: changelog grep ${R[audit_pgtrail_s]} s (${R[audit_pgtrail_lines]} changes), grep over wal2json ${R[audit_grep_s]} s (${R[audit_grep_lines]} changes)"

# ---------------------------------------------------------------- 6. restores

check_restored() { # DB [HOST PORT]
  local got
  got="$("${PSQL[@]}" -h "${2:-$PGHOST}" -p "${3:-$PGPORT}" -d "$1" -c "$expect_sql")"
  if [ "$got" != "$EXPECT" ]; then
    note "MISMATCH in $1: $got (expected $EXPECT)"
    record "mismatch_$1" "$got"
  fi
}

step "restore to T: pitr-restore --jobs 2 and in one transaction vs pg_restore -j2 (createdb + pg_restore), $REPS reps"
pitr_times=(); pitr1_times=(); pgr_times=()
for rep in $(seq 1 "$REPS"); do
  t0=$(now)
  "$PGBIN/createdb" restored_pgr
  "$PGBIN/pg_restore" -j2 -d restored_pgr "$WORK/bench.dump" 2>"$WORK/pg_restore.err" ||
    { cat "$WORK/pg_restore.err" >&2; die "pg_restore failed"; }
  pgr_times+=("$(since "$t0")")
  [ "$rep" = 1 ] && check_restored restored_pgr
  "$PGBIN/dropdb" restored_pgr
  q -d postgres -c "CHECKPOINT"

  # Two connections, as pg_restore -j2 (a new database, renamed when complete).
  t0=$(now)
  "$RESTORE" --store "$STORE" --to "$T_AFTER" --jobs 2 --target "dbname=restored_pitr" >"$WORK/pitr-restore.out" 2>&1 ||
    { cat "$WORK/pitr-restore.out" >&2; die "pitr-restore --jobs 2 failed"; }
  pitr_times+=("$(since "$t0")")
  [ "$rep" = 1 ] && check_restored restored_pitr
  "$PGBIN/dropdb" restored_pitr
  q -d postgres -c "CHECKPOINT"

  # The default: one transaction on one connection.
  t0=$(now)
  "$RESTORE" --store "$STORE" --to "$T_AFTER" --target "dbname=restored_pitr1" >"$WORK/pitr-restore1.out" 2>&1 ||
    { cat "$WORK/pitr-restore1.out" >&2; die "pitr-restore failed"; }
  pitr1_times+=("$(since "$t0")")
  [ "$rep" = 1 ] && check_restored restored_pitr1
  "$PGBIN/dropdb" restored_pitr1
  q -d postgres -c "CHECKPOINT"
  note "rep $rep: pg_restore -j2 ${pgr_times[-1]} s, pitr-restore --jobs 2 ${pitr_times[-1]} s, in one transaction ${pitr1_times[-1]} s"
done
record restore_pitr_s "$(median "${pitr_times[@]}")"
record restore_pitr1_s "$(median "${pitr1_times[@]}")"
record restore_pgr_s "$(median "${pgr_times[@]}")"

# single_tables STORE RESTORE-POINT...: pitr-restore --tables of each pgbench
# table; on failure SINGLE_ERROR says why.
SINGLE_TABLES=(pgbench_branches pgbench_tellers pgbench_accounts)
SINGLE_ERROR=""
single_tables() {
  local store="$1"; shift
  local table rep times rows
  for table in "${SINGLE_TABLES[@]}"; do
    times=()
    for rep in $(seq 1 "$REPS"); do
      t0=$(now)
      if ! "$RESTORE" --store "$store" "$@" --target "dbname=restored_one" --tables "$table" \
          >"$WORK/pitr-restore-one.out" 2>&1; then
        SINGLE_ERROR="$(tail -1 "$WORK/pitr-restore-one.out")"
        "$PGBIN/dropdb" --if-exists restored_one 2>/dev/null
        return 1
      fi
      times+=("$(since "$t0")")
      rows="$(q -d restored_one -c "SELECT count(*) FROM $table")"
      "$PGBIN/dropdb" restored_one
    done
    record "table_${table}_s" "$(median "${times[@]}")"
    record "table_${table}_rows" "$rows"
    record "table_${table}_bytes" "$(q -d bench -c "SELECT pg_table_size('$table')")"
    note "$table: $rows rows, ${R[table_${table}_s]} s"
  done
  q -d postgres -c "CHECKPOINT"
}

step "single-table pitr-restore to T, $REPS reps"
SINGLE_FALLBACK=0
SINGLE_WHOLE_S="${R[restore_pitr1_s]}"
SINGLE_WHERE="to T, from the capture store"
if ! single_tables "$STORE" --to "$T_AFTER"; then
  note "pitr-restore --tables failed: $SINGLE_ERROR"
  record single_error "$SINGLE_ERROR"
  # Measured instead on a second store whose base snapshot holds the pgbench
  # tables: its first start is now, it captures the lag run below, and the
  # tables are restored to the end of that run (snapshot + changes merged).
  SINGLE_FALLBACK=1
  note "fallback: a second store (slot pgtrail_late) with a base snapshot taken now"
  agent_start "$WORK/store-late" pgtrail_late "$WORK/agent-late.log"
  agent_wait_streaming
  agent_stop
  grep -E "snapshot .* complete" "$WORK/agent-late.log" | sed 's/^/  /'
fi

step "pgBackRest: restore the cluster and replay WAL to T"
if [ -z "$PGBR_ERROR" ]; then
  pgbr_restore() {
    local data="$WORK/pgbr-data"
    rm -rf "$data"; mkdir -m 700 "$data"; chown postgres:postgres "$data"
    local start; start=$(now)
    pgbr --pg1-path="$data" --type=time --target="$T_AFTER" --target-action=promote restore \
      >"$WORK/pgbr/restore.out" 2>&1 || { PGBR_ERROR="restore failed: $(tail -1 "$WORK/pgbr/restore.out")"; return 1; }
    # A second server next to the first: its own socket, no archiving.
    cat >> "$data/postgresql.auto.conf" <<CONF
listen_addresses = ''
unix_socket_directories = '$WORK/socket2'
port = 5433
archive_mode = off
CONF
    as_postgres "$PGBIN/pg_ctl" -D "$data" -l "$WORK/pglog/pgbr-server.log" -w -t 7200 start >/dev/null ||
      { PGBR_ERROR="the restored server did not start: $(tail -1 "$WORK/pglog/pgbr-server.log")"; return 1; }
    until [ "$("${PSQL[@]}" -h "$WORK/socket2" -p 5433 -d postgres -c "SELECT pg_is_in_recovery()" 2>/dev/null)" = f ]; do
      [ -f "$data/postmaster.pid" ] || { PGBR_ERROR="the restored server stopped: $(tail -1 "$WORK/pglog/pgbr-server.log")"; return 1; }
      sleep 0.1
    done
    pgbr_times+=("$(since "$start")")
    check_restored bench "$WORK/socket2" 5433
    as_postgres "$PGBIN/pg_ctl" -D "$data" -m fast stop >/dev/null
    rm -rf "$data"
  }
  pgbr_times=()
  for rep in $(seq 1 "$PGBR_REPS"); do
    pgbr_restore || break
    note "rep $rep: pgBackRest restore + replay ${pgbr_times[-1]} s"
  done
  [ -z "$PGBR_ERROR" ] && record restore_pgbr_s "$(median "${pgbr_times[@]}")"
fi
[ -n "$PGBR_ERROR" ] && note "pgBackRest: $PGBR_ERROR"

# ---------------------------------------------------------------- 7. lag

step "lag: pgbench -c 8 for $LAG_SECONDS s, a marker commit every 200 ms"
agent_start
agent_wait_streaming
slot_wait "$(current_lsn)" pgtrail 1800   # caught up with what the restores wrote
"$PGBIN/pgbench" -n -c 8 -j 2 -T "$LAG_SECONDS" bench >"$WORK/pgbench-lag.log" 2>&1 &
pgbench_pid=$!
BG_PIDS+=("$pgbench_pid")
# Each marker: its commit starts at t0 (just before COMMIT); its end LSN is at
# most the insert position right after COMMIT returns; it is durable in the
# store when the slot's confirmed_flush_lsn passes that position. Both bounds
# make the delay an upper bound.
q -d bench -c "DO \$\$
  DECLARE
    stop_at timestamptz := clock_timestamp() + interval '$LAG_SECONDS s';
    t0 timestamptz; lsn pg_lsn; deadline timestamptz;
  BEGIN
    PERFORM pg_sleep(0.5);  -- pgbench connects
    WHILE clock_timestamp() < stop_at LOOP
      INSERT INTO bench_marker (note) VALUES ('lag');
      t0 := clock_timestamp();
      COMMIT;
      lsn := pg_current_wal_insert_lsn();
      deadline := clock_timestamp() + interval '120 s';
      LOOP
        EXIT WHEN (SELECT confirmed_flush_lsn >= lsn FROM pg_replication_slots WHERE slot_name = 'pgtrail');
        IF clock_timestamp() > deadline THEN RAISE EXCEPTION 'marker not durable within 120 s'; END IF;
        PERFORM pg_sleep(0.002);
      END LOOP;
      RAISE NOTICE 'lag %', extract(epoch FROM clock_timestamp() - t0);
      PERFORM pg_sleep(0.2);
    END LOOP;
  END \$\$" 2>"$WORK/lag.notices" || { cat "$WORK/lag.notices" >&2; die "the lag probe failed"; }
wait "$pgbench_pid" || { cat "$WORK/pgbench-lag.log" >&2; die "pgbench failed during the lag run"; }
BG_PIDS=()
record lag_rss_kb "$(agent_hwm_kb "$AGENT_PID")"
agent_stop
grep -o 'lag [0-9.e-]*' "$WORK/lag.notices" | awk '{ print $2 }' | sort -g > "$WORK/lag.samples"
n=$(wc -l < "$WORK/lag.samples")
[ "$n" -gt 0 ] || die "no lag samples"
# Nearest rank: the smallest sample with at least P% of the samples at or below it.
pct() {
  awk -v p="$1" -v n="$n" 'BEGIN { k = int((p * n + 99) / 100); if (k < 1) k = 1 }
    NR == k { printf "%.3f", $1 }' "$WORK/lag.samples"
}
record lag_samples "$n"
record lag_p50_s "$(pct 50)"
record lag_p99_s "$(pct 99)"
record lag_max_s "$(tail -1 "$WORK/lag.samples" | awk '{ printf "%.3f", $1 }')"
record lag_tps "$(awk '/^tps = / { printf "%.0f", $3; exit }' "$WORK/pgbench-lag.log")"
note "$n samples: p50 ${R[lag_p50_s]} s, p99 ${R[lag_p99_s]} s, max ${R[lag_max_s]} s at ${R[lag_tps]} tps"

if [ "$SINGLE_FALLBACK" = 1 ]; then
  step "single-table pitr-restore on the second store, to the end of the lag run, $REPS reps"
  LAG_END_LSN="$(current_lsn)"
  LATE_SENTINEL="$(q -d bench -c "INSERT INTO bench_marker (note) VALUES ('after the lag run')" -c "SELECT pg_current_wal_lsn()")"
  t0=$(now)
  agent_start "$WORK/store-late" pgtrail_late "$WORK/agent-late.log"
  agent_wait_streaming
  slot_wait "$LATE_SENTINEL" pgtrail_late 3600
  agent_stop
  note "second store caught up with the lag run in $(since "$t0") s (untimed for the report)"
  times=()
  for rep in $(seq 1 "$REPS"); do
    t0=$(now)
    "$RESTORE" --store "$WORK/store-late" --to-lsn "$LAG_END_LSN" --target "dbname=restored_late" \
      >"$WORK/pitr-restore-late.out" 2>&1 || { cat "$WORK/pitr-restore-late.out" >&2; die "pitr-restore on the second store failed"; }
    times+=("$(since "$t0")")
    "$PGBIN/dropdb" restored_late
  done
  SINGLE_WHOLE_S="$(median "${times[@]}")"
  record single_whole_s "$SINGLE_WHOLE_S"
  note "whole database: $SINGLE_WHOLE_S s"
  SINGLE_WHERE="to the end of the lag run, from a second store whose snapshot was taken after the backlog"
  if ! single_tables "$WORK/store-late" --to-lsn "$LAG_END_LSN"; then
    note "pitr-restore --tables failed on the second store too: $SINGLE_ERROR"
    record single_error_late "$SINGLE_ERROR"
  fi
fi

# ---------------------------------------------------------------- 8. report

step "report"
MB=1048576
ratio() { calc "$1 / $2" "%.2f×"; }
met() { if awk "BEGIN { exit !($1) }" 2>/dev/null; then echo "yes"; else echo "**no**"; fi; }
fmt_s() { printf '%s s' "$1"; }
human() { awk -v b="$1" 'BEGIN { if (b >= 10485760) printf "%.0f MB", b / 1048576; else printf "%.0f kB", b / 1024 }'; }

rows_ps_agent=$(calc "${R[changes]} / ${R[drain_agent_s]}" "%.0f")
rows_ps_peer=$(calc "${R[changes]} / ${R[drain_peer_s]}" "%.0f")
mbps_agent=$(calc "${R[wal_bytes]} / $MB / ${R[drain_agent_s]}" "%.1f")
mbps_peer=$(calc "${R[wal_bytes]} / $MB / ${R[drain_peer_s]}" "%.1f")
store_ratio=$(calc "${R[store_added_bytes]} / ${R[wal_bytes]}" "%.3f")
settled_ratio=$(calc "${R[store_settled_bytes]} / ${R[wal_bytes]}" "%.3f")
w2j_ratio=$(calc "${R[w2j_bytes]} / ${R[wal_bytes]}" "%.3f")
rss_agent_mb=$(calc "${R[rss_agent_kb]} / 1024" "%.0f")
rss_peer_mb=$(calc "${R[rss_peer_kb]} / 1024" "%.0f")
drain_ratio=$(calc "${R[drain_agent_s]} / ${R[drain_peer_s]}" "%.2f")
restore_ratio=$(calc "${R[restore_pitr_s]} / ${R[restore_pgr_s]}" "%.2f")
restore1_ratio=$(calc "${R[restore_pitr1_s]} / ${R[restore_pgr_s]}" "%.2f")
if [ -n "${R[restore_pgbr_s]:-}" ]; then
  pgbr_cell="$(fmt_s "${R[restore_pgbr_s]}")"
  pgbr_ratio="$(ratio "${R[restore_pitr_s]}" "${R[restore_pgbr_s]}")"
else
  pgbr_cell="not measured: ${PGBR_ERROR//|/\\|}"
  pgbr_ratio="—"
fi

SINGLE_ROWS=""
for table in "${SINGLE_TABLES[@]}"; do
  if [ -n "${R[table_${table}_s]:-}" ]; then
    SINGLE_ROWS+="| 5 | single table $table (${R[table_${table}_rows]} rows, $(human "${R[table_${table}_bytes]}")) | $(fmt_s "${R[table_${table}_s]}") | pitr-restore of the whole database: $(fmt_s "$SINGLE_WHOLE_S") | $(ratio "${R[table_${table}_s]}" "$SINGLE_WHOLE_S") | grows with the table | |"$'\n'
  else
    SINGLE_ROWS+="| 5 | single table $table | failed: ${SINGLE_ERROR//|/\\|} | | | grows with the table | **no** |"$'\n'
  fi
done
SINGLE_ROWS="${SINGLE_ROWS%$'\n'}"
if [ "$SINGLE_FALLBACK" = 1 ]; then
  SINGLE_NOTE="Single-table restores: \`pitr-restore --tables\` on the capture store failed (\`${R[single_error]}\`), so they were measured $SINGLE_WHERE."
else
  SINGLE_NOTE="Single-table restores: $SINGLE_WHERE."
fi
TABLE="$(cat <<MD
| # | figure | pgtrail | peer | ratio | target | met |
|---|---|---|---|---|---|---|
| 1 | capture drain of the backlog | $(fmt_s "${R[drain_agent_s]}") | pg_recvlogical (pgoutput → /dev/null): $(fmt_s "${R[drain_peer_s]}") | ${drain_ratio}× | ≤ 1.1× | $(met "$drain_ratio <= 1.1") |
| 1 | capture throughput, row changes | ${rows_ps_agent} rows/s | ${rows_ps_peer} rows/s | $(ratio "$rows_ps_agent" "$rows_ps_peer") | | |
| 1 | capture throughput, WAL | ${mbps_agent} MB/s | ${mbps_peer} MB/s | $(ratio "$mbps_agent" "$mbps_peer") | | |
| 1 | the same drain over TCP to 127.0.0.1 | $(fmt_s "${R[drain_tcp_agent_s]}") | pg_recvlogical over TCP: $(fmt_s "${R[drain_tcp_peer_s]}") | $(calc "${R[drain_tcp_agent_s]} / ${R[drain_tcp_peer_s]}" "%.2f")× | reported | |
| 2 | store bytes added per WAL byte, agent running, right after the drain | ${store_ratio} ($(calc "${R[store_added_bytes]} / $MB" "%.0f") MB for $(calc "${R[wal_bytes]} / $MB" "%.0f") MB of WAL) | wal2json text: ${w2j_ratio} | $(ratio "$store_ratio" "$w2j_ratio") | ≤ 0.5 | $(met "$store_ratio <= 0.5") |
| 2 | store bytes added per WAL byte, after the agent's clean stop | ${settled_ratio} ($(calc "${R[store_settled_bytes]} / $MB" "%.0f") MB) | wal2json text: ${w2j_ratio} | $(ratio "$settled_ratio" "$w2j_ratio") | ≤ 0.5 | $(met "$settled_ratio <= 0.5") |
| 3 | peak RSS during the capture | ${rss_agent_mb} MB | pg_recvlogical: ${rss_peer_mb} MB | $(ratio "${R[rss_agent_kb]}" "${R[rss_peer_kb]}") | ≤ 256 MB | $(met "$rss_agent_mb <= 256") |
| 4 | lag, commit → durable in store, p50 | $(fmt_s "${R[lag_p50_s]}") | — | — | | |
| 4 | lag, commit → durable in store, p99 | $(fmt_s "${R[lag_p99_s]}") (max ${R[lag_max_s]} s, ${R[lag_samples]} samples, pgbench ${R[lag_tps]} tps) | — | — | ≤ 1 s | $(met "${R[lag_p99_s]} <= 1") |
| 5 | restore of the database to T | pitr-restore --jobs 2: $(fmt_s "${R[restore_pitr_s]}") | createdb + pg_restore -j2: $(fmt_s "${R[restore_pgr_s]}") (pg_dump -Fc took ${R[pgdump_s]} s) | ${restore_ratio}× | ≤ 1.2× | $(met "$restore_ratio <= 1.2") |
| 5 | the same in one transaction (the default) | pitr-restore: $(fmt_s "${R[restore_pitr1_s]}") | createdb + pg_restore -j2 | ${restore1_ratio}× | reported | |
| 5 | restore of the cluster to T | pitr-restore --jobs 2: $(fmt_s "${R[restore_pitr_s]}") | pgBackRest restore + WAL replay: ${pgbr_cell} | ${pgbr_ratio} | reported | |
$SINGLE_ROWS
| 6 | audit: history of account ${R[aid]} | changelog grep: $(fmt_s "${R[audit_pgtrail_s]}") (${R[audit_pgtrail_lines]} changes) | grep over wal2json text: $(fmt_s "${R[audit_grep_s]}") (${R[audit_grep_lines]} changes) | $(ratio "${R[audit_pgtrail_s]}" "${R[audit_grep_s]}") | reported | |
| 6 | audit: account ${R[aid]} by key (\`--key\`: the row index, and the changes from before the table had its key) | changelog grep --key: $(fmt_s "${R[audit_key_s]}") (${R[audit_key_lines]} changes) | grep over wal2json text: $(fmt_s "${R[audit_grep_s]}") (${R[audit_grep_lines]} changes) | $(ratio "${R[audit_key_s]}" "${R[audit_grep_s]}") | reported | |
MD
)"

mismatches="$(grep '^mismatch_' "$WORK/results" || true)"
mem_kb="$(awk '/^MemTotal:/ { print $2 }' /proc/meminfo)"
disk_dev="$(df --output=source "$WORK" | tail -1)"
disk_fs="$(df --output=fstype "$WORK" | tail -1)"
disk_rota="$(lsblk -ndo ROTA "$disk_dev" 2>/dev/null | head -1 || true)"

REPORT="$(cat <<MD
Run of $(date -u '+%Y-%m-%d %H:%M UTC'), pgtrail $BUILT_COMMIT, command:
\`$KNOBS $COMMAND_LINE\`

$TABLE

Backlog: pgbench -i -s $SCALE, $((per_client * CLIENTS)) pgbench transactions (-c $CLIENTS), one INSERT of $BIG_ROWS rows:
$(calc "${R[wal_bytes]} / $MB" "%.0f") MB of WAL, ${R[changes]} row changes in ${R[txns]} transactions.
Restore instant T = $T_AFTER. $SINGLE_NOTE Medians of $REPS repetitions for restores and the audit query,
of $DRAIN_REPS for the capture drain over the Unix socket, of $TCP_DRAIN_REPS over TCP. Store right after the drain, agent running: $(calc "${R[store_live_log_bytes]} / $MB" "%.0f") MB of it RocksDB's write-ahead log;
after the agent's stop: $(calc "${R[store_sst_bytes]} / $MB" "%.0f") MB of SST files. Agent VmHWM during the lag run: $(calc "${R[lag_rss_kb]} / 1024" "%.0f") MB.
$( [ -n "$mismatches" ] && printf '\n**Restored data differed from the source at T:** %s\n' "$mismatches" || echo "Every full restore (pitr-restore, pg_restore, pgBackRest) was checked against the source at T: row counts and balance sums agree.")

Load average (1, 5, 15 min) at the start: $LOAD_AT_START; at the end: $(cut -d' ' -f1-3 /proc/loadavg).
Machine: $(nproc) CPUs ($(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ *//')), $(calc "$mem_kb / 1048576" "%.0f") GiB RAM,
$disk_fs on $disk_dev$( [ "$disk_rota" = 0 ] && echo " (non-rotational)"), $(uname -sr), $(. /etc/os-release; echo "$PRETTY_NAME").
PostgreSQL $PG_VERSION (fsync on, synchronous_commit on, shared_buffers 256MB, autovacuum off),
pgBackRest $(dpkg-query -W -f='${Version}' pgbackrest 2>/dev/null || echo "-"), wal2json $(dpkg-query -W -f='${Version}' postgresql-15-wal2json 2>/dev/null || echo "-").
MD
)"

printf '%s\n' "$REPORT"

mkdir -p "$(dirname "$OUT")"
BEGIN_MARK="<!-- bench/run.sh results: begin -->"
END_MARK="<!-- bench/run.sh results: end -->"
printf '%s\n' "$REPORT" > "$WORK/report.md"
if [ -f "$OUT" ] && grep -qxF "$BEGIN_MARK" "$OUT" && grep -qxF "$END_MARK" "$OUT"; then
  # Replace only the generated part; the hand-written text around it stays.
  awk -v b="$BEGIN_MARK" -v e="$END_MARK" -v f="$WORK/report.md" '
    $0 == b { print; while ((getline line < f) > 0) print line; skip = 1; next }
    $0 == e { skip = 0 }
    !skip { print }' "$OUT" > "$WORK/out.md"
  cat "$WORK/out.md" > "$OUT"
else
  { echo "# pgtrail benchmarks"; echo; echo "$BEGIN_MARK"; cat "$WORK/report.md"; echo "$END_MARK"; } > "$OUT"
fi
echo
echo "bench: report written to $OUT"
