// Integration-test fixtures: a throwaway PostgreSQL 15 cluster, the pgtrail
// binaries as child processes, and fingerprints for comparing databases.
//
// Everything here is for tests only. Failures are returned as Status, or, for
// the helpers whose result is a plain value (Scalar, Query, fingerprints), are
// reported with gtest's ADD_FAILURE() so that the test fails with the server's
// message while the call still returns something comparable.
//
// Thread safety: none; use each object from one thread.
#ifndef PGTRAIL_TESTS_INTEGRATION_PG_CLUSTER_H_
#define PGTRAIL_TESTS_INTEGRATION_PG_CLUSTER_H_

#include <gtest/gtest.h>
#include <sys/types.h>

#include <chrono>
#include <csignal>
#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <ostream>
#include <string>
#include <vector>

#include "storage/pg.h"
#include "storage/status.h"

namespace pgtrail::testing {

// Paths of the binaries under test, set by tests/CMakeLists.txt. The
// PostgreSQL binaries come from /usr/lib/postgresql/15/bin, or from the
// directory in the environment variable PGTRAIL_PG_BINDIR.
inline constexpr const char kAgentBin[] = PGTRAIL_AGENT_BIN;
inline constexpr const char kRestoreBin[] = PGTRAIL_RESTORE_BIN;
inline constexpr const char kChangelogBin[] = PGTRAIL_CHANGELOG_BIN;

// gtest glue for Status and Result<T>.
inline const Status& StatusOf(const Status& status) { return status; }
template <typename T>
const Status& StatusOf(const Result<T>& result) {
  return result.status();
}

// ASSERT_OK(expr) / EXPECT_OK(expr): expr is a Status or a Result<T>; on
// failure the message is the status text.
#define PGTRAIL_STATUS_OK_IMPL(expr, fail)                                   \
  do {                                                                       \
    const ::pgtrail::Status _pgtrail_s = ::pgtrail::testing::StatusOf(expr); \
    if (!_pgtrail_s.ok()) {                                                  \
      fail() << #expr << " failed: " << _pgtrail_s.ToString();               \
    }                                                                        \
  } while (0)
#define ASSERT_OK(expr) PGTRAIL_STATUS_OK_IMPL(expr, FAIL)
#define EXPECT_OK(expr) PGTRAIL_STATUS_OK_IMPL(expr, ADD_FAILURE)

// ASSERT_OK_AND_ASSIGN(auto conn, cluster.Connect("app")); fatal if not ok.
#define PGTRAIL_ASSERT_OK_AND_ASSIGN_IMPL(tmp, lhs, expr)                   \
  auto tmp = (expr);                                                        \
  ASSERT_TRUE(tmp.ok()) << #expr << " failed: " << tmp.status().ToString(); \
  lhs = std::move(tmp).value()
#define ASSERT_OK_AND_ASSIGN(lhs, expr) \
  PGTRAIL_ASSERT_OK_AND_ASSIGN_IMPL(PGTRAIL_CONCAT(_pgtrail_aoa_, __LINE__), lhs, expr)

// A directory under /tmp, removed (recursively) on destruction unless the
// environment variable PGTRAIL_KEEP_TEST_DIRS is set.
class TempDir {
 public:
  TempDir() = default;  // empty path(); call Create()
  ~TempDir();
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;

  // mkdtemp("/tmp/<prefix>XXXXXX"). REQUIRES: not created yet.
  Status Create(const std::string& prefix);
  // Removes the directory now (no-op if empty or kept).
  void Remove();
  const std::string& path() const { return path_; }

 private:
  std::string path_;
};

// One result row; std::nullopt is SQL NULL.
using Row = std::vector<std::optional<std::string>>;
using Rows = std::vector<Row>;

// What two databases must agree on for one table.
struct Fingerprint {
  // '"name" type [NOT NULL]' per live column in attnum order, joined with ", ".
  std::string columns;
  int64_t row_count = 0;
  // md5 of all rows as text, sorted bytewise, joined with '\n'.
  std::string rows_md5;

  bool operator==(const Fingerprint& other) const {
    return columns == other.columns && row_count == other.row_count && rows_md5 == other.rows_md5;
  }
  bool operator!=(const Fingerprint& other) const { return !(*this == other); }
};
std::ostream& operator<<(std::ostream& os, const Fingerprint& fp);

// "schema.table" (unquoted) -> fingerprint.
using DatabaseFingerprints = std::map<std::string, Fingerprint>;
// gtest prints one table per line (found by ADL).
void PrintTo(const DatabaseFingerprints& fps, std::ostream* os);
// EXPECT_TRUE(FingerprintsEqual(a, b)): on mismatch lists only the tables that
// are missing on one side or differ.
::testing::AssertionResult FingerprintsEqual(const DatabaseFingerprints& expected,
                                             const DatabaseFingerprints& actual);

// A PostgreSQL 15 cluster in a fresh temp dir, listening on 127.0.0.1 at a
// free port, wal_level=logical, trust auth, superuser "postgres", timezone UTC.
// The server runs as the OS user "postgres" when we are root.
class PgCluster {
 public:
  PgCluster() = default;
  ~PgCluster();  // Stop()
  PgCluster(const PgCluster&) = delete;
  PgCluster& operator=(const PgCluster&) = delete;

  // initdb + configure + pg_ctl start. On failure the message carries the
  // tail of the initdb output or of the server log. REQUIRES: not started.
  Status Start();
  // pg_ctl stop -m immediate, then removes the temp dir (kept if
  // PGTRAIL_KEEP_TEST_DIRS is set). Safe to call twice.
  void Stop();
  // pg_ctl restart -m fast: same port, same data.
  Status Restart();
  bool running() const { return running_; }

