// DDL capture: an event trigger on the source puts each DDL statement into
// the replication stream as a transactional logical message, so schema
// changes arrive in order with the data (deploy/sql/ddl-capture.sql).
#ifndef PGTRAIL_AGENT_DDL_CAPTURE_H_
#define PGTRAIL_AGENT_DDL_CAPTURE_H_

#include "storage/pg.h"
#include "storage/status.h"

namespace pgtrail {

inline constexpr char kDdlPrefix[] = "pgtrail.ddl";

// Installs the event triggers if they are missing and the role may (a
// superuser). Returns true when DDL capture is in place, false when it is not
// and could not be installed: then the exact SQL for an administrator has
// been logged.
Result<bool> EnsureDdlCapture(PgConn* conn);

}  // namespace pgtrail

#endif  // PGTRAIL_AGENT_DDL_CAPTURE_H_
