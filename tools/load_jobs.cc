#include "tools/load_jobs.h"

#include <utility>

namespace pgtrail {

LoadJobs::LoadJobs(PgConn* main) : main_(main) {}

Result<std::unique_ptr<LoadJobs>> LoadJobs::StartWorkers(PgConn* main, int workers,
                                                         const Connect& connect,
                                                         const std::string& session_sql) {
  std::unique_ptr<LoadJobs> jobs(new LoadJobs(main));
  for (int i = 0; i < workers; i++) {
    ASSIGN_OR_RETURN(std::unique_ptr<PgConn> conn, connect());
    if (!session_sql.empty()) RETURN_IF_ERROR(conn->Exec(session_sql));
    jobs->conns_.push_back(std::move(conn));
  }
  for (const auto& conn : jobs->conns_) {
    jobs->workers_.emplace_back(&LoadJobs::Work, jobs.get(), conn.get());
  }
  return jobs;
}

LoadJobs::~LoadJobs() {
  {
    std::lock_guard<std::mutex> lock(mutex_);
    stopping_ = true;
    queue_.clear();
  }
  changed_.notify_all();
  for (std::thread& t : workers_) t.join();
}

void LoadJobs::Work(PgConn* conn) {
  std::unique_lock<std::mutex> lock(mutex_);
  for (;;) {
    // The first queued job whose table has no job running: a table's jobs
    // run one at a time, in the order given.
    std::deque<Queued>::iterator next;
    changed_.wait(lock, [&] {
      if (stopping_) return true;
      next = queue_.begin();
      while (next != queue_.end() && running_.count(next->relid) != 0) ++next;
      return next != queue_.end();
    });
    if (stopping_) return;
    Queued job = std::move(*next);
    queue_.erase(next);
    running_.insert(job.relid);
    const bool skip = !failure_.ok();  // after a failure, only drain the queue
    lock.unlock();
    Status st;
    if (!skip) {
      st = conn->Exec("BEGIN");
      if (st.ok()) st = job.job(conn);
      st = st.ok() ? conn->Exec("COMMIT") : st;
      if (!st.ok()) (void)conn->Exec("ROLLBACK");
    }
    lock.lock();
    if (!st.ok() && failure_.ok()) failure_ = st;
    running_.erase(job.relid);
    if (--pending_[job.relid] == 0) pending_.erase(job.relid);
    changed_.notify_all();
  }
}

Status LoadJobs::Run(uint32_t relid, Job job) {
  if (!parallel()) return job(main_);
  {
    std::lock_guard<std::mutex> lock(mutex_);
    if (!failure_.ok()) return failure_;
    pending_[relid]++;
    queue_.push_back({relid, std::move(job)});
  }
  changed_.notify_all();
  return Status::OK();
}

Status LoadJobs::WaitFor(uint32_t relid) {
  std::unique_lock<std::mutex> lock(mutex_);
  changed_.wait(lock, [&] { return pending_.count(relid) == 0 || !failure_.ok(); });
  return failure_;
}

Status LoadJobs::WaitAll() {
  std::unique_lock<std::mutex> lock(mutex_);
  changed_.wait(lock, [&] { return pending_.empty(); });
  return failure_;
}

std::vector<uint32_t> LoadJobs::Busy() {
  std::lock_guard<std::mutex> lock(mutex_);
  std::vector<uint32_t> relids;
  for (const auto& [relid, n] : pending_) relids.push_back(relid);
  return relids;
}

}  // namespace pgtrail