  int port() const { return port_; }
  const std::string& dir() const { return dir_.path(); }  // also the socket dir
  std::string data_dir() const { return dir_.path() + "/data"; }
  std::string log_path() const { return dir_.path() + "/postgres.log"; }
  std::string LogContents() const;

  // "host=127.0.0.1 port=N user=postgres dbname=<dbname>"
  std::string ConnInfo(const std::string& dbname = "postgres") const;
  // A fresh connection (each helper below also uses its own, closed on return,
  // so none of them keeps a database busy).
  Result<std::unique_ptr<PgConn>> Connect(const std::string& dbname = "postgres") const;

  Status CreateDatabase(const std::string& name);
  // DROP DATABASE IF EXISTS ... WITH (FORCE).
  Status DropDatabase(const std::string& name);
  // Runs SQL (one or several statements, simple protocol).
  Status Exec(const std::string& db, const std::string& sql);
  // All rows of one query; on error ADD_FAILURE() and no rows.
  Rows Query(const std::string& db, const std::string& sql);
  // The single value of a one-row one-column query; "<null>" for NULL; on
  // error ADD_FAILURE() and "<error: ...>".
  std::string Scalar(const std::string& db, const std::string& sql);

  // Columns plus sorted-row checksum of one table; identifiers are quoted
  // here, pass them unquoted. On error ADD_FAILURE() and columns "<error: ...>".
  Fingerprint TableFingerprint(const std::string& db, const std::string& schema,
                               const std::string& table);
  // Every ordinary table outside pg_*, information_schema and pgtrail, read in
  // one REPEATABLE READ snapshot.
  DatabaseFingerprints DatabaseFingerprint(const std::string& db);

  // pg_current_wal_lsn() as text ("0/1A2B3C0"); on error ADD_FAILURE() and "".
  std::string CurrentWalLsn(const std::string& db = "postgres");
  // Polls every 50 ms until the slot's confirmed_flush_lsn >= target_lsn.
  // False on timeout (or if the slot never appears).
  bool WaitForSlotCatchUp(const std::string& slot, const std::string& target_lsn,
                          std::chrono::milliseconds timeout = std::chrono::seconds(30));

 private:
  Status StartServer();
  Status WriteConfig();

  TempDir dir_;
  int port_ = 0;
  bool initialized_ = false;
  bool running_ = false;
};

// A long-running child (by default pgtrail-agent) with stdout+stderr appended
// to a log file in its own temp dir. The child dies with the test process
// (PR_SET_PDEATHSIG) and is SIGKILLed and reaped on destruction.
class AgentProcess {
 public:
  explicit AgentProcess(std::string binary = kAgentBin);
  ~AgentProcess();
  AgentProcess(const AgentProcess&) = delete;
  AgentProcess& operator=(const AgentProcess&) = delete;

  // Launches `binary args...`. May be called again once the previous run has
  // exited (the log keeps both runs). REQUIRES: !IsRunning().
  Status Start(const std::vector<std::string>& args);
  // kill(pid, signal); kNotFound if not running.
  Status Kill(int signal = SIGTERM);
  // Waits up to `timeout` for the child to exit: its exit code, or 128+signal
  // if a signal ended it; std::nullopt on timeout or if never started.
  std::optional<int> WaitExit(std::chrono::milliseconds timeout = std::chrono::seconds(30));
  // Reaps without blocking.
  bool IsRunning();
  // The exit code of the last run once reaped (as WaitExit).
  std::optional<int> exit_code() const { return exit_code_; }
  pid_t pid() const { return pid_; }

  const std::string& log_path() const { return log_path_; }
  std::string LogContents() const;

 private:
  std::string binary_;
  TempDir dir_;
  std::string log_path_;
  pid_t pid_ = -1;
  std::optional<int> exit_code_;
};

struct CommandResult {
  int exit_code = -1;  // exit status, or 128+signal
  std::string stdout_text;
  std::string stderr_text;
  bool timed_out = false;  // killed with SIGKILL after the timeout
};
std::ostream& operator<<(std::ostream& os, const CommandResult& result);

// Runs argv (argv[0] searched in PATH) to completion, feeding stdin_text,
// capturing both outputs; SIGKILLs the child's process group after `timeout`.
// A program that cannot be executed exits with 127 and says why on stderr.
// The lines of text, without their newlines (no empty last line).
std::vector<std::string> Lines(const std::string& text);
// Scheduling policy (SCHED_OTHER, SCHED_BATCH, ...) of each thread of `pid`,
// by thread name.
std::multimap<std::string, int> ThreadPolicies(pid_t pid);
bool Contains(const std::string& haystack, const std::string& needle);
// Makes the stopped agent's store at `path` look as an older agent left it:
// its transaction headers do not list the tables they changed. *stripped:
// how many headers did.
Status StripTxnTableLists(const std::string& path, int* stripped);
// Adds to the stopped agent's store at `path` the row-index entries an older
// agent wrote for tables that are not RowIndexed (one "one more copy" entry
// per INSERT, or UPDATE without an old row, whole row as its rowkey), which
// restores must not count twice. *added: how many.
Status IndexUnindexedRows(const std::string& path, int* added);

CommandResult RunCommand(const std::vector<std::string>& argv, const std::string& stdin_text = "",
                         std::chrono::milliseconds timeout = std::chrono::seconds(120));

}  // namespace pgtrail::testing

#endif  // PGTRAIL_TESTS_INTEGRATION_PG_CLUSTER_H_
