#include "tests/integration/pg_cluster.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <pwd.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cassert>
#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <sstream>
#include <thread>
#include <utility>

#include <rocksdb/db.h>
#include <rocksdb/write_batch.h>

#include "storage/keys.h"
#include "storage/store.h"

namespace pgtrail::testing {
namespace {

using Clock = std::chrono::steady_clock;

constexpr char kDefaultPgBinDir[] = "/usr/lib/postgresql/15/bin";
constexpr size_t kLogTailBytes = 4000;
constexpr int kStartAttempts = 3;

bool KeepTestDirs() { return std::getenv("PGTRAIL_KEEP_TEST_DIRS") != nullptr; }

std::string PgBin(const std::string& name) {
  const char* dir = std::getenv("PGTRAIL_PG_BINDIR");
  return std::string(dir != nullptr && *dir != '\0' ? dir : kDefaultPgBinDir) + "/" + name;
}

std::string ErrnoText(const std::string& what) { return what + ": " + std::strerror(errno); }

std::string ReadWholeFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return "";
  std::ostringstream out;
  out << in.rdbuf();
  return out.str();
}

std::string Tail(const std::string& text, size_t max_bytes = kLogTailBytes) {
  if (text.size() <= max_bytes) return text;
  return "[...]" + text.substr(text.size() - max_bytes);
}

// Exit code as a shell reports it: the status, or 128+signal.
int DecodeWaitStatus(int wait_status) {
  if (WIFEXITED(wait_status)) return WEXITSTATUS(wait_status);
  if (WIFSIGNALED(wait_status)) return 128 + WTERMSIG(wait_status);
  return -1;
}

pid_t WaitPidNoIntr(pid_t pid, int* wait_status, int options) {
  pid_t r;
  do {
    r = waitpid(pid, wait_status, options);
  } while (r < 0 && errno == EINTR);
  return r;
}

void CloseFd(int* fd) {
  if (*fd >= 0) close(*fd);
  *fd = -1;
}

// Forks and executes argv (PATH search). The child gets in_fd/out_fd/err_fd as
// stdin/stdout/stderr (-1: /dev/null), runs in `cwd` if not empty, and leads a
// new process group if own_group. It is SIGKILLed if the test process dies.
// Everything the child needs is built before fork: after fork only
// async-signal-safe calls.
Result<pid_t> Spawn(const std::vector<std::string>& argv, const std::string& cwd, int in_fd,
                    int out_fd, int err_fd, bool own_group) {
  if (argv.empty()) return Status::InvalidArgument("empty command line");
  std::vector<char*> args;
  args.reserve(argv.size() + 1);
  for (const std::string& arg : argv) args.push_back(const_cast<char*>(arg.c_str()));
  args.push_back(nullptr);
  const std::string exec_error = "cannot execute " + argv[0] + ": ";
  const std::string cwd_error = "cannot change directory to " + cwd + "\n";
  const pid_t parent = getpid();

  const pid_t pid = fork();
  if (pid < 0) return Status::IOError(ErrnoText("fork"));
  if (pid == 0) {
    prctl(PR_SET_PDEATHSIG, SIGKILL);
    if (getppid() != parent) _exit(127);
    if (own_group) setpgid(0, 0);
    sigset_t none;
    sigemptyset(&none);
    sigprocmask(SIG_SETMASK, &none, nullptr);
    signal(SIGPIPE, SIG_DFL);
    const int null_fd = open("/dev/null", O_RDWR);
    dup2(in_fd >= 0 ? in_fd : null_fd, STDIN_FILENO);
    dup2(out_fd >= 0 ? out_fd : null_fd, STDOUT_FILENO);
    dup2(err_fd >= 0 ? err_fd : null_fd, STDERR_FILENO);
    if (!cwd.empty() && chdir(cwd.c_str()) != 0) {
      ssize_t ignored = write(STDERR_FILENO, cwd_error.data(), cwd_error.size());
      (void)ignored;
      _exit(127);
    }
    execvp(args[0], args.data());
    const char* reason = strerror(errno);
    ssize_t ignored = write(STDERR_FILENO, exec_error.data(), exec_error.size());
    ignored = write(STDERR_FILENO, reason, strlen(reason));
    ignored = write(STDERR_FILENO, "\n", 1);
    (void)ignored;
    _exit(127);
  }
  return pid;
}

// Blocks SIGPIPE for this thread while alive, so writing to a child that quit
// reading yields EPIPE instead of killing the test; a SIGPIPE raised meanwhile
// is discarded.
class ScopedSigpipeBlock {
 public:
  ScopedSigpipeBlock() {
    sigset_t pending;
    sigemptyset(&pending);
    sigpending(&pending);
    was_pending_ = sigismember(&pending, SIGPIPE) == 1;
    sigset_t block;
    sigemptyset(&block);
    sigaddset(&block, SIGPIPE);
    pthread_sigmask(SIG_BLOCK, &block, &old_mask_);
  }
  ~ScopedSigpipeBlock() {
    if (!was_pending_) {
      sigset_t pending;
      sigemptyset(&pending);
      sigpending(&pending);
      if (sigismember(&pending, SIGPIPE) == 1) {
        sigset_t pipe_only;
        sigemptyset(&pipe_only);
        sigaddset(&pipe_only, SIGPIPE);
        const timespec zero = {0, 0};
        sigtimedwait(&pipe_only, nullptr, &zero);
      }
    }
    pthread_sigmask(SIG_SETMASK, &old_mask_, nullptr);
  }
  ScopedSigpipeBlock(const ScopedSigpipeBlock&) = delete;
  ScopedSigpipeBlock& operator=(const ScopedSigpipeBlock&) = delete;

