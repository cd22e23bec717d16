// Small RAII helpers over libpq, shared by the agent and the tools.
#ifndef PGTRAIL_STORAGE_PG_H_
#define PGTRAIL_STORAGE_PG_H_

#include <libpq-fe.h>

#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "storage/status.h"

namespace pgtrail {

// Owns a PGresult.
class PgResult {
 public:
  explicit PgResult(PGresult* res) : res_(res) {}
  PgResult(PgResult&& other) noexcept : res_(std::exchange(other.res_, nullptr)) {}
  PgResult& operator=(PgResult&& other) noexcept {
    std::swap(res_, other.res_);
    return *this;
  }
  PgResult(const PgResult&) = delete;
  PgResult& operator=(const PgResult&) = delete;
  ~PgResult() {
    if (res_ != nullptr) PQclear(res_);
  }

  int rows() const { return PQntuples(res_); }
  int cols() const { return PQnfields(res_); }
  bool IsNull(int row, int col) const { return PQgetisnull(res_, row, col) != 0; }
  std::string_view Get(int row, int col) const {
    return std::string_view(PQgetvalue(res_, row, col), PQgetlength(res_, row, col));
  }
  std::string GetString(int row, int col) const { return std::string(Get(row, col)); }
  PGresult* get() const { return res_; }

 private:
  PGresult* res_;
};

using ConnOverrides = std::vector<std::pair<std::string, std::string>>;

// Owns a PGconn.
class PgConn {
 public:
  // Connects with `conninfo`, a libpq connection string or URI ("" means: only
  // PG* environment variables and defaults, as psql). Each override
  // keyword=value is applied on top of what conninfo says (for example
  // replication=database). Passwords come from the conninfo, PGPASSWORD or
  // ~/.pgpass as libpq decides; they never appear in an error message.
  // Fails with kUnavailable on a connection failure.
  static Result<std::unique_ptr<PgConn>> Connect(const std::string& conninfo,
                                                 const ConnOverrides& overrides = {});
  ~PgConn();
  PgConn(const PgConn&) = delete;
  PgConn& operator=(const PgConn&) = delete;

  // Runs SQL (simple query protocol, may hold several statements) and expects
  // no error. kUnavailable if the connection broke, else kFailedPrecondition
  // carrying the server's message.
  Status Exec(const std::string& sql);
  // Runs one query and returns its rows.
  Result<PgResult> Query(const std::string& sql);
  // Runs a parameterized query (not allowed on replication connections).
  Result<PgResult> QueryParams(const std::string& sql, const std::vector<std::string>& params);

  // "host=/tmp port=5432 dbname=app user=alice": where we are connected, never the password.
  std::string Describe() const;
  std::string LastError() const;
  PGconn* get() const { return conn_; }

 private:
  explicit PgConn(PGconn* conn) : conn_(conn) {}
  Status CheckResult(PGresult* res, ExecStatusType expected, const std::string& what);

  PGconn* conn_;
};

// "name" with embedded quotes doubled: always safe for any identifier.
std::string QuoteIdent(std::string_view ident);
// 'value' with quotes doubled, as E'...' when it holds a backslash.
std::string QuoteLiteral(std::string_view value);
// "schema"."table"
std::string QualifiedName(std::string_view nspname, std::string_view relname);

// The parsed value of one keyword in a conninfo string ("" if absent);
// fails with kInvalidArgument if conninfo does not parse.
Result<std::string> ConninfoValue(const std::string& conninfo, const std::string& keyword);

}  // namespace pgtrail

#endif  // PGTRAIL_STORAGE_PG_H_
