#include "agent/ddl_capture.h"

#include <spdlog/spdlog.h>

#include "agent/ddl_capture_sql.h"

namespace pgtrail {

// pitr-restore replays the text of 'pgtrail.ddl' messages. Any role that may
// call pg_logical_emit_message can put such a message into the stream, so
// say so when PUBLIC may (PostgreSQL's default).
void WarnIfMessagesAreForgeable(PgConn* conn) {
  auto res = conn->Query(
      "SELECT has_function_privilege('public', "
      "'pg_catalog.pg_logical_emit_message(boolean, text, text)', 'EXECUTE')");
  if (!res.ok() || res->Get(0, 0) != "t") return;
  spdlog::warn(
      "every role may call pg_logical_emit_message on the source, so any role can forge a "
      "schema change that pitr-restore would replay; review the schema changes that "
      "pitr-restore --dry-run lists before restoring. HINT: REVOKE EXECUTE ON FUNCTION "
      "pg_catalog.pg_logical_emit_message(boolean, text, text) FROM PUBLIC (and the bytea "
      "variant), then make pgtrail.capture_ddl() SECURITY DEFINER, owned by a superuser");
}

Result<bool> EnsureDdlCapture(PgConn* conn) {
  WarnIfMessagesAreForgeable(conn);
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