 private:
  sigset_t old_mask_;
  bool was_pending_ = false;
};

CommandResult RunCommandIn(const std::string& cwd, const std::vector<std::string>& argv,
                           const std::string& stdin_text, std::chrono::milliseconds timeout) {
  CommandResult result;
  int in_pipe[2] = {-1, -1};
  int out_pipe[2] = {-1, -1};
  int err_pipe[2] = {-1, -1};
  if (pipe2(in_pipe, O_CLOEXEC) != 0 || pipe2(out_pipe, O_CLOEXEC) != 0 ||
      pipe2(err_pipe, O_CLOEXEC) != 0) {
    ADD_FAILURE() << ErrnoText("pipe2");
    for (int* fd :
         {&in_pipe[0], &in_pipe[1], &out_pipe[0], &out_pipe[1], &err_pipe[0], &err_pipe[1]}) {
      CloseFd(fd);
    }
    return result;
  }
  Result<pid_t> pid = Spawn(argv, cwd, in_pipe[0], out_pipe[1], err_pipe[1], /*own_group=*/true);
  CloseFd(&in_pipe[0]);
  CloseFd(&out_pipe[1]);
  CloseFd(&err_pipe[1]);
  if (!pid.ok()) {
    ADD_FAILURE() << pid.status().ToString();
    CloseFd(&in_pipe[1]);
    CloseFd(&out_pipe[0]);
    CloseFd(&err_pipe[0]);
    return result;
  }

  ScopedSigpipeBlock sigpipe_block;
  size_t stdin_written = 0;
  if (stdin_text.empty()) {
    CloseFd(&in_pipe[1]);
  } else {
    fcntl(in_pipe[1], F_SETFL, fcntl(in_pipe[1], F_GETFL) | O_NONBLOCK);
  }
  const Clock::time_point deadline = Clock::now() + timeout;
  char buffer[65536];
  while (out_pipe[0] >= 0 || err_pipe[0] >= 0) {
    const auto left =
        std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now());
    if (left.count() <= 0) {
      kill(-*pid, SIGKILL);
      result.timed_out = true;
      break;
    }
    pollfd fds[3] = {{out_pipe[0], POLLIN, 0}, {err_pipe[0], POLLIN, 0}, {in_pipe[1], POLLOUT, 0}};
    const int ready = poll(fds, 3, static_cast<int>(std::min<int64_t>(left.count(), 1000)));
    if (ready < 0 && errno != EINTR) {
      ADD_FAILURE() << ErrnoText("poll");
      kill(-*pid, SIGKILL);
      break;
    }
    if (ready <= 0) continue;
    if (in_pipe[1] >= 0 && fds[2].revents != 0) {
      const ssize_t n =
          write(in_pipe[1], stdin_text.data() + stdin_written, stdin_text.size() - stdin_written);
      if (n > 0) stdin_written += static_cast<size_t>(n);
      // A child that stops reading (EPIPE) simply does not get the rest.
      if ((n < 0 && errno != EAGAIN && errno != EINTR) || stdin_written == stdin_text.size()) {
        CloseFd(&in_pipe[1]);
      }
    }
    int* readers[2] = {&out_pipe[0], &err_pipe[0]};
    std::string* sinks[2] = {&result.stdout_text, &result.stderr_text};
    for (int i = 0; i < 2; ++i) {
      if (*readers[i] < 0 || fds[i].revents == 0) continue;
      const ssize_t n = read(*readers[i], buffer, sizeof(buffer));
      if (n > 0) {
        sinks[i]->append(buffer, static_cast<size_t>(n));
      } else if (n == 0 || errno != EINTR) {
        CloseFd(readers[i]);
      }
    }
  }
  CloseFd(&in_pipe[1]);
  CloseFd(&out_pipe[0]);
  CloseFd(&err_pipe[0]);
  int wait_status = 0;
  if (WaitPidNoIntr(*pid, &wait_status, 0) == *pid) {
    result.exit_code = DecodeWaitStatus(wait_status);
  } else {
    ADD_FAILURE() << ErrnoText("waitpid");
  }
  return result;
}

