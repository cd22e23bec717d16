// pitr-restore: plan and carry out a restore of the source as it was at a
// past instant, by merging the base snapshot with the row index (final image
// of every row), never by replaying every change.
#ifndef PGTRAIL_TOOLS_RESTORE_H_
#define PGTRAIL_TOOLS_RESTORE_H_

#include <cstdint>
#include <functional>
#include <nlohmann/json_fwd.hpp>
#include <optional>
#include <set>
#include <ostream>
#include <string>
#include <vector>

#include "proto/pgtrail.pb.h"
#include "storage/status.h"
#include "storage/store.h"

namespace pgtrail {

struct RestoreOptions {
  std::string store_path;
  // Exactly one restore target, as the user wrote it.
  std::string to_time;  // PostgreSQL timestamp
  std::string to_lsn;   // commit LSN, e.g. 0/192CB20
  std::string to_xid;   // transaction id
  std::string to_mark;  // name given to pgtrail-agent mark
  // Stop just before the target instead of just after it (LSN, xid, mark;
  // for a time: leave out transactions committed exactly at it).
  bool exclusive = false;
  std::string target;   // libpq conninfo of the database to fill
  std::vector<std::string> tables;  // "schema.table" or "table"; empty = all
  bool dry_run = false;
  // Empty the target first (it may then be non-empty, or the source itself).
  bool clean = false;
  bool assume_yes = false;  // --clean without the interactive confirmation
  // Connections loading rows at once (--jobs). Above 1 the restore is no
  // longer one transaction: it builds a new database under a temporary name
  // and renames it to the target's when complete (dropped on failure).
  int jobs = 1;
  std::string cpu_scheduling = "batch";  // see ApplyCpuScheduling (storage/cli.h)
};

// "schema.table", for messages.
std::string TableName(const pb::Relation& rel);

// Checks that exactly one target is given and that it parses.
Status ValidateRestoreTarget(const RestoreOptions& options);

struct RestoreTable {
  pb::Relation layout;  // columns as of the restore point
  uint64_t rows = 0;    // filled by counting (dry run) or loading
};

// A schema change between the snapshot and the restore point, replayed in
// the target at its place: it ends one epoch of rows and starts the next.
struct SchemaChange {
  uint64_t lsn = 0;  // commit LSN of its transaction
  uint32_t seq = 0;  // its place in the transaction
  uint32_t xid = 0;
  int64_t commit_time_us = 0;
  std::string tag;          // "ALTER TABLE"
  std::string query;        // the statement text as the client sent it
  std::string search_path;  // the session's search_path when it ran
  // What to run in the target: the schema statements of `query` (its other
  // statements are data changes, which come from the stream). Empty when an
  // earlier command of the same statement string already replayed them.
  std::string replay_sql;
  // The schema statements of `query`, in order.
  std::vector<std::string> schema_statements;
  // Tables a CREATE TABLE AS / SELECT INTO filled: emptied after the replay,
  // because their rows come from the stream.
  std::vector<std::string> filled_tables;
};

struct RestorePlan {
  std::string restore_point;  // how the target resolved, for people
  int64_t target_time_us = 0;
  pb::Snapshot snapshot;
  // The last transaction included (commit LSN order); none if the restore
  // point comes before the first transaction after the snapshot.
  std::optional<pb::TxnHeader> last_txn;
  uint64_t txns_applied = 0;  // transactions after the snapshot up to last_txn
  std::vector<RestoreTable> tables;  // as of the end of epoch 0
  std::set<uint32_t> chosen_relids;  // --tables: the relations chosen (empty: all)
  pb::StoreMeta meta;
  // Schema changes to replay, in order. Epoch 0 (snapshot plus the rows up
  // to the first schema change) is loaded by merge; each later epoch is
  // applied as a delta after its schema change.
  std::vector<SchemaChange> ddl;
  // Epoch 0 holds the changes at positions before (epoch0_end_lsn, _seq).
  uint64_t epoch0_end_lsn = 0;
  uint32_t epoch0_end_seq = 0;
};

// A string field of a JSON object (as text), if it is there and is a
// string. Logical messages are untrusted: anyone may emit one.
std::optional<std::string> JsonStringField(const std::string& json, const char* key);
std::optional<std::string> StringField(const nlohmann::json& j, const char* key);

// Parses a stored 'pgtrail.ddl' message; false if it is not one to replay
// (a sql_drop notice, pgtrail's own objects, privileges, publications).
bool ParseSchemaChange(const std::string& content, SchemaChange* out);

// Resolves the time and picks what to restore. Refuses (kInvalidArgument) a
// time outside the store's history, saying which range is available.
Result<RestorePlan> PlanRestore(Store* store, const RestoreOptions& options);

// Calls emit(row, copies) for every row of `layout`'s table as of the plan:
// the row's last image at or before the plan's last transaction, or its
// snapshot row; deleted and truncated rows are left out. Rows come in no
// particular order: final images held by changes come last, read in LSN
// order. kCorruption if a row was written under another layout than
// `layout`.
Status ForEachRowAt(Store* store, const RestorePlan& plan, const pb::Relation& layout,
                    const std::function<Status(const pb::Tuple&, uint64_t)>& emit);

// Counts every table's rows (for --dry-run).
Status CountRows(Store* store, RestorePlan* plan);

// Prints the plan (what a dry run shows, and the header of a real run).
void PrintPlan(const RestorePlan& plan, bool with_rows, std::ostream& out);

// Creates the target if needed, refuses a non-empty target or the source
// itself, then loads schema, rows and sequences.
Status ExecuteRestore(Store* store, RestorePlan* plan, const RestoreOptions& options,
                      std::ostream& out);

// Runs the whole command; returns the process exit status.
int RunRestoreCommand(const RestoreOptions& options, std::ostream& out);

// pitr-restore --list: base snapshots, marks and the covered range of time and
// LSN, as text or JSON (one object). Returns the process exit status.
int RunListCommand(const std::string& store_path, bool json, std::ostream& out);


}  // namespace pgtrail

#endif  // PGTRAIL_TOOLS_RESTORE_H_
