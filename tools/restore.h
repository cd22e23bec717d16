// pitr-restore: plan and carry out a restore of the source as it was at a
// past instant, by merging the base snapshot with the row index (final image
// of every row), never by replaying every change.
#ifndef PGTRAIL_TOOLS_RESTORE_H_
#define PGTRAIL_TOOLS_RESTORE_H_

#include <cstdint>
#include <functional>
#include <optional>
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
};

// Checks that exactly one target is given and that it parses.
Status ValidateRestoreTarget(const RestoreOptions& options);

struct RestoreTable {
  pb::Relation layout;  // columns as of the restore point
  uint64_t rows = 0;    // filled by counting (dry run) or loading
};

struct RestorePlan {
  std::string restore_point;  // how the target resolved, for people
  int64_t target_time_us = 0;
  pb::Snapshot snapshot;
  // The last transaction included (commit LSN order); none if the restore
  // point comes before the first transaction after the snapshot.
  std::optional<pb::TxnHeader> last_txn;
  uint64_t txns_applied = 0;  // transactions after the snapshot up to last_txn
  std::vector<RestoreTable> tables;
  pb::StoreMeta meta;
};

// Resolves the time and picks what to restore. Refuses (kInvalidArgument) a
// time outside the store's history, saying which range is available.
Result<RestorePlan> PlanRestore(Store* store, const RestoreOptions& options);

// Calls emit(row, copies) for every row of `layout`'s table as of the plan:
// the row's last image at or before the plan's last transaction, or its
// snapshot row; deleted and truncated rows are left out.
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