// Prefixes argv so that it runs as the OS user "postgres" when we are root:
// PostgreSQL refuses to run as root.
std::vector<std::string> AsPostgres(std::vector<std::string> argv) {
  if (geteuid() != 0) return argv;
  std::vector<std::string> wrapped = {"runuser", "-u", "postgres", "--"};
  wrapped.insert(wrapped.end(), argv.begin(), argv.end());
  return wrapped;
}

Status ChownToPostgres(const std::string& path) {
  if (geteuid() != 0) return Status::OK();
  const passwd* pw = getpwnam("postgres");
  if (pw == nullptr) {
    return Status::FailedPrecondition(
        "no OS user \"postgres\" to run the test server as\n"
        "HINT: install postgresql-15 (deploy/install-deps.sh) or run the tests as non-root");
  }
  if (chown(path.c_str(), pw->pw_uid, pw->pw_gid) != 0) {
    return Status::IOError(ErrnoText("chown " + path));
  }
  return Status::OK();
}

Result<int> FindFreePort() {
  const int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return Status::IOError(ErrnoText("socket"));
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  addr.sin_port = 0;
  socklen_t len = sizeof(addr);
  if (bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0 ||
      getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len) != 0) {
    Status status = Status::IOError(ErrnoText("bind 127.0.0.1:0"));
    close(fd);
    return status;
  }
  close(fd);
  return static_cast<int>(ntohs(addr.sin_port));
}

Status WriteFile(const std::string& path, const std::string& text, bool append) {
  std::ofstream out(path, append ? std::ios::app : std::ios::trunc);
  out << text;
  out.close();
  if (!out) return Status::IOError("cannot write " + path);
  return Status::OK();
}

Rows ToRows(const PgResult& res) {
  Rows rows;
  rows.reserve(static_cast<size_t>(res.rows()));
  for (int row_idx = 0; row_idx < res.rows(); ++row_idx) {
    Row row;
    row.reserve(static_cast<size_t>(res.cols()));
    for (int col_idx = 0; col_idx < res.cols(); ++col_idx) {
      if (res.IsNull(row_idx, col_idx)) {
        row.emplace_back(std::nullopt);
      } else {
        row.emplace_back(res.GetString(row_idx, col_idx));
      }
    }
    rows.push_back(std::move(row));
  }
  return rows;
}

Result<Fingerprint> ComputeFingerprint(PgConn& conn, const std::string& schema,
                                       const std::string& table) {
  const std::string qualified = QualifiedName(schema, table);
  Fingerprint fp;
  ASSIGN_OR_RETURN(PgResult columns,
                   conn.QueryParams("SELECT a.attname, format_type(a.atttypid, a.atttypmod), "
                                    "a.attnotnull FROM pg_attribute a "
                                    "WHERE a.attrelid = $1::regclass AND a.attnum > 0 "
                                    "AND NOT a.attisdropped ORDER BY a.attnum",
                                    {qualified}));
  for (int row_idx = 0; row_idx < columns.rows(); ++row_idx) {
    if (row_idx > 0) fp.columns += ", ";
    fp.columns += QuoteIdent(columns.Get(row_idx, 0));
    fp.columns += " ";
    fp.columns += columns.GetString(row_idx, 1);
    if (columns.Get(row_idx, 2) == "t") fp.columns += " NOT NULL";
  }
  // Row texts are compared bytewise (COLLATE "C") so the order, hence the md5,
  // does not depend on the database's collation.
  ASSIGN_OR_RETURN(PgResult rows,
                   conn.Query("SELECT count(*), md5(coalesce(string_agg(r, E'\\n' ORDER BY r "
                              "COLLATE \"C\"), '')) FROM (SELECT t.*::text AS r FROM " +
                              qualified + " t) s"));
  if (rows.rows() != 1 || rows.cols() != 2) {
    return Status::Internal("fingerprint of " + qualified + ": unexpected result shape");
  }
  fp.row_count = std::strtoll(rows.GetString(0, 0).c_str(), nullptr, 10);
  fp.rows_md5 = rows.GetString(0, 1);
  return fp;
}

}  // namespace

