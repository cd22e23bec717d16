#include "agent/ddl_capture.h"

#include <spdlog/spdlog.h>

#include "agent/ddl_capture_sql.h"

namespace pgtrail {

Result<bool> EnsureDdlCapture(PgConn* conn) {
  ASSIGN_OR_RETURN(PgResult res,
                   conn->Query("SELECT (SELECT count(*) FROM pg_catalog.pg_event_trigger "
                               "        WHERE evtname IN ('pgtrail_ddl', 'pgtrail_drop') "
                               "          AND evtenabled <> 'D'), "
                               "       (SELECT rolsuper FROM pg_catalog.pg_roles "
                               "        WHERE rolname = current_user)"));
  if (res.Get(0, 0) == "2") return true;
  if (res.Get(0, 1) == "t") {
    RETURN_IF_ERROR(conn->Exec(kDdlCaptureSql).WithContext("cannot install DDL capture"));
    spdlog::info("installed DDL capture (event triggers pgtrail_ddl, pgtrail_drop)");
    return true;
  }
  spdlog::warn(
      "DDL capture is not installed and this role may not install it (event triggers need a "
      "superuser): schema changes will not be captured and restores will not reproduce them. "
      "HINT: an administrator runs deploy/sql/ddl-capture.sql in the source database before "
      "the agent's first start:\n{}",
      kDdlCaptureSql);
  return false;
}

}  // namespace pgtrail
