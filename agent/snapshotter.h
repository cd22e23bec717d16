// The base snapshot: schema, every published table's rows and the sequence
// values, read with the slot's exported snapshot so that it holds exactly
// the transactions committed before the slot's consistent point.
#ifndef PGTRAIL_AGENT_SNAPSHOTTER_H_
#define PGTRAIL_AGENT_SNAPSHOTTER_H_

#include <cstdint>
#include <string>

#include "proto/pgtrail.pb.h"
#include "storage/status.h"
#include "storage/store.h"

namespace pgtrail {

struct SnapshotRequest {
  std::string conninfo;        // the source, as the user gave it
  std::string snapshot_name;   // from CREATE_REPLICATION_SLOT ... (SNAPSHOT 'export')
  uint64_t consistent_lsn = 0;
  std::string publication;
  uint64_t snapshot_id = 1;
};

// Writes the snapshot's rows, relation layouts and its pb::Snapshot record
// (complete = true) into the store. Row batches are written as they fill;
// the final record is written with `final_batch_extra` (the caller's meta
// update) in one synced batch, so a crash leaves either no complete
// snapshot or a whole one.
// REQUIRES: nothing else is sent on the replication connection that
// exported the snapshot until this returns.
Status TakeSnapshot(const SnapshotRequest& request, Store* store, const pb::StoreMeta& meta,
                    pb::Snapshot* out);

// Runs argv (argv[0] is a path or a name looked up in PATH) with `env`
// entries added to the environment; captures stdout and stderr.
struct ProcessResult {
  int exit_code = -1;
  std::string out;
  std::string err;
};
Result<ProcessResult> RunProcess(const std::vector<std::string>& argv,
                                 const std::vector<std::string>& env);

// The pg_dump to use for a server of this major version:
// $PGTRAIL_PG_DUMP, else /usr/lib/postgresql/<major>/bin/pg_dump, else PATH.
std::string FindPgTool(const std::string& tool, int server_major);

}  // namespace pgtrail

#endif  // PGTRAIL_AGENT_SNAPSHOTTER_H_