// ---------------------------------------------------------------------------
// TempDir

TempDir::~TempDir() { Remove(); }

Status TempDir::Create(const std::string& prefix) {
  assert(path_.empty());
  std::string templ = "/tmp/" + prefix + "XXXXXX";
  if (mkdtemp(templ.data()) == nullptr) return Status::IOError(ErrnoText("mkdtemp " + templ));
  path_ = templ;
  return Status::OK();
}

void TempDir::Remove() {
  if (path_.empty()) return;
  if (KeepTestDirs()) {
    std::cerr << "[pgtrail] kept test dir " << path_ << "\n";
  } else {
    std::error_code ec;
    std::filesystem::remove_all(path_, ec);
    if (ec) std::cerr << "[pgtrail] cannot remove " << path_ << ": " << ec.message() << "\n";
  }
  path_.clear();
}

// ---------------------------------------------------------------------------
// Fingerprints

std::ostream& operator<<(std::ostream& os, const Fingerprint& fp) {
  return os << "{columns: [" << fp.columns << "], rows: " << fp.row_count
            << ", md5: " << fp.rows_md5 << "}";
}

void PrintTo(const DatabaseFingerprints& fps, std::ostream* os) {
  *os << "{";
  for (const auto& [name, fp] : fps) *os << "\n  " << name << ": " << fp;
  *os << (fps.empty() ? "}" : "\n}");
}

::testing::AssertionResult FingerprintsEqual(const DatabaseFingerprints& expected,
                                             const DatabaseFingerprints& actual) {
  std::ostringstream diff;
  for (const auto& [name, fp] : expected) {
    auto it = actual.find(name);
    if (it == actual.end()) {
      diff << "\n  " << name << ": missing in actual (expected " << fp << ")";
    } else if (it->second != fp) {
      diff << "\n  " << name << ":\n    expected " << fp << "\n    actual   " << it->second;
    }
  }
  for (const auto& [name, fp] : actual) {
    if (expected.count(name) == 0) diff << "\n  " << name << ": unexpected table " << fp;
  }
  if (diff.str().empty()) return ::testing::AssertionSuccess();
  return ::testing::AssertionFailure() << "databases differ:" << diff.str();
}

// ---------------------------------------------------------------------------
// PgCluster

PgCluster::~PgCluster() { Stop(); }

Status PgCluster::Start() {
  assert(!initialized_ && dir_.path().empty());
  RETURN_IF_ERROR(dir_.Create("pgtrail-pg-"));
  RETURN_IF_ERROR(ChownToPostgres(dir_.path()));

  CommandResult initdb =
      RunCommandIn(dir_.path(),
                   AsPostgres({PgBin("initdb"), "-D", data_dir(), "-U", "postgres", "--auth=trust",
                               "-E", "UTF8", "--locale=C.UTF-8", "--no-sync"}),
                   "", std::chrono::seconds(120));
  if (initdb.exit_code != 0) {
    return Status::IOError("initdb failed (exit " + std::to_string(initdb.exit_code) + "):\n" +
                           Tail(initdb.stdout_text + initdb.stderr_text));
  }
  initialized_ = true;
  RETURN_IF_ERROR(WriteFile(data_dir() + "/postgresql.conf",
                            "\n# pgtrail test fixture\ninclude 'pgtrail_test.conf'\n",
                            /*append=*/true));

  // The port is free when probed but may be taken before the server binds it
  // (tests run in parallel): retry with another one.
  Status status;
  for (int attempt = 0; attempt < kStartAttempts; ++attempt) {
    RETURN_IF_ERROR(WriteConfig());
    status = StartServer();
    if (status.ok()) return status;
    if (LogContents().find("Address already in use") == std::string::npos) break;
  }
  return status;
}

