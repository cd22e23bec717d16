#include "agent/snapshotter.h"

#include <fcntl.h>
#include <poll.h>
#include <rocksdb/write_batch.h>
#include <spdlog/spdlog.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <cstring>
#include <filesystem>

#include "agent/replication_stream.h"
#include "storage/coding.h"
#include "storage/copy_text.h"
#include "storage/dump_sql.h"
#include "storage/keys.h"
#include "storage/pg.h"
#include "storage/pg_time.h"

extern char** environ;

namespace pgtrail {
namespace {

constexpr size_t kRowBatchBytes = 8u << 20;

// Splits the user's conninfo into a password-free string for child
// processes' argv and the password for their environment.
Status ConninfoForChild(const std::string& conninfo, std::string* without_password,
                        std::string* password) {
  char* err = nullptr;
  PQconninfoOption* opts = PQconninfoParse(conninfo.c_str(), &err);
  if (opts == nullptr) {
    std::string msg = err != nullptr ? err : "out of memory";
    if (err != nullptr) PQfreemem(err);
    while (!msg.empty() && msg.back() == '\n') msg.pop_back();
    return Status::InvalidArgument("invalid connection string: " + msg);
  }
  without_password->clear();
  for (PQconninfoOption* o = opts; o->keyword != nullptr; o++) {
    if (o->val == nullptr) continue;
    if (std::strcmp(o->keyword, "password") == 0) {
      *password = o->val;
      continue;
    }
    *without_password += std::string(o->keyword) + "=" + QuoteLiteral(o->val).substr(0) + " ";
  }
  PQconninfoFree(opts);
  return Status::OK();
}

Result<PgResult> QueryOne(PgConn* conn, const std::string& sql,
                          const std::vector<std::string>& params) {
  return conn->QueryParams(sql, params);
}

// The columns pgoutput publishes, in attribute order, with their key flags
// as pgoutput sets them for the table's replica identity.
Status LoadLayout(PgConn* conn, uint32_t relid, pb::Relation* rel) {
  ASSIGN_OR_RETURN(
      PgResult cols,
      QueryOne(conn,
               "SELECT a.attname, a.atttypid, a.atttypmod, "
               "       pg_catalog.format_type(a.atttypid, a.atttypmod), "
               "       CASE c.relreplident "
               "         WHEN 'f' THEN true "
               "         WHEN 'd' THEN EXISTS (SELECT 1 FROM pg_catalog.pg_index i "
               "             WHERE i.indrelid = c.oid AND i.indisprimary "
               "               AND a.attnum = ANY (i.indkey)) "
               "         WHEN 'i' THEN EXISTS (SELECT 1 FROM pg_catalog.pg_index i "
               "             WHERE i.indrelid = c.oid AND i.indisreplident "
               "               AND a.attnum = ANY (i.indkey)) "
               "         ELSE false END "
               "FROM pg_catalog.pg_attribute a JOIN pg_catalog.pg_class c ON c.oid = a.attrelid "
               "WHERE a.attrelid = $1 AND a.attnum > 0 AND NOT a.attisdropped "
               "  AND a.attgenerated = '' "
               "ORDER BY a.attnum",
               {std::to_string(relid)}));
  for (int i = 0; i < cols.rows(); i++) {
    pb::Column* col = rel->add_columns();
    col->set_name(cols.GetString(i, 0));
    col->set_type_oid(static_cast<uint32_t>(std::stoul(cols.GetString(i, 1))));
    col->set_type_mod(std::stoi(cols.GetString(i, 2)));
    col->set_type_name(cols.GetString(i, 3));
    col->set_key(cols.Get(i, 4) == "t");
  }
  return Status::OK();
}

Status CopyTable(PgConn* conn, Store* store, uint64_t snapshot_id, const pb::Relation& rel,
                 uint64_t* row_count) {
  std::string sql = "COPY " + QualifiedName(rel.nspname(), rel.relname()) + " (";
  for (int i = 0; i < rel.columns_size(); i++) {
    if (i > 0) sql += ", ";
    sql += QuoteIdent(rel.columns(i).name());
  }
  sql += ") TO STDOUT";
  if (rel.columns_size() == 0) {
    // COPY needs a column; a table without columns still has rows.
    sql = "COPY (SELECT FROM " + QualifiedName(rel.nspname(), rel.relname()) + ") TO STDOUT";
  }
  PGresult* res = PQexec(conn->get(), sql.c_str());
  const ExecStatusType st = PQresultStatus(res);
  std::string err = PQresultErrorMessage(res);
  PQclear(res);
  if (st != PGRES_COPY_OUT) {
    return Status::FailedPrecondition("cannot copy " + rel.nspname() + "." + rel.relname() + ": " +
                                      err);
  }
  const bool multiset = IsMultiset(rel);
  rocksdb::WriteBatch batch;
  pb::Tuple tuple;
  std::string rowkey;
  std::string value;
  uint64_t rows = 0;
  for (;;) {
    char* buf = nullptr;
    int n = PQgetCopyData(conn->get(), &buf, 0);
    if (n == -1) break;
    if (n < 0) return Status::Unavailable("copy of " + rel.relname() + " failed: " + conn->LastError());
    std::string_view line(buf, n);
    if (!line.empty() && line.back() == '\n') line.remove_suffix(1);
    Status parsed = ParseCopyTextLine(line, rel.columns_size(), &tuple);
    PQfreemem(buf);
    RETURN_IF_ERROR(parsed.WithContext("snapshot of " + rel.nspname() + "." + rel.relname()));
    rowkey.clear();
    RETURN_IF_ERROR(AppendTupleRowKey(&rowkey, rel, tuple));
    tuple.SerializeToString(&value);
    batch.Put(store->cf(Family::kSnapRow),
              keys::SnapRowKey(snapshot_id, rel.relid(), rowkey,
                               multiset ? static_cast<int64_t>(rows) : -1),
              value);
    rows++;
    if (batch.GetDataSize() >= kRowBatchBytes) {
      RETURN_IF_ERROR(store->Write(&batch, /*sync=*/false));
      batch.Clear();
    }
  }
  while (PGresult* r = PQgetResult(conn->get())) {
    const bool ok = PQresultStatus(r) == PGRES_COMMAND_OK;
    std::string e = PQresultErrorMessage(r);
    PQclear(r);
    if (!ok) return Status::FailedPrecondition("copy of " + rel.relname() + " failed: " + e);
  }
  RETURN_IF_ERROR(store->Write(&batch, /*sync=*/false));
  *row_count = rows;
  return Status::OK();
}

Result<std::string> PgDumpSection(const SnapshotRequest& req, const std::string& pg_dump,
                                  const std::string& section) {
  std::string conninfo, password;
  RETURN_IF_ERROR(ConninfoForChild(req.conninfo, &conninfo, &password));
  std::vector<std::string> env;
  if (!password.empty()) env.push_back("PGPASSWORD=" + password);
  ASSIGN_OR_RETURN(
      ProcessResult r,
      RunProcess({pg_dump, "--schema-only", "--section=" + section, "--snapshot=" + req.snapshot_name,
                  "--no-owner", "--no-privileges", "--no-publications", "--no-subscriptions",
                  "--no-comments", "--exclude-schema=pgtrail", "--dbname=" + conninfo},
                 env));
  if (r.exit_code != 0) {
    std::string err = r.err;
    while (!err.empty() && err.back() == '\n') err.pop_back();
    return Status::FailedPrecondition("pg_dump --section=" + section + " failed: " + err);
  }
  return WithoutPgtrailObjects(r.out);
}

}  // namespace

std::string FindPgTool(const std::string& tool, int server_major) {
  if (tool == "pg_dump") {
    if (const char* env = std::getenv("PGTRAIL_PG_DUMP")) return env;
  }
  const std::string versioned =
      "/usr/lib/postgresql/" + std::to_string(server_major) + "/bin/" + tool;
  if (::access(versioned.c_str(), X_OK) == 0) return versioned;
  return tool;
}

Result<ProcessResult> RunProcess(const std::vector<std::string>& argv,
                                 const std::vector<std::string>& env) {
  int out_pipe[2], err_pipe[2];
  if (::pipe2(out_pipe, O_CLOEXEC) != 0 || ::pipe2(err_pipe, O_CLOEXEC) != 0) {
    return Status::IOError("cannot create a pipe");
  }
  std::vector<std::string> envs;
  for (char** e = environ; *e != nullptr; e++) envs.emplace_back(*e);
  for (const auto& e : env) envs.push_back(e);
  std::vector<char*> cargv, cenv;
  for (const auto& a : argv) cargv.push_back(const_cast<char*>(a.c_str()));
  cargv.push_back(nullptr);
  for (const auto& e : envs) cenv.push_back(const_cast<char*>(e.c_str()));
  cenv.push_back(nullptr);

  pid_t pid = ::fork();
  if (pid < 0) return Status::IOError("cannot fork");
  if (pid == 0) {
    ::dup2(out_pipe[1], 1);
    ::dup2(err_pipe[1], 2);
    ::execvpe(cargv[0], cargv.data(), cenv.data());
    std::fprintf(stderr, "cannot run %s: %s\n", cargv[0], std::strerror(errno));
    ::_exit(127);
  }
  ::close(out_pipe[1]);
  ::close(err_pipe[1]);
  ProcessResult result;
  pollfd fds[2] = {{out_pipe[0], POLLIN, 0}, {err_pipe[0], POLLIN, 0}};
  std::string* sinks[2] = {&result.out, &result.err};
  int open_fds = 2;
  char buf[65536];
  while (open_fds > 0) {
    if (::poll(fds, 2, -1) < 0) {
      if (errno == EINTR) continue;
      break;
    }
    for (int i = 0; i < 2; i++) {
      if (fds[i].fd < 0 || fds[i].revents == 0) continue;
      ssize_t n = ::read(fds[i].fd, buf, sizeof(buf));
      if (n > 0) {
        sinks[i]->append(buf, n);
      } else if (n == 0 || errno != EINTR) {
        ::close(fds[i].fd);
        fds[i].fd = -1;
        open_fds--;
      }
    }
  }
  int status = 0;
  while (::waitpid(pid, &status, 0) < 0 && errno == EINTR) {
  }
  result.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
  return result;
}

Status TakeSnapshot(const SnapshotRequest& req, Store* store, const pb::StoreMeta& meta,
                    pb::Snapshot* out) {
  const auto started = std::chrono::steady_clock::now();
  // Rows left by an interrupted attempt at this snapshot are dropped first.
  {
    rocksdb::WriteBatch clear;
    clear.DeleteRange(store->cf(Family::kSnapRow), keys::SnapshotKey(req.snapshot_id),
                      keys::SnapshotKey(req.snapshot_id + 1));
    RETURN_IF_ERROR(store->Write(&clear, /*sync=*/false));
  }
  ASSIGN_OR_RETURN(auto conn, PgConn::Connect(req.conninfo, SourceSessionSettings()));
  RETURN_IF_ERROR(conn->Exec("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY"));
  RETURN_IF_ERROR(conn->Exec("SET TRANSACTION SNAPSHOT " + QuoteLiteral(req.snapshot_name)));

  pb::Snapshot snap;
  snap.set_id(req.snapshot_id);
  snap.set_consistent_lsn(req.consistent_lsn);
  ASSIGN_OR_RETURN(PgResult now,
                   conn->Query("SELECT (extract(epoch FROM now()) * 1000000)::bigint, "
                               "current_setting('server_version_num')::int / 10000"));
  snap.set_taken_at_us(std::stoll(now.GetString(0, 0)));
  const int server_major = std::stoi(now.GetString(0, 1));

  // Schema, split as pg_restore does: tables before the data, indexes and
  // constraints after it.
  const std::string pg_dump = FindPgTool("pg_dump", server_major);
  ASSIGN_OR_RETURN(std::string pre, PgDumpSection(req, pg_dump, "pre-data"));
  ASSIGN_OR_RETURN(std::string post, PgDumpSection(req, pg_dump, "post-data"));
  snap.set_pre_data_sql(std::move(pre));
  snap.set_post_data_sql(std::move(post));

  ASSIGN_OR_RETURN(
      PgResult tables,
      QueryOne(conn.get(),
               "SELECT c.oid, n.nspname, c.relname, c.relreplident "
               "FROM pg_catalog.pg_publication_tables p "
               "JOIN pg_catalog.pg_namespace n ON n.nspname = p.schemaname "
               "JOIN pg_catalog.pg_class c ON c.relnamespace = n.oid AND c.relname = p.tablename "
               "WHERE p.pubname = $1 ORDER BY n.nspname, c.relname",
               {req.publication}));
  spdlog::info("snapshot: copying {} tables at {}", tables.rows(), FormatLsn(req.consistent_lsn));
  uint64_t total_rows = 0;
  rocksdb::WriteBatch layouts;
  for (int t = 0; t < tables.rows(); t++) {
    pb::Relation rel;
    rel.set_relid(static_cast<uint32_t>(std::stoul(tables.GetString(t, 0))));
    rel.set_nspname(tables.GetString(t, 1));
    rel.set_relname(tables.GetString(t, 2));
    rel.set_replica_identity(static_cast<unsigned char>(tables.Get(t, 3)[0]));
    rel.set_lsn(req.consistent_lsn);
    RETURN_IF_ERROR(LoadLayout(conn.get(), rel.relid(), &rel));
    uint64_t rows = 0;
    RETURN_IF_ERROR(CopyTable(conn.get(), store, req.snapshot_id, rel, &rows));
    layouts.Put(store->cf(Family::kRelation), keys::RelationKey(rel.relid(), rel.lsn(), 0),
                rel.SerializeAsString());
    pb::SnapshotTable* st = snap.add_tables();
    st->set_relid(rel.relid());
    st->set_nspname(rel.nspname());
    st->set_relname(rel.relname());
    st->set_row_count(rows);
    total_rows += rows;
    spdlog::info("snapshot: {}.{}: {} rows ({}/{})", rel.nspname(), rel.relname(), rows, t + 1,
                 tables.rows());
  }

  // Sequences are not transactional: their current values, which are at
  // least those of the snapshot. Restore never sets one below max(column).
  ASSIGN_OR_RETURN(PgResult seqs,
                   conn->Query("SELECT schemaname, sequencename, last_value IS NOT NULL, "
                               "coalesce(last_value, start_value) FROM pg_catalog.pg_sequences "
                               "ORDER BY 1, 2"));
  for (int i = 0; i < seqs.rows(); i++) {
    pb::SequenceValue* s = snap.add_sequences();
    s->set_nspname(seqs.GetString(i, 0));
    s->set_relname(seqs.GetString(i, 1));
    s->set_is_called(seqs.Get(i, 2) == "t");
    s->set_last_value(std::stoll(seqs.GetString(i, 3)));
  }
  RETURN_IF_ERROR(conn->Exec("COMMIT"));

  snap.set_complete(true);
  layouts.Put(store->cf(Family::kSnapshot), keys::SnapshotKey(snap.id()), snap.SerializeAsString());
  layouts.Put(store->cf(Family::kMeta), keys::kMetaKey, meta.SerializeAsString());
  RETURN_IF_ERROR(store->Write(&layouts, /*sync=*/true));
  const double secs =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count();
  spdlog::info("snapshot {} complete: {} tables, {} rows, {} sequences in {:.1f} s", snap.id(),
               snap.tables_size(), total_rows, snap.sequences_size(), secs);
  *out = std::move(snap);
  return Status::OK();
}

}  // namespace pgtrail
