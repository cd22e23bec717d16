// Restore across schema changes: after the base load (epoch 0), each schema
// change is replayed in the target at its place and the rows changed until
// the next one are applied as a delta on top, so every row is written in the
// layout current at its LSN and untouched rows go through the same DDL as on
// the source.
#ifndef PGTRAIL_TOOLS_RESTORE_EPOCHS_H_
#define PGTRAIL_TOOLS_RESTORE_EPOCHS_H_

#include <functional>
#include <ostream>
#include <set>

#include "proto/pgtrail.pb.h"
#include "storage/pg.h"
#include "storage/status.h"
#include "storage/store.h"
#include "tools/load_jobs.h"
#include "tools/restore.h"

namespace pgtrail {

struct EpochOptions {
  // Which tables get their rows (--tables); all when unset.
  std::function<bool(const pb::Relation&)> chosen;
  // --tables: a schema change that fails because it needs a table left out
  // is skipped instead of failing the restore.
  bool tolerate_ddl_failures = false;
};

// Replays plan.ddl in order on the main connection and applies each epoch's
// row changes through `jobs`. The OIDs of target tables that received rows
// are added to *loaded_oids. Returns once every load is done.
Status ApplyEpochs(Store* store, const RestorePlan& plan, LoadJobs* jobs,
                   const EpochOptions& options, std::set<std::string>* loaded_oids,
                   std::ostream& out);

}  // namespace pgtrail

#endif  // PGTRAIL_TOOLS_RESTORE_EPOCHS_H_
