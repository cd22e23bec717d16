// LoadJobs (pitr-restore --jobs) against a real server: each job runs in a
// transaction of its own, a table's jobs run one at a time in the order
// given while other tables' jobs run beside them, and the first failure
// stops the rest and is reported.
#include "tools/load_jobs.h"

#include <gtest/gtest.h>

#include <chrono>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "tests/integration/pg_cluster.h"

namespace pgtrail::testing {
namespace {

class LoadJobsTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_OK(cluster_.Start());
    ASSERT_OK(cluster_.CreateDatabase("jobs"));
    ASSERT_OK_AND_ASSIGN(main_, cluster_.Connect("jobs"));
    auto jobs = LoadJobs::StartWorkers(
        main_.get(), 2, [&] { return cluster_.Connect("jobs"); }, "SET search_path = pg_catalog");
    ASSERT_OK(jobs);
    jobs_ = std::move(jobs).value();
  }

  // A job that records `name` when it starts and when it ends, sleeping in
  // between (in the server, so the worker's connection is busy).
  LoadJobs::Job Recorder(const std::string& name, double seconds) {
    return [this, name, seconds](PgConn* c) {
      Note(name + "+");
      Status st = c->Exec("SELECT pg_sleep(" + std::to_string(seconds) + ")");
      Note(name + "-");
      return st;
    };
  }
  void Note(const std::string& event) {
    std::lock_guard<std::mutex> lock(mutex_);
    events_.push_back(event);
  }
  size_t IndexOf(const std::string& event) {
    std::lock_guard<std::mutex> lock(mutex_);
    for (size_t i = 0; i < events_.size(); i++) {
      if (events_[i] == event) return i;
    }
    ADD_FAILURE() << "no event " << event;
    return 0;
  }

  PgCluster cluster_;
  std::unique_ptr<PgConn> main_;
  std::unique_ptr<LoadJobs> jobs_;
  std::mutex mutex_;
  std::vector<std::string> events_;
};

TEST_F(LoadJobsTest, EachJobRunsInItsOwnTransactionOnAWorker) {
  ASSERT_TRUE(jobs_->parallel());
  std::string backend;
  ASSERT_OK(jobs_->Run(1, [&](PgConn* c) {
    // SAVEPOINT fails outside a transaction block; the session setting holds.
    RETURN_IF_ERROR(c->Exec("SAVEPOINT inside"));
    ASSIGN_OR_RETURN(PgResult r, c->Query("SELECT pg_backend_pid()::text, current_setting('search_path')"));
    backend = r.GetString(0, 0);
    EXPECT_EQ(r.GetString(0, 1), "pg_catalog");
    return Status::OK();
  }));
  ASSERT_OK(jobs_->WaitAll());
  ASSERT_OK_AND_ASSIGN(PgResult mine, main_->Query("SELECT pg_backend_pid()::text"));
  EXPECT_FALSE(backend.empty());
  EXPECT_NE(backend, mine.GetString(0, 0));
}

TEST_F(LoadJobsTest, ATablesJobsRunInOrderWhileOtherTablesRunBeside) {
  ASSERT_OK(jobs_->Run(1, Recorder("a1", 0.4)));
  ASSERT_OK(jobs_->Run(1, Recorder("a2", 0.0)));  // a worker is free, but a1 is running
  ASSERT_OK(jobs_->Run(2, Recorder("b", 0.0)));
  ASSERT_OK(jobs_->WaitFor(1));
  ASSERT_OK(jobs_->WaitFor(2));
  EXPECT_LT(IndexOf("b-"), IndexOf("a1-"));  // ran beside a1
  EXPECT_LT(IndexOf("a1-"), IndexOf("a2+"));  // after a1, not beside it
  EXPECT_TRUE(jobs_->Busy().empty());
}

TEST_F(LoadJobsTest, TheFirstFailureStopsTheRestAndIsReported) {
  ASSERT_OK(jobs_->Run(1, [](PgConn* c) { return c->Exec("SELECT pg_sleep(0.2); SELECT 1/0"); }));
  ASSERT_OK(jobs_->Run(1, Recorder("after", 0.0)));  // queued behind the failure
  Status st = jobs_->WaitAll();
  EXPECT_EQ(st.code(), Status::kFailedPrecondition) << st.message();
  EXPECT_NE(st.message().find("division by zero"), std::string::npos) << st.message();
  EXPECT_EQ(jobs_->Run(3, Recorder("later", 0.0)).code(), Status::kFailedPrecondition);
  ASSERT_FALSE(jobs_->WaitAll().ok());
  std::lock_guard<std::mutex> lock(mutex_);
  EXPECT_TRUE(events_.empty()) << "a job ran after the failure";
}

TEST(LoadJobsSequential, RunsEachJobAtOnceOnTheMainConnection) {
  PgCluster cluster;
  ASSERT_OK(cluster.Start());
  ASSERT_OK_AND_ASSIGN(auto main, cluster.Connect("postgres"));
  LoadJobs jobs(main.get());
  EXPECT_FALSE(jobs.parallel());
  PgConn* used = nullptr;
  ASSERT_OK(jobs.Run(7, [&](PgConn* c) {
    used = c;
    return Status::OK();
  }));
  EXPECT_EQ(used, main.get());  // before Run returned
  EXPECT_TRUE(jobs.Busy().empty());
}

}  // namespace
}  // namespace pgtrail::testing
