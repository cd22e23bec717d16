// pitr-restore --jobs: the loads of table rows, run on worker connections
// while the main connection goes on replaying the schema, as pg_restore -j
// runs its data and index steps. Each job runs in a transaction of its own on
// one worker; the jobs of one table run one at a time, in the order given
// (a load, then a deferred index build on it, say).
//
// With one job (the default) there are no workers: every job runs at once
// on the main connection, inside the restore's single transaction.
#ifndef PGTRAIL_TOOLS_LOAD_JOBS_H_
#define PGTRAIL_TOOLS_LOAD_JOBS_H_

#include <condition_variable>
#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <set>
#include <thread>
#include <vector>

#include "storage/pg.h"
#include "storage/status.h"

namespace pgtrail {

class LoadJobs {
 public:
  using Job = std::function<Status(PgConn*)>;
  using Connect = std::function<Result<std::unique_ptr<PgConn>>()>;

  // Sequential: jobs run on `main` as they are given.
  explicit LoadJobs(PgConn* main);
  // Parallel: `workers` connections made by connect(), each set up with
  // `session_sql` (may be empty); the main connection loads nothing.
  static Result<std::unique_ptr<LoadJobs>> StartWorkers(PgConn* main, int workers,
                                                        const Connect& connect,
                                                        const std::string& session_sql);
  ~LoadJobs();
  LoadJobs(const LoadJobs&) = delete;
  LoadJobs& operator=(const LoadJobs&) = delete;

  bool parallel() const { return !workers_.empty(); }
  PgConn* main() const { return main_; }

  // Runs job for table `relid`: at once (sequential), or queued for a worker,
  // in a transaction of its own. Returns the first failure of any job so far.
  Status Run(uint32_t relid, Job job);
  // Waits until no job of relid is queued or running; then as Run.
  Status WaitFor(uint32_t relid);
  // Waits until no job is queued or running; then as Run.
  Status WaitAll();
  // The tables with jobs queued or running.
  std::vector<uint32_t> Busy();
  // Serialises the jobs' lines of output.
  std::mutex& output_mutex() { return output_mutex_; }

 private:
  struct Queued {
    uint32_t relid;
    Job job;
  };
  void Work(PgConn* conn);

  PgConn* main_;
  std::vector<std::unique_ptr<PgConn>> conns_;
  std::vector<std::thread> workers_;
  std::mutex mutex_;
  std::condition_variable changed_;
  std::deque<Queued> queue_;
  std::map<uint32_t, int> pending_;  // relid -> jobs queued or running
  std::set<uint32_t> running_;       // tables with a job running
  Status failure_;                   // the first failure
  bool stopping_ = false;
  std::mutex output_mutex_;
};

}  // namespace pgtrail

#endif  // PGTRAIL_TOOLS_LOAD_JOBS_H_
