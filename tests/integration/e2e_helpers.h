// End-to-end test helpers: a source database watched by a real pgtrail-agent,
// whose state is recorded at chosen instants, and pitr-restore runs against
// the agent's store.
//
// Everything here is for tests only. Thread safety: none, except that a
// BackgroundWriter runs its own connection on its own thread.
#ifndef PGTRAIL_TESTS_INTEGRATION_E2E_HELPERS_H_
#define PGTRAIL_TESTS_INTEGRATION_E2E_HELPERS_H_

#include <atomic>
#include <chrono>
#include <csignal>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "tests/integration/pg_cluster.h"

namespace pgtrail::testing {

// The source as it was right after one step's commit.
struct Instant {
  std::string label;
  // clock_timestamp() right after the commit, "YYYY-MM-DD HH24:MI:SS.US+00".
  std::string time;
  DatabaseFingerprints fingerprints;
};

// A cluster with database "src", and pgtrail-agent streaming it into a store.
class RecordedSource {
 public:
  static constexpr char kSourceDb[] = "src";
  static constexpr char kSlot[] = "pgtrail";
  // The gap between an instant and the next step's commit.
  static constexpr std::chrono::milliseconds kStepGap{20};

  RecordedSource() = default;
  RecordedSource(const RecordedSource&) = delete;
  RecordedSource& operator=(const RecordedSource&) = delete;
  ~RecordedSource() {
    if (agent_.IsRunning()) {
      (void)agent_.Kill(SIGTERM);
      agent_.WaitExit(std::chrono::seconds(10));
    }
  }

  // Starts the cluster, creates "src" and runs setup_sql in it (schema and
  // data the base snapshot will hold).
  Status Start(const std::string& setup_sql) {
    RETURN_IF_ERROR(cluster_.Start());
    RETURN_IF_ERROR(work_dir_.Create("pgtrail-e2e-"));
    RETURN_IF_ERROR(cluster_.CreateDatabase(kSourceDb));
    if (!setup_sql.empty()) RETURN_IF_ERROR(cluster_.Exec(kSourceDb, setup_sql));
    return Status::OK();
  }

