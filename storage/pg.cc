#include "storage/pg.h"

#include <cctype>

namespace pgtrail {
namespace {

// The first line of a libpq message, without its trailing newline.
std::string FirstLine(const char* message) {
  if (message == nullptr) return "";
  std::string_view s(message);
  s = s.substr(0, s.find('\n'));
  while (!s.empty() && (s.back() == '\r' || s.back() == ' ')) s.remove_suffix(1);
  return std::string(s);
}

std::string TrimTrailingNewlines(const char* message) {
  if (message == nullptr) return "";
  std::string_view s(message);
  while (!s.empty() && (s.back() == '\n' || s.back() == '\r' || s.back() == ' ')) {
    s.remove_suffix(1);
  }
  return std::string(s);
}

// What libpq's expand_dbname treats as a connection string rather than a bare
// database name (recognized_connection_string() in fe-connect.c).
bool LooksLikeConninfo(std::string_view s) {
  return s.rfind("postgresql://", 0) == 0 || s.rfind("postgres://", 0) == 0 ||
         s.find('=') != std::string_view::npos;
}

// libpq's parse errors quote fragments of the input ('missing "=" after
// "secret"', or a whole URI), which may be part of a password, and may hold
// quote characters themselves. Keep fragments that are one punctuation mark
// ("=", "]") and hide everything from the first other fragment to the last quote.
std::string RedactQuoted(std::string_view message) {
  size_t open = message.find('"');
  while (open != std::string_view::npos && open + 2 < message.size() && message[open + 2] == '"' &&
         std::ispunct(static_cast<unsigned char>(message[open + 1]))) {
    open = message.find('"', open + 3);
  }
  size_t last = message.rfind('"');
  if (open == std::string_view::npos || last <= open) return std::string(message);
  return std::string(message.substr(0, open)) + "\"...\"" + std::string(message.substr(last + 1));
}

// Parses conninfo into libpq options; the caller frees them with PQconninfoFree.
Result<PQconninfoOption*> ParseConninfo(const std::string& conninfo) {
  char* errmsg = nullptr;
  PQconninfoOption* options = PQconninfoParse(conninfo.c_str(), &errmsg);
  if (options == nullptr) {
    std::string message = errmsg != nullptr ? RedactQuoted(FirstLine(errmsg)) : "out of memory";
    if (errmsg != nullptr) PQfreemem(errmsg);
    return Status::InvalidArgument("invalid connection string: " + message);
  }
  return options;
}

// PQstatus() can still say CONNECTION_OK on the first failed query after the
// server went away, so the error itself is checked too: errors that libpq
// makes up (no SQLSTATE; the server always sends one), connection exceptions
// (class 08) and server shutdowns (57P01..57P03) all mean "reconnect".
bool IsConnectionLoss(const PGresult* res) {
  if (res == nullptr) return true;
  const char* sqlstate = PQresultErrorField(res, PG_DIAG_SQLSTATE);
  if (sqlstate == nullptr) return true;
  std::string_view code(sqlstate);
  return code.rfind("08", 0) == 0 || code == "57P01" || code == "57P02" || code == "57P03";
}

std::string DescribeConn(const PGconn* conn) {
  std::string out;
  auto add = [&out](const char* key, const char* value) {
    if (value == nullptr || value[0] == '\0') return;
    if (!out.empty()) out.push_back(' ');
    out.append(key).append("=").append(value);
  };
  add("host", PQhost(conn));
  add("port", PQport(conn));
  add("dbname", PQdb(conn));
  add("user", PQuser(conn));
  return out;
}

}  // namespace

Result<std::unique_ptr<PgConn>> PgConn::Connect(const std::string& conninfo,
                                                const ConnOverrides& overrides) {
  // Check the syntax first: libpq's own parse errors may quote the string.
  if (LooksLikeConninfo(conninfo)) {
    ASSIGN_OR_RETURN(PQconninfoOption * options, ParseConninfo(conninfo));
    PQconninfoFree(options);
  }

  // expand_dbname expands only the first "dbname"; later keywords win over
  // whatever it expanded to. An empty conninfo is ignored, leaving PG* defaults.
  std::vector<const char*> keywords = {"dbname"};
  std::vector<const char*> values = {conninfo.c_str()};
  for (const auto& [keyword, value] : overrides) {
    keywords.push_back(keyword.c_str());
    values.push_back(value.c_str());
  }
  keywords.push_back("fallback_application_name");
  values.push_back("pgtrail");
  keywords.push_back(nullptr);
  values.push_back(nullptr);

  PGconn* conn = PQconnectdbParams(keywords.data(), values.data(), /*expand_dbname=*/1);
  if (conn == nullptr) return Status::Unavailable("could not connect: out of memory");
  if (PQstatus(conn) != CONNECTION_OK) {
    std::string target = DescribeConn(conn);
    std::string error = FirstLine(PQerrorMessage(conn));
    PQfinish(conn);
    return Status::Unavailable("could not connect to " + (target.empty() ? "server" : target) +
                               ": " + error);
  }
  return std::unique_ptr<PgConn>(new PgConn(conn));
}

PgConn::~PgConn() {
  if (conn_ != nullptr) PQfinish(conn_);
}

Status PgConn::CheckResult(PGresult* res, ExecStatusType expected, const std::string& what) {
  if (res != nullptr && PQresultStatus(res) == expected) return Status::OK();
  ExecStatusType status = res != nullptr ? PQresultStatus(res) : PGRES_FATAL_ERROR;
  bool is_error = status == PGRES_FATAL_ERROR || status == PGRES_NONFATAL_ERROR;
  if (PQstatus(conn_) == CONNECTION_BAD || (is_error && IsConnectionLoss(res))) {
    const char* message = res != nullptr ? PQresultErrorMessage(res) : PQerrorMessage(conn_);
    return Status::Unavailable("connection lost during " + what + ": " + FirstLine(message));
  }
  if (!is_error) {
    return Status::FailedPrecondition(what + ": unexpected result " + PQresStatus(status));
  }
  const char* primary = PQresultErrorField(res, PG_DIAG_MESSAGE_PRIMARY);
  if (primary != nullptr) return Status::FailedPrecondition(TrimTrailingNewlines(primary));
  return Status::FailedPrecondition(TrimTrailingNewlines(PQresultErrorMessage(res)));
}

Status PgConn::Exec(const std::string& sql) {
  PgResult res(PQexec(conn_, sql.c_str()));
  // Several statements may end with a SELECT: either success status is fine.
  ExecStatusType expected = res.get() != nullptr && PQresultStatus(res.get()) == PGRES_TUPLES_OK
                                ? PGRES_TUPLES_OK
                                : PGRES_COMMAND_OK;
  return CheckResult(res.get(), expected, "query");
}

Result<PgResult> PgConn::Query(const std::string& sql) {
  PgResult res(PQexec(conn_, sql.c_str()));
  RETURN_IF_ERROR(CheckResult(res.get(), PGRES_TUPLES_OK, "query"));
  return res;
}

Result<PgResult> PgConn::QueryParams(const std::string& sql,
                                     const std::vector<std::string>& params) {
  std::vector<const char*> values;
  values.reserve(params.size());
  for (const std::string& p : params) values.push_back(p.c_str());
  PgResult res(PQexecParams(conn_, sql.c_str(), static_cast<int>(values.size()),
                            /*paramTypes=*/nullptr, values.data(), /*paramLengths=*/nullptr,
                            /*paramFormats=*/nullptr, /*resultFormat=*/0));
  RETURN_IF_ERROR(CheckResult(res.get(), PGRES_TUPLES_OK, "query"));
  return res;
}

std::string PgConn::Describe() const { return DescribeConn(conn_); }

std::string PgConn::LastError() const { return TrimTrailingNewlines(PQerrorMessage(conn_)); }

std::string QuoteIdent(std::string_view ident) {
  std::string out = "\"";
  for (char c : ident) {
    if (c == '"') out.push_back('"');
    out.push_back(c);
  }
  out.push_back('"');
  return out;
}

std::string QuoteLiteral(std::string_view value) {
  // As PQescapeLiteral: with a backslash, use E'' so the result means the same
  // whatever standard_conforming_strings says.
  bool has_backslash = value.find('\\') != std::string_view::npos;
  std::string out = has_backslash ? "E'" : "'";
  for (char c : value) {
    if (c == '\'' || c == '\\') out.push_back(c);
    out.push_back(c);
  }
  out.push_back('\'');
  return out;
}

std::string QualifiedName(std::string_view nspname, std::string_view relname) {
  return QuoteIdent(nspname) + "." + QuoteIdent(relname);
}

Result<std::string> ConninfoValue(const std::string& conninfo, const std::string& keyword) {
  // Connect() takes a bare word as a database name; answer the same way.
  if (!LooksLikeConninfo(conninfo)) return keyword == "dbname" ? conninfo : std::string();
  ASSIGN_OR_RETURN(PQconninfoOption * options, ParseConninfo(conninfo));
  std::string value;
  for (PQconninfoOption* opt = options; opt->keyword != nullptr; opt++) {
    if (keyword == opt->keyword && opt->val != nullptr) value = opt->val;
  }
  PQconninfoFree(options);
  return value;
}

}  // namespace pgtrail