Status PgCluster::WriteConfig() {
  ASSIGN_OR_RETURN(port_, FindFreePort());
  std::ostringstream conf;
  conf << "port = " << port_ << "\n"
       << "listen_addresses = '127.0.0.1'\n"
       << "unix_socket_directories = '" << dir_.path() << "'\n"
       << "wal_level = logical\n"
       << "max_wal_senders = 10\n"
       << "max_replication_slots = 10\n"
       << "fsync = off\n"
       << "synchronous_commit = on\n"
       << "full_page_writes = off\n"
       << "shared_buffers = 64MB\n"
       << "logging_collector = off\n"
       << "log_line_prefix = '%m [%p] %q%u@%d '\n"
       << "timezone = 'UTC'\n"
       << "log_timezone = 'UTC'\n";
  const std::string path = data_dir() + "/pgtrail_test.conf";
  RETURN_IF_ERROR(WriteFile(path, conf.str(), /*append=*/false));
  return ChownToPostgres(path);
}

Status PgCluster::StartServer() {
  CommandResult start = RunCommandIn(
      dir_.path(),
      AsPostgres({PgBin("pg_ctl"), "-w", "-t", "60", "-D", data_dir(), "-l", log_path(), "start"}),
      "", std::chrono::seconds(90));
  if (start.exit_code != 0) {
    return Status::IOError("pg_ctl start failed (exit " + std::to_string(start.exit_code) +
                           ") for " + data_dir() + ": " + start.stdout_text + start.stderr_text +
                           "\nserver log tail:\n" + Tail(LogContents()));
  }
  running_ = true;
  return Status::OK();
}

void PgCluster::Stop() {
  if (running_) {
    CommandResult stop = RunCommandIn(
        dir_.path(),
        AsPostgres({PgBin("pg_ctl"), "-w", "-D", data_dir(), "-m", "immediate", "stop"}), "",
        std::chrono::seconds(60));
    if (stop.exit_code != 0) {
      std::cerr << "[pgtrail] pg_ctl stop failed (exit " << stop.exit_code << "): " << stop << "\n";
    }
    running_ = false;
  }
  if (!dir_.path().empty() && ::testing::Test::HasFailure()) {
    const std::string log = LogContents();
    if (!log.empty()) {
      std::cerr << "[pgtrail] test failed; server log tail (" << log_path() << "):\n"
                << Tail(log, 2000) << "\n";
    }
  }
  dir_.Remove();
  initialized_ = false;
  port_ = 0;
}

Status PgCluster::Restart() {
  if (!running_) return Status::FailedPrecondition("cluster is not running");
  CommandResult restart =
      RunCommandIn(dir_.path(),
                   AsPostgres({PgBin("pg_ctl"), "-w", "-t", "60", "-D", data_dir(), "-l",
                               log_path(), "-m", "fast", "restart"}),
                   "", std::chrono::seconds(120));
  if (restart.exit_code != 0) {
    running_ = false;
    return Status::IOError("pg_ctl restart failed (exit " + std::to_string(restart.exit_code) +
                           "): " + restart.stdout_text + restart.stderr_text +
                           "\nserver log tail:\n" + Tail(LogContents()));
  }
  return Status::OK();
}

std::string PgCluster::LogContents() const { return ReadWholeFile(log_path()); }

std::string PgCluster::ConnInfo(const std::string& dbname) const {
  // Quote the value so that any database name survives conninfo parsing.
  std::string quoted;
  for (char c : dbname) {
    if (c == '\'' || c == '\\') quoted += '\\';
    quoted += c;
  }
  const bool plain =
      !dbname.empty() && quoted == dbname && dbname.find_first_of(" \t\n=") == std::string::npos;
  return "host=127.0.0.1 port=" + std::to_string(port_) +
         " user=postgres dbname=" + (plain ? dbname : "'" + quoted + "'");
}

Result<std::unique_ptr<PgConn>> PgCluster::Connect(const std::string& dbname) const {
  return PgConn::Connect(ConnInfo(dbname));
}

Status PgCluster::CreateDatabase(const std::string& name) {
  return Exec("postgres", "CREATE DATABASE " + QuoteIdent(name));
}