  // Starts pgtrail-agent and waits until its base snapshot is complete (it
  // logs "streaming from" only after that) and the slot has caught up with
  // everything committed so far.
  Status StartAgent(std::chrono::milliseconds timeout = std::chrono::seconds(60)) {
    RETURN_IF_ERROR(agent_.Start({"--source", cluster_.ConnInfo(kSourceDb), "--store", store()}));
    const auto deadline = std::chrono::steady_clock::now() + timeout;
    while (agent_.LogContents().find("streaming from") == std::string::npos) {
      if (!agent_.IsRunning()) {
        return Status::Internal("pgtrail-agent exited (" +
                                std::to_string(agent_.exit_code().value_or(-1)) +
                                ") before streaming:\n" + agent_.LogContents());
      }
      if (std::chrono::steady_clock::now() > deadline) {
        return Status::Internal("pgtrail-agent did not start streaming in time:\n" +
                                agent_.LogContents());
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
    }
    return CatchUp();
  }

  // Waits until the agent has made everything committed so far durable.
  Status CatchUp() {
    const std::string lsn = cluster_.CurrentWalLsn(kSourceDb);
    if (lsn.empty()) return Status::Internal("cannot read pg_current_wal_lsn()");
    if (!cluster_.WaitForSlotCatchUp(kSlot, lsn)) {
      return Status::Internal("the agent did not catch up with " + lsn + ":\n" +
                              agent_.LogContents());
    }
    return Status::OK();
  }

  // The server's clock_timestamp() in UTC, as pitr-restore --to takes it.
  Result<std::string> Now() {
    ASSIGN_OR_RETURN(std::unique_ptr<PgConn> conn, cluster_.Connect(kSourceDb));
    ASSIGN_OR_RETURN(PgResult res,
                     conn->Query("SELECT to_char(clock_timestamp() AT TIME ZONE 'UTC', "
                                 "'YYYY-MM-DD HH24:MI:SS.US') || '+00'"));
    return res.GetString(0, 0);
  }

  // Runs sql (may be empty), takes the instant right after its commit, waits
  // for the agent, fingerprints the source and records the instant; then
  // leaves a small gap so that the next commit is later than this instant.
  // With table_filter set, only the tables it accepts ("schema.table") are
  // fingerprinted (for tables other sessions are writing to meanwhile).
  Result<Instant> Step(const std::string& label, const std::string& sql,
                       const std::function<bool(const std::string&)>& table_filter = nullptr) {
    if (!sql.empty()) RETURN_IF_ERROR(cluster_.Exec(kSourceDb, sql).WithContext(label));
    Instant instant;
    instant.label = label;
    ASSIGN_OR_RETURN(instant.time, Now());
    RETURN_IF_ERROR(CatchUp());
    DatabaseFingerprints all = cluster_.DatabaseFingerprint(kSourceDb);
    for (auto& [name, fp] : all) {
      if (table_filter == nullptr || table_filter(name)) instant.fingerprints[name] = fp;
    }
    std::this_thread::sleep_for(kStepGap);
    instants_.push_back(instant);
    return instant;
  }

  // One more commit after the last recorded instant (the restore refuses
  // times after the last captured commit), made durable.
  Status CommitAfterLastInstant(const std::string& sql) {
    RETURN_IF_ERROR(cluster_.Exec(kSourceDb, sql).WithContext("commit after the last instant"));
    return CatchUp();
  }

  // pitr-restore --store <store> --to <time> [--target <conninfo of db>] extra...
  CommandResult Restore(const std::string& time, const std::string& target_db,
                        const std::vector<std::string>& extra_args = {}) {
    std::vector<std::string> argv = {kRestoreBin, "--store", store(), "--to", time};
    if (!target_db.empty()) {
      argv.push_back("--target");
      argv.push_back(cluster_.ConnInfo(target_db));
    }
    argv.insert(argv.end(), extra_args.begin(), extra_args.end());
    return RunCommand(argv);
  }

  PgCluster& cluster() { return cluster_; }
  AgentProcess& agent() { return agent_; }
  std::string store() const { return work_dir_.path() + "/store"; }
  const std::vector<Instant>& instants() const { return instants_; }

 private:
  PgCluster cluster_;
  AgentProcess agent_;
  TempDir work_dir_;
  std::vector<Instant> instants_;
};

// Runs `statement(iteration)` in autocommit, over and over, on its own
// connection and thread, until Stop(). The first error stops it and is kept.
class BackgroundWriter {
 public:
  BackgroundWriter() = default;
  BackgroundWriter(const BackgroundWriter&) = delete;
  BackgroundWriter& operator=(const BackgroundWriter&) = delete;
  ~BackgroundWriter() { (void)Stop(); }

  Status Start(std::unique_ptr<PgConn> conn, std::function<std::string(int64_t)> statement) {
    conn_ = std::move(conn);
    statement_ = std::move(statement);
    thread_ = std::thread([this] {
      for (int64_t i = 0; !stop_.load(); i++) {
        Status st = conn_->Exec(statement_(i));
        if (!st.ok()) {
          status_ = st;
          break;
        }
        iterations_.store(i + 1);
      }
    });
    return Status::OK();
  }

  // Waits until at least `count` statements have committed in total.
  bool WaitForIterations(int64_t count,
                         std::chrono::milliseconds timeout = std::chrono::seconds(30)) {
    const auto deadline = std::chrono::steady_clock::now() + timeout;
    while (iterations_.load() < count) {
      if (std::chrono::steady_clock::now() > deadline) return false;
      std::this_thread::sleep_for(std::chrono::milliseconds(5));
    }
    return true;
  }
  int64_t iterations() const { return iterations_.load(); }

  // Stops and joins; the first error the writer met, if any.
  Status Stop() {
    stop_.store(true);
    if (thread_.joinable()) thread_.join();
    return status_;
  }

 private:
  std::unique_ptr<PgConn> conn_;
  std::function<std::string(int64_t)> statement_;
  std::thread thread_;
  std::atomic<bool> stop_{false};
  std::atomic<int64_t> iterations_{0};
  Status status_;
};

}  // namespace pgtrail::testing

#endif  // PGTRAIL_TESTS_INTEGRATION_E2E_HELPERS_H_