Status PgCluster::DropDatabase(const std::string& name) {
  return Exec("postgres", "DROP DATABASE IF EXISTS " + QuoteIdent(name) + " WITH (FORCE)");
}

Status PgCluster::Exec(const std::string& db, const std::string& sql) {
  ASSIGN_OR_RETURN(std::unique_ptr<PgConn> conn, Connect(db));
  return conn->Exec(sql).WithContext("on database " + db);
}

Rows PgCluster::Query(const std::string& db, const std::string& sql) {
  Result<std::unique_ptr<PgConn>> conn = Connect(db);
  if (!conn.ok()) {
    ADD_FAILURE() << "connect to " << db << ": " << conn.status().ToString();
    return {};
  }
  Result<PgResult> res = (*conn)->Query(sql);
  if (!res.ok()) {
    ADD_FAILURE() << "query on " << db << " failed: " << sql << "\n" << res.status().ToString();
    return {};
  }
  return ToRows(*res);
}

std::string PgCluster::Scalar(const std::string& db, const std::string& sql) {
  Result<std::unique_ptr<PgConn>> conn = Connect(db);
  if (!conn.ok()) {
    ADD_FAILURE() << "connect to " << db << ": " << conn.status().ToString();
    return "<error: " + conn.status().ToString() + ">";
  }
  Result<PgResult> res = (*conn)->Query(sql);
  if (!res.ok()) {
    ADD_FAILURE() << "query on " << db << " failed: " << sql << "\n" << res.status().ToString();
    return "<error: " + res.status().ToString() + ">";
  }
  if (res->rows() != 1 || res->cols() != 1) {
    const std::string shape =
        std::to_string(res->rows()) + " rows x " + std::to_string(res->cols()) + " columns";
    ADD_FAILURE() << "Scalar() expects one row and one column, got " << shape << ": " << sql;
    return "<error: " + shape + ">";
  }
  if (res->IsNull(0, 0)) return "<null>";
  return res->GetString(0, 0);
}

Fingerprint PgCluster::TableFingerprint(const std::string& db, const std::string& schema,
                                        const std::string& table) {
  Result<std::unique_ptr<PgConn>> conn = Connect(db);
  Result<Fingerprint> fp =
      conn.ok() ? ComputeFingerprint(**conn, schema, table) : Result<Fingerprint>(conn.status());
  if (!fp.ok()) {
    ADD_FAILURE() << "fingerprint of " << QualifiedName(schema, table) << " in " << db << ": "
                  << fp.status().ToString();
    Fingerprint error;
    error.columns = "<error: " + fp.status().ToString() + ">";
    return error;
  }
  return std::move(fp).value();
}

DatabaseFingerprints PgCluster::DatabaseFingerprint(const std::string& db) {
  auto compute = [&](DatabaseFingerprints* out) -> Status {
    ASSIGN_OR_RETURN(std::unique_ptr<PgConn> conn, Connect(db));
    RETURN_IF_ERROR(conn->Exec("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY"));
    ASSIGN_OR_RETURN(PgResult tables,
                     conn->Query("SELECT n.nspname, c.relname FROM pg_class c "
                                 "JOIN pg_namespace n ON n.oid = c.relnamespace "
                                 "WHERE c.relkind = 'r' AND n.nspname NOT LIKE 'pg\\_%' "
                                 "AND n.nspname NOT IN ('information_schema', 'pgtrail') "
                                 "ORDER BY 1, 2"));
    for (int row_idx = 0; row_idx < tables.rows(); ++row_idx) {
      const std::string schema = tables.GetString(row_idx, 0);
      const std::string table = tables.GetString(row_idx, 1);
      ASSIGN_OR_RETURN(Fingerprint fp, ComputeFingerprint(*conn, schema, table));
      (*out)[schema + "." + table] = std::move(fp);
    }
    return conn->Exec("COMMIT");
  };
  DatabaseFingerprints fps;
  Status status = compute(&fps);
  if (!status.ok()) {
    ADD_FAILURE() << "fingerprint of database " << db << ": " << status.ToString();
    Fingerprint error;
    error.columns = "<error: " + status.ToString() + ">";
    fps["<error>"] = error;
  }
  return fps;
}

std::string PgCluster::CurrentWalLsn(const std::string& db) {
  const Rows rows = Query(db, "SELECT pg_current_wal_lsn()::text");
  if (rows.size() != 1 || rows[0].size() != 1 || !rows[0][0].has_value()) return "";
  return *rows[0][0];
}

bool PgCluster::WaitForSlotCatchUp(const std::string& slot, const std::string& target_lsn,
                                   std::chrono::milliseconds timeout) {
  const Clock::time_point deadline = Clock::now() + timeout;
  std::unique_ptr<PgConn> conn;
  while (true) {
    if (conn == nullptr) {
      Result<std::unique_ptr<PgConn>> connected = Connect("postgres");
      if (connected.ok()) conn = std::move(connected).value();
    }
    if (conn != nullptr) {
      Result<PgResult> res = conn->QueryParams(
          "SELECT coalesce(confirmed_flush_lsn >= $2::pg_lsn, false) "
          "FROM pg_replication_slots WHERE slot_name = $1",
          {slot, target_lsn});
      if (res.ok()) {
        if (res->rows() == 1 && res->Get(0, 0) == "t") return true;
      } else if (res.status().code() == Status::kUnavailable) {
        conn.reset();  // the server restarted: reconnect on the next poll
      } else {
        ADD_FAILURE() << "WaitForSlotCatchUp(" << slot << ", " << target_lsn
                      << "): " << res.status().ToString();
        return false;
      }
    }
    if (Clock::now() >= deadline) return false;
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
}

// ---------------------------------------------------------------------------
// AgentProcess

AgentProcess::AgentProcess(std::string binary) : binary_(std::move(binary)) {}

AgentProcess::~AgentProcess() {
  if (pid_ > 0) {
    kill(pid_, SIGKILL);
    int wait_status = 0;
    WaitPidNoIntr(pid_, &wait_status, 0);
    pid_ = -1;
  }
  if (!log_path_.empty() && ::testing::Test::HasFailure()) {
    std::cerr << "[pgtrail] test failed; " << binary_ << " log tail (" << log_path_ << "):\n"
              << Tail(LogContents()) << "\n";
  }
}

Status AgentProcess::Start(const std::vector<std::string>& args) {
  if (IsRunning()) return Status::FailedPrecondition(binary_ + " is already running");
  if (dir_.path().empty()) {
    RETURN_IF_ERROR(dir_.Create("pgtrail-agent-"));
    log_path_ = dir_.path() + "/agent.log";
  }
  std::vector<std::string> argv = {binary_};
  argv.insert(argv.end(), args.begin(), args.end());
  std::string banner = "=== pgtrail test: starting";
  for (const std::string& arg : argv) banner += " " + arg;
  RETURN_IF_ERROR(WriteFile(log_path_, banner + "\n", /*append=*/true));

  const int log_fd = open(log_path_.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
  if (log_fd < 0) return Status::IOError(ErrnoText("open " + log_path_));
  Result<pid_t> pid = Spawn(argv, "", -1, log_fd, log_fd, /*own_group=*/false);
  close(log_fd);
  if (!pid.ok()) return pid.status();
  pid_ = *pid;
  exit_code_.reset();
  return Status::OK();
}

Status AgentProcess::Kill(int signal) {
  if (!IsRunning()) return Status::NotFound(binary_ + " is not running");
  if (kill(pid_, signal) != 0) return Status::IOError(ErrnoText("kill"));
  return Status::OK();
}

std::optional<int> AgentProcess::WaitExit(std::chrono::milliseconds timeout) {
  const Clock::time_point deadline = Clock::now() + timeout;
  while (IsRunning()) {
    if (Clock::now() >= deadline) return std::nullopt;
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  return exit_code_;
}

bool AgentProcess::IsRunning() {
  if (pid_ <= 0) return false;
  int wait_status = 0;
  const pid_t r = WaitPidNoIntr(pid_, &wait_status, WNOHANG);
  if (r == 0) return true;
  exit_code_ = r == pid_ ? DecodeWaitStatus(wait_status) : -1;
  pid_ = -1;
  return false;
}

std::string AgentProcess::LogContents() const {
  return log_path_.empty() ? "" : ReadWholeFile(log_path_);
}

// ---------------------------------------------------------------------------
// RunCommand

std::ostream& operator<<(std::ostream& os, const CommandResult& result) {
  os << "exit code " << result.exit_code << (result.timed_out ? " (timed out)" : "");
  os << "\n--- stdout ---\n" << result.stdout_text;
  os << "\n--- stderr ---\n" << result.stderr_text;
  return os;
}

CommandResult RunCommand(const std::vector<std::string>& argv, const std::string& stdin_text,
                         std::chrono::milliseconds timeout) {
  return RunCommandIn("", argv, stdin_text, timeout);
}

std::multimap<std::string, int> ThreadPolicies(pid_t pid) {
  // Field 41 of /proc/PID/task/TID/stat; the name, in parentheses, may hold
  // spaces.
  std::multimap<std::string, int> policies;
  std::error_code ec;  // the process may be gone: no threads
  for (const auto& task : std::filesystem::directory_iterator(
           "/proc/" + std::to_string(pid) + "/task", ec)) {
    std::ifstream in(task.path() / "stat");
    std::string stat((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    const size_t open = stat.find('('), close = stat.rfind(')');
    if (open == std::string::npos || close == std::string::npos) continue;  // thread exited
    std::istringstream fields(stat.substr(close + 2));
    std::string field;
    for (int i = 3; i <= 41 && fields >> field; i++) {
      if (i == 41) policies.emplace(stat.substr(open + 1, close - open - 1), std::stoi(field));
    }
  }
  return policies;
}

std::vector<std::string> Lines(const std::string& text) {
  std::vector<std::string> lines;
  size_t start = 0;
  while (start < text.size()) {
    size_t end = text.find('\n', start);
    if (end == std::string::npos) end = text.size();
    lines.push_back(text.substr(start, end - start));
    start = end + 1;
  }
  return lines;
}

bool Contains(const std::string& haystack, const std::string& needle) {
  return haystack.find(needle) != std::string::npos;
}

Status StripTxnTableLists(const std::string& path, int* stripped) {
  *stripped = 0;
  ASSIGN_OR_RETURN(auto store, Store::OpenForWrite(path, /*create=*/false));
  std::unique_ptr<rocksdb::Iterator> it(
      store->db()->NewIterator(rocksdb::ReadOptions(), store->cf(Family::kTxn)));
  for (it->SeekToFirst(); it->Valid(); it->Next()) {
    pb::TxnHeader h;
    if (!h.ParseFromArray(it->value().data(), static_cast<int>(it->value().size()))) {
      return Status::Corruption("unreadable transaction header");
    }
    if (!h.tables_listed()) continue;
    h.clear_tables();
    h.clear_tables_listed();
    rocksdb::Status st =
        store->db()->Put(rocksdb::WriteOptions(), store->cf(Family::kTxn), it->key(),
                         h.SerializeAsString());
    if (!st.ok()) return Status::IOError(st.ToString());
    (*stripped)++;
  }
  return it->status().ok() ? Status::OK() : Status::IOError(it->status().ToString());
}

Status IndexUnindexedRows(const std::string& path, int* added) {
  *added = 0;
  ASSIGN_OR_RETURN(auto store, Store::OpenForWrite(path, /*create=*/false));
  rocksdb::WriteBatch batch;
  Status inner;
  RETURN_IF_ERROR(store->ForEachChangeInRange(
      0, UINT64_MAX, [](const pb::TxnHeader&) { return true; },
      [&](const pb::TxnHeader& h, uint32_t seq, const pb::Change& c) {
        if (c.op() != pb::Change::INSERT &&
            !(c.op() == pb::Change::UPDATE && !c.has_old_tuple())) {
          return true;
        }
        auto rel = store->GetRelation(c.relid(), c.relation_lsn(), c.relation_seq());
        if (!rel.ok() || !rel->has_value()) {
          inner = rel.ok() ? Status::Corruption("a change without its relation") : rel.status();
          return false;
        }
        if (RowIndexed(**rel)) return true;
        std::string rowkey;
        inner = AppendTupleRowKey(&rowkey, **rel, c.new_tuple());
        if (!inner.ok()) return false;
        batch.Put(store->cf(Family::kRowIdx), keys::RowIdxKey(c.relid(), rowkey, h.commit_lsn(), seq),
                  std::string(1, static_cast<char>(keys::RowOp::kAddOne)));
        (*added)++;
        return true;
      }));
  RETURN_IF_ERROR(inner);
  return store->Write(&batch, /*sync=*/true);
}

}  // namespace pgtrail::testing
