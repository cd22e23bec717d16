// How the three programs refuse: every refusal is one line on stderr (plus an
// optional "HINT:" line) naming what is wrong, a stable exit code from
// storage/status.h (usage 1, InvalidArgument 2, NotFound 3, Corruption 4,
// Unavailable 5, FailedPrecondition 6, IOError 7), never a crash, and nothing
// written. Also: the agent's configuration file, its retries against an
// unreachable source, passwords kept out of every message, private store files.
//
// One PostgreSQL cluster and one agent (database "app", slot "pgtrail") are
// shared by the whole suite; tests that start their own agent use their own
// database and slot.
#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <poll.h>
#include <rocksdb/db.h>
#include <sched.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <chrono>
#include <csignal>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <memory>
#include <regex>
#include <string>
#include <thread>
#include <vector>

#include "tests/integration/pg_cluster.h"

namespace pgtrail::testing {
namespace {

namespace fs = std::filesystem;
using Clock = std::chrono::steady_clock;
using std::chrono::milliseconds;
using std::chrono::seconds;

constexpr char kPassword[] = "S3cretPw";  // the role's password is "S3cretPw!"



// Exit code `code`, no crash, and stderr is "program: ...needle..." followed
// by nothing but "HINT: ..." lines.
::testing::AssertionResult IsRefusal(const CommandResult& result, int code,
                                     const std::string& needle) {
  auto fail = [&]() { return ::testing::AssertionFailure() << "\n" << result << "\n"; };
  if (result.timed_out) return fail() << "timed out";
  if (result.exit_code <= 0 || result.exit_code >= 128) return fail() << "crash-like exit code";
  if (Contains(result.stderr_text, "terminate called") || Contains(result.stderr_text, "Aborted")) {
    return fail() << "crashed";
  }
  if (result.exit_code != code) return fail() << "expected exit code " << code;
  const std::vector<std::string> lines = Lines(result.stderr_text);
  if (lines.empty()) return fail() << "nothing on stderr";
  if (!Contains(lines[0], needle)) return fail() << "first stderr line lacks \"" << needle << "\"";
  for (size_t i = 1; i < lines.size(); i++) {
    if (lines[i].rfind("HINT: ", 0) != 0) return fail() << "extra stderr line " << i + 1;
  }
  return ::testing::AssertionSuccess();
}

// A TCP port on 127.0.0.1 where nothing listens (bound, then closed).
int ClosedPort() {
  const int fd = socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  addr.sin_port = 0;
  socklen_t len = sizeof(addr);
  if (fd < 0 || bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0 ||
      getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len) != 0) {
    ADD_FAILURE() << "cannot find a free port";
  }
  close(fd);
  return ntohs(addr.sin_port);
}

// Polls the agent's log for `needle`; false on timeout or if the agent exits.
bool WaitForLog(AgentProcess* agent, const std::string& needle,
                milliseconds timeout = seconds(30)) {
  const Clock::time_point deadline = Clock::now() + timeout;
  while (Clock::now() < deadline) {
    if (Contains(agent->LogContents(), needle)) return true;
    if (!agent->IsRunning()) return Contains(agent->LogContents(), needle);
    std::this_thread::sleep_for(milliseconds(50));
  }
  return false;
}

// What the agent wrote to its log: without the fixture's "=== pgtrail test:
// starting <argv>" banners, which quote the command line.
std::string AgentOutput(const AgentProcess& agent) {
  std::string out;
  for (const std::string& line : Lines(agent.LogContents())) {
    if (line.rfind("=== pgtrail test:", 0) != 0) out += line + "\n";
  }
  return out;
}

std::vector<std::string> DirEntries(const std::string& dir) {
  std::vector<std::string> names;
  std::error_code ec;
  for (const auto& entry : fs::directory_iterator(dir, ec)) {
    names.push_back(entry.path().filename().string());
  }
  std::sort(names.begin(), names.end());
  return names;
}

CommandResult Restore(const std::vector<std::string>& args) {
  std::vector<std::string> argv = {kRestoreBin};
  argv.insert(argv.end(), args.begin(), args.end());
  return RunCommand(argv, "", seconds(60));
}

CommandResult Changelog(const std::vector<std::string>& args) {
  std::vector<std::string> argv = {kChangelogBin};
  argv.insert(argv.end(), args.begin(), args.end());
  return RunCommand(argv, "", seconds(60));
}

CommandResult Agent(const std::vector<std::string>& args) {
  std::vector<std::string> argv = {kAgentBin};
  argv.insert(argv.end(), args.begin(), args.end());
  return RunCommand(argv, "", seconds(30));
}

// The suite's cluster and agent, started by the first test that needs them.
struct Shared {
  PgCluster cluster;
  TempDir dir;
  std::string store;
  std::unique_ptr<AgentProcess> agent;
  // An instant after the insert of row 4 and before the UPDATE without WHERE.
  std::string before_mistake;
  std::string error;  // set if the set-up failed
};

Shared* g_shared = nullptr;

std::string SqlInstant(PgCluster* cluster, const std::string& expr = "clock_timestamp()") {
  return cluster->Scalar("postgres", "SELECT to_char((" + expr +
                                         ") AT TIME ZONE 'UTC', 'YYYY-MM-DD HH24:MI:SS.US') || "
                                         "'+00'");
}

std::string SetUpShared(Shared* s) {
  Status st = s->cluster.Start();
  if (!st.ok()) return "cluster: " + st.ToString();
  if (!(st = s->dir.Create("pgtrail-cli-")).ok()) return st.ToString();
  s->store = s->dir.path() + "/store";
  if (!(st = s->cluster.CreateDatabase("app")).ok()) return st.ToString();
  st = s->cluster.Exec("app",
                       "CREATE TABLE accounts (id int PRIMARY KEY, owner text, balance numeric);"
                       "INSERT INTO accounts VALUES (1, 'ann', 100), (2, 'ben', 200), "
                       "(3, 'cy', 300);"
                       "CREATE TABLE notes (id int PRIMARY KEY, body text)");
  if (!st.ok()) return st.ToString();
  s->agent = std::make_unique<AgentProcess>();
  st = s->agent->Start({"--source", s->cluster.ConnInfo("app"), "--store", s->store});
  if (!st.ok()) return st.ToString();
  if (!WaitForLog(s->agent.get(), "streaming from")) {
    return "the agent did not start streaming:\n" + s->agent->LogContents();
  }
  if (!(st = s->cluster.Exec("app", "INSERT INTO accounts VALUES (4, 'dee', 400)")).ok()) {
    return st.ToString();
  }
  // A 200 kB value, for patterns run over long values.
  if (!(st = s->cluster.Exec("app", "INSERT INTO notes VALUES (1, repeat('ab', 100000))")).ok()) {
    return st.ToString();
  }
  s->before_mistake = SqlInstant(&s->cluster);
  if (!(st = s->cluster.Exec("app", "UPDATE accounts SET balance = 0")).ok()) return st.ToString();
  if (!s->cluster.WaitForSlotCatchUp("pgtrail", s->cluster.CurrentWalLsn("app"))) {
    return "the agent did not catch up:\n" + s->agent->LogContents();
  }
  return "";
}

class CliErrorsTest : public ::testing::Test {
 protected:
  static void TearDownTestSuite() {
    delete g_shared;
    g_shared = nullptr;
  }

  // The shared cluster with the agent streaming database "app".
  Shared& Env() {
    if (g_shared == nullptr) {
      g_shared = new Shared();
      g_shared->error = SetUpShared(g_shared);
    }
    if (!g_shared->error.empty()) ADD_FAILURE() << "suite set-up failed: " << g_shared->error;
    return *g_shared;
  }
  PgCluster& cluster() { return Env().cluster; }
  const std::string& store() { return Env().store; }

  bool DatabaseExists(const std::string& name) {
    return cluster().Scalar("postgres", "SELECT count(*) FROM pg_database WHERE datname = '" +
                                            name + "'") == "1";
  }

  // A fresh temp dir owned by the test.
  std::string NewDir(const std::string& prefix) {
    dirs_.push_back(std::make_unique<TempDir>());
    EXPECT_OK(dirs_.back()->Create(prefix));
    return dirs_.back()->path();
  }

 private:
  std::vector<std::unique_ptr<TempDir>> dirs_;
};

// --- pitr-restore -----------------------------------------------------------

TEST_F(CliErrorsTest, RestoreRejectsUnparsableTime) {
  ASSERT_TRUE(Env().error.empty());
  for (const std::string time : {"yesterday-ish", "2026-13-01", "2026-02-30 12:00:00"}) {
    SCOPED_TRACE(time);
    CommandResult r = Restore(
        {"--store", store(), "--to", time, "--target", cluster().ConnInfo("restored_badtime")});
    EXPECT_TRUE(IsRefusal(r, 2, "invalid time \"" + time + "\""));
  }
  EXPECT_FALSE(DatabaseExists("restored_badtime"));
}

TEST_F(CliErrorsTest, RestoreRejectsTimeBeforeFirstSnapshot) {
  ASSERT_TRUE(Env().error.empty());
  CommandResult r = Restore({"--store", store(), "--to", "2000-01-01 00:00:00+00", "--target",
                             cluster().ConnInfo("restored_early")});
  EXPECT_TRUE(IsRefusal(r, 2, "is before the first base snapshot"));
  EXPECT_TRUE(IsRefusal(r, 2, "the store covers"));
  EXPECT_FALSE(DatabaseExists("restored_early"));
}

TEST_F(CliErrorsTest, RestoreRejectsTimeAfterLastCommit) {
  ASSERT_TRUE(Env().error.empty());
  const std::string tomorrow = SqlInstant(&cluster(), "now() + interval '1 day'");
  CommandResult r = Restore(
      {"--store", store(), "--to", tomorrow, "--target", cluster().ConnInfo("restored_late")});
  EXPECT_TRUE(IsRefusal(r, 2, "is after the last captured commit"));
  EXPECT_TRUE(IsRefusal(r, 2, "the store covers"));
  EXPECT_FALSE(DatabaseExists("restored_late"));
}

TEST_F(CliErrorsTest, RestoreRefusesNonEmptyTarget) {
  ASSERT_TRUE(Env().error.empty());
  ASSERT_OK(cluster().CreateDatabase("busy"));
  ASSERT_OK(cluster().Exec("busy", "CREATE TABLE keep (x int); INSERT INTO keep VALUES (42)"));
  const DatabaseFingerprints before = cluster().DatabaseFingerprint("busy");
  CommandResult r = Restore({"--store", store(), "--to", Env().before_mistake, "--target",
                             cluster().ConnInfo("busy")});
  EXPECT_TRUE(IsRefusal(r, 6, "is not empty"));
  EXPECT_TRUE(FingerprintsEqual(before, cluster().DatabaseFingerprint("busy")));
}

// --jobs takes 1 to 64, never with --clean, and builds a database of its
// own: an existing target is refused untouched.
TEST_F(CliErrorsTest, RestoreRefusesBadJobsAndAnExistingTargetForJobs) {
  ASSERT_TRUE(Env().error.empty());
  for (const std::string jobs : {"0", "65"}) {
    CommandResult r = Restore({"--store", store(), "--to", Env().before_mistake, "--jobs", jobs,
                               "--target", cluster().ConnInfo("restored_badjobs")});
    EXPECT_TRUE(IsRefusal(r, 2, "invalid --jobs " + jobs + ": expected 1 to 64")) << r;
  }
  CommandResult clean = Restore({"--store", store(), "--to", Env().before_mistake, "--jobs", "2",
                                 "--clean", "--yes", "--target",
                                 cluster().ConnInfo("restored_badjobs")});
  EXPECT_TRUE(IsRefusal(clean, 2, "--jobs cannot be combined with --clean")) << clean;
  EXPECT_FALSE(DatabaseExists("restored_badjobs"));
  ASSERT_OK(cluster().CreateDatabase("empty_for_jobs"));
  CommandResult exists = Restore({"--store", store(), "--to", Env().before_mistake, "--jobs",
                                  "2", "--target", cluster().ConnInfo("empty_for_jobs")});
  EXPECT_TRUE(IsRefusal(exists, 6, "database \"empty_for_jobs\" exists, and --jobs restores "
                                   "into a database it creates"))
      << exists;
  EXPECT_TRUE(cluster().DatabaseFingerprint("empty_for_jobs").empty());
}

TEST_F(CliErrorsTest, RestoreRejectsUnknownCpuScheduling) {
  ASSERT_TRUE(Env().error.empty());
  CommandResult r = Restore({"--store", store(), "--to", Env().before_mistake, "--cpu-scheduling",
                             "idle", "--target", cluster().ConnInfo("restored_badsched")});
  EXPECT_TRUE(IsRefusal(r, 2, "invalid --cpu-scheduling \"idle\": expected batch or inherit"));
  EXPECT_FALSE(DatabaseExists("restored_badsched"));
}

// pitr-restore runs under SCHED_BATCH (its loading threads inherit it) unless
// told to inherit. Its target is a socket that takes the connection and never
// answers, so the restore waits there, past planning, while its threads are
// looked at.
TEST_F(CliErrorsTest, RestoreRunsUnderSchedBatchUnlessToldToInherit) {
  ASSERT_TRUE(Env().error.empty());
  ASSERT_EQ(sched_getscheduler(0), SCHED_OTHER) << "the test must start under the normal policy";
  const int listener = socket(AF_INET, SOCK_STREAM, 0);
  ASSERT_GE(listener, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t len = sizeof(addr);
  ASSERT_EQ(bind(listener, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)), 0);
  ASSERT_EQ(getsockname(listener, reinterpret_cast<sockaddr*>(&addr), &len), 0);
  ASSERT_EQ(listen(listener, 4), 0);
  const std::string silent_target = "host=127.0.0.1 port=" + std::to_string(ntohs(addr.sin_port)) +
                                    " dbname=silent sslmode=disable connect_timeout=60";
  for (const auto& [flags, expected] :
       std::vector<std::pair<std::vector<std::string>, int>>{{{}, SCHED_BATCH},
                                                             {{"--cpu-scheduling", "inherit"},
                                                              SCHED_OTHER}}) {
    SCOPED_TRACE(expected == SCHED_BATCH ? "default" : "inherit");
    AgentProcess restore(kRestoreBin);
    std::vector<std::string> args = {"--store", store(), "--to", Env().before_mistake,
                                     "--target", silent_target};
    args.insert(args.end(), flags.begin(), flags.end());
    ASSERT_OK(restore.Start(args));
    pollfd pfd{listener, POLLIN, 0};
    ASSERT_EQ(poll(&pfd, 1, 30000), 1) << "pitr-restore never connected:\n"
                                       << restore.LogContents();
    const int conn = accept(listener, nullptr, nullptr);
    ASSERT_GE(conn, 0);
    const std::multimap<std::string, int> policies = ThreadPolicies(restore.pid());
    EXPECT_FALSE(policies.empty());
    for (const auto& [name, policy] : policies) EXPECT_EQ(policy, expected) << name;
    ASSERT_OK(restore.Kill(SIGKILL));
    restore.WaitExit(seconds(10));
    close(conn);
  }
  close(listener);
}

TEST_F(CliErrorsTest, RestoreRefusesTheSourceDatabase) {
  ASSERT_TRUE(Env().error.empty());
  const DatabaseFingerprints before = cluster().DatabaseFingerprint("app");
  CommandResult r = Restore({"--store", store(), "--to", Env().before_mistake, "--target",
                             cluster().ConnInfo("app")});
  EXPECT_TRUE(IsRefusal(r, 6, "is the source database"));
  EXPECT_TRUE(FingerprintsEqual(before, cluster().DatabaseFingerprint("app")));
}

TEST_F(CliErrorsTest, RestoreReportsMissingStore) {
  const std::string missing = NewDir("pgtrail-cli-missing-") + "/no-store-here";
  CommandResult r =
      Restore({"--store", missing, "--to", "2026-01-01 00:00:00+00", "--dry-run"});
  EXPECT_TRUE(IsRefusal(r, 3, "no pgtrail store at " + missing));
  EXPECT_FALSE(fs::exists(missing));
}

TEST_F(CliErrorsTest, RestoreRefusesDirectoryThatIsNotAStore) {
  const std::string empty = NewDir("pgtrail-cli-empty-");
  const std::string with_file = NewDir("pgtrail-cli-file-");
  std::ofstream(with_file + "/notes.txt") << "not a store\n";
  const std::string foreign = NewDir("pgtrail-cli-rocks-") + "/db";
  {
    rocksdb::Options options;
    options.create_if_missing = true;
    rocksdb::DB* db = nullptr;
    ASSERT_TRUE(rocksdb::DB::Open(options, foreign, &db).ok());
    ASSERT_TRUE(db->Put(rocksdb::WriteOptions(), "key", "value").ok());
    ASSERT_TRUE(db->Close().ok());
    delete db;
  }
  const std::string plain_file = with_file + "/notes.txt";
  for (const std::string& dir : {empty, with_file, foreign, plain_file}) {
    SCOPED_TRACE(dir);
    const std::vector<std::string> before = DirEntries(dir);
    CommandResult r = Restore({"--store", dir, "--to", "2026-01-01 00:00:00+00", "--dry-run"});
    EXPECT_TRUE(IsRefusal(r, 6, dir + " is not a pgtrail store"));
    EXPECT_EQ(DirEntries(dir), before);
  }
}

TEST_F(CliErrorsTest, RestoreRequiresStoreAndTo) {
  CommandResult no_to = Restore({"--store", "/tmp/whatever", "--dry-run"});
  EXPECT_TRUE(IsRefusal(no_to, 1, "--to"));
  CommandResult no_store = Restore({"--to", "2026-01-01 00:00:00+00", "--dry-run"});
  EXPECT_TRUE(IsRefusal(no_store, 1, "--store"));
  CommandResult no_target = Restore({"--store", "/tmp/whatever", "--to", "now"});
  EXPECT_TRUE(IsRefusal(no_target, 1, "--target"));
}

TEST_F(CliErrorsTest, RestoreRejectsUnknownFlag) {
  CommandResult r = Restore({"--store", "/tmp/whatever", "--to", "now", "--bogus"});
  EXPECT_TRUE(IsRefusal(r, 1, "bogus"));
}

TEST_F(CliErrorsTest, RestoreRejectsUnknownTableAndListsKnownOnes) {
  ASSERT_TRUE(Env().error.empty());
  CommandResult r = Restore(
      {"--store", store(), "--to", Env().before_mistake, "--tables", "nosuch", "--dry-run"});
  EXPECT_TRUE(IsRefusal(r, 2, "no table \"nosuch\""));
  EXPECT_TRUE(IsRefusal(r, 2, "public.accounts"));
}

TEST_F(CliErrorsTest, RestoreHelpListsEveryOption) {
  CommandResult r = Restore({"--help"});
  EXPECT_EQ(r.exit_code, 0) << r;
  for (const char* option :
       {"--store", "--to", "--target", "--tables", "--dry-run", "--jobs", "--cpu-scheduling"}) {
    EXPECT_TRUE(Contains(r.stdout_text, option)) << option << "\n" << r;
  }
}

TEST_F(CliErrorsTest, EveryProgramPrintsItsVersion) {
  const std::regex version(R"(\(pgtrail\) \d+\.\d+\.\d+)");
  for (const char* bin : {kRestoreBin, kChangelogBin, kAgentBin}) {
    CommandResult r = RunCommand({bin, "--version"});
    EXPECT_EQ(r.exit_code, 0) << r;
    EXPECT_TRUE(std::regex_search(r.stdout_text, version)) << r;
  }
}

TEST_F(CliErrorsTest, RestoreWorksWhileTheAgentRuns) {
  ASSERT_TRUE(Env().error.empty());
  CommandResult r = Restore({"--store", store(), "--to", Env().before_mistake, "--target",
                             cluster().ConnInfo("restored_live")});
  ASSERT_EQ(r.exit_code, 0) << r;
  EXPECT_EQ(cluster().Scalar("restored_live",
                             "SELECT string_agg(id || ':' || owner || ':' || balance, ',' "
                             "ORDER BY id) FROM accounts"),
            "1:ann:100,2:ben:200,3:cy:300,4:dee:400");
  EXPECT_EQ(cluster().Scalar("restored_live", "SELECT length(body) FROM notes"), "200000");
  EXPECT_TRUE(Env().agent->IsRunning()) << Env().agent->LogContents();
}

// --- changelog --------------------------------------------------------------

TEST_F(CliErrorsTest, ChangelogRequiresAKnownCommand) {
  EXPECT_TRUE(IsRefusal(Changelog({"--store", "/tmp/whatever"}), 1, "a command is required"));
  EXPECT_TRUE(IsRefusal(Changelog({"--store", "/tmp/whatever", "grap"}), 1,
                        "unknown command \"grap\""));
  EXPECT_TRUE(IsRefusal(Changelog({"grep"}), 1, "--store"));
  EXPECT_TRUE(IsRefusal(Changelog({"--store", "/tmp/whatever", "grep", "--bogus"}), 1, "bogus"));
}

TEST_F(CliErrorsTest, ChangelogRejectsBadPatternOpFormatAndTime) {
  ASSERT_TRUE(Env().error.empty());
  EXPECT_TRUE(IsRefusal(Changelog({"--store", store(), "grep", "("}), 2, "invalid PATTERN \"(\""));
  EXPECT_TRUE(IsRefusal(Changelog({"--store", store(), "grep", "--op", "upsert"}), 2,
                        "invalid --op \"upsert\""));
  EXPECT_TRUE(IsRefusal(Changelog({"--store", store(), "grep", "--format", "xml"}), 2,
                        "invalid --format \"xml\""));
  EXPECT_TRUE(IsRefusal(Changelog({"--store", store(), "grep", "--since", "yesterday-ish"}), 2,
                        "invalid time \"yesterday-ish\""));
  EXPECT_TRUE(IsRefusal(Changelog({"--store", store(), "grep", "--until", "2026-13-01"}), 2,
                        "invalid time \"2026-13-01\""));
}

TEST_F(CliErrorsTest, ChangelogReportsMissingStore) {
  const std::string missing = NewDir("pgtrail-cli-missing-") + "/no-store-here";
  EXPECT_TRUE(IsRefusal(Changelog({"--store", missing, "grep"}), 3, "no pgtrail store at"));
  const std::string empty = NewDir("pgtrail-cli-empty-");
  EXPECT_TRUE(IsRefusal(Changelog({"--store", empty, "grep"}), 6, "is not a pgtrail store"));
}

// std::regex's default executor recurses once per character: ".*" over a
// long value must not overflow the stack.
TEST_F(CliErrorsTest, ChangelogSurvivesAPatternOverALongValue) {
  ASSERT_TRUE(Env().error.empty());
  CommandResult r = Changelog({"--store", store(), "grep", "^a.*b$", "--table", "notes"});
  EXPECT_EQ(r.exit_code, 0) << "stderr: " << r.stderr_text
                            << "\nstdout: " << r.stdout_text.substr(0, 300);
  EXPECT_TRUE(Contains(r.stdout_text, "INSERT public.notes (id)=('1')"))
      << r.stdout_text.substr(0, 300);
}

TEST_F(CliErrorsTest, ChangelogHelpListsEveryOption) {
  CommandResult r = Changelog({"--help"});
  EXPECT_EQ(r.exit_code, 0) << r;
  for (const char* word : {"grep", "PATTERN", "--store", "--table", "--since", "--until", "--op",
                           "--format"}) {
    EXPECT_TRUE(Contains(r.stdout_text, word)) << word << "\n" << r;
  }
}

// --- pgtrail-agent ----------------------------------------------------------

TEST_F(CliErrorsTest, AgentRequiresStore) {
  EXPECT_TRUE(IsRefusal(Agent({"--source", "dbname=app"}), 1, "--store"));
}

TEST_F(CliErrorsTest, AgentRejectsBadSlotNameWithoutCreatingTheStore) {
  const std::string store_path = NewDir("pgtrail-cli-slot-") + "/store";
  CommandResult r = Agent({"--source", "dbname=app", "--store", store_path, "--slot", "Bad-Name"});
  // A well-formed flag with a bad value is InvalidArgument (2), as for
  // changelog --op and pitr-restore --to.
  EXPECT_TRUE(IsRefusal(r, 2, "invalid --slot \"Bad-Name\""));
  EXPECT_FALSE(fs::exists(store_path));
}

TEST_F(CliErrorsTest, AgentRejectsUnknownCpuSchedulingWithoutCreatingTheStore) {
  const std::string store_path = NewDir("pgtrail-cli-sched-") + "/store";
  CommandResult r =
      Agent({"--source", "dbname=app", "--store", store_path, "--cpu-scheduling", "fifo"});
  EXPECT_TRUE(IsRefusal(r, 2, "invalid --cpu-scheduling \"fifo\": expected batch or inherit"));
  EXPECT_FALSE(fs::exists(store_path));
}

TEST_F(CliErrorsTest, AgentRejectsMalformedSourceWithoutCreatingTheStore) {
  const std::string store_path = NewDir("pgtrail-cli-src-") + "/store";
  CommandResult r = Agent({"--source", "host=127.0.0.1 dbname", "--store", store_path});
  EXPECT_TRUE(IsRefusal(r, 2, "invalid connection string"));
  EXPECT_FALSE(fs::exists(store_path));
}

TEST_F(CliErrorsTest, AgentRejectsMalformedEndposWithoutCreatingTheStore) {
  const std::string store_path = NewDir("pgtrail-cli-endpos-") + "/store";
  for (const char* bad : {"16B374D848", "0/XYZ", "/1", "123456789/0"}) {
    CommandResult r = Agent({"--source", "dbname=app", "--store", store_path, "--endpos", bad});
    EXPECT_TRUE(IsRefusal(r, 2,
                          std::string("--endpos: invalid LSN \"") + bad +
                              "\": expected two hexadecimal numbers like 16/B374D848"))
        << bad;
  }
  EXPECT_TRUE(IsRefusal(Agent({"--source", "dbname=app", "--store", store_path, "--endpos", "0/0"}),
                        2, "invalid --endpos 0/0: expected an LSN above 0/0"));
  EXPECT_FALSE(fs::exists(store_path));
}

TEST_F(CliErrorsTest, AgentRejectsUnknownFlag) {
  EXPECT_TRUE(IsRefusal(Agent({"--store", "/tmp/whatever", "--bogus"}), 1, "bogus"));
}

TEST_F(CliErrorsTest, AgentHelpListsItsOptions) {
  CommandResult r = Agent({"--help"});
  EXPECT_EQ(r.exit_code, 0) << r;
  for (const char* option : {"--source", "--store", "--slot", "--publication", "--config",
                             "--endpos", "--cpu-scheduling"}) {
    EXPECT_TRUE(Contains(r.stdout_text, option)) << option << "\n" << r;
  }
}

TEST_F(CliErrorsTest, AgentReadsSourceAndStoreFromConfigFile) {
  ASSERT_TRUE(Env().error.empty());
  ASSERT_OK(cluster().CreateDatabase("cfg"));
  ASSERT_OK(cluster().Exec("cfg", "CREATE TABLE t (id int PRIMARY KEY); INSERT INTO t VALUES (1)"));
  const std::string dir = NewDir("pgtrail-cli-cfg-");
  const std::string config = dir + "/agent.conf";
  std::ofstream(config) << "# pgtrail-agent configuration\n"
                        << "source = " << cluster().ConnInfo("cfg") << "\n"
                        << "store = " << dir << "/store\n"
                        << "slot = cfg_slot\n";
  AgentProcess agent;
  ASSERT_OK(agent.Start({"--config", config}));
  ASSERT_TRUE(WaitForLog(&agent, "snapshot 1 complete")) << agent.LogContents();
  ASSERT_TRUE(agent.IsRunning()) << agent.LogContents();
  EXPECT_TRUE(fs::exists(dir + "/store/CURRENT"));
  ASSERT_OK(agent.Kill(SIGTERM));
  EXPECT_EQ(agent.WaitExit(seconds(5)), 0) << agent.LogContents();
  EXPECT_OK(cluster().Exec("postgres", "SELECT pg_drop_replication_slot('cfg_slot')"));
}

TEST_F(CliErrorsTest, AgentKeepsRetryingAnUnreachableSource) {
  const std::string dir = NewDir("pgtrail-cli-unreach-");
  const std::string source =
      "host=127.0.0.1 port=" + std::to_string(ClosedPort()) + " user=postgres dbname=app";
  AgentProcess agent;
  const Clock::time_point started = Clock::now();
  ASSERT_OK(agent.Start({"--source", source, "--store", dir + "/store"}));
  ASSERT_TRUE(WaitForLog(&agent, "could not connect", seconds(5))) << agent.LogContents();
  std::this_thread::sleep_until(started + seconds(2));
  ASSERT_TRUE(agent.IsRunning()) << agent.LogContents();
  const Clock::time_point stop = Clock::now();
  ASSERT_OK(agent.Kill(SIGTERM));
  EXPECT_EQ(agent.WaitExit(seconds(5)), 0) << agent.LogContents();
  EXPECT_LT(Clock::now() - stop, seconds(1)) << "SIGTERM was not handled promptly";
  // One line per attempt, not a wall of text.
  for (const std::string& line : Lines(agent.LogContents())) {
    if (Contains(line, "could not connect")) {
      EXPECT_TRUE(Contains(line, "reconnecting in")) << line;
    }
  }
}

TEST_F(CliErrorsTest, AgentRefusesStoreOfAnotherDatabase) {
  ASSERT_TRUE(Env().error.empty());
  ASSERT_OK(cluster().CreateDatabase("a"));
  ASSERT_OK(cluster().CreateDatabase("b"));
  ASSERT_OK(cluster().Exec("a", "CREATE TABLE t (id int PRIMARY KEY); INSERT INTO t VALUES (1)"));
  const std::string store_path = NewDir("pgtrail-cli-ab-") + "/store";
  AgentProcess agent;
  ASSERT_OK(agent.Start(
      {"--source", cluster().ConnInfo("a"), "--store", store_path, "--slot", "a_slot"}));
  ASSERT_TRUE(WaitForLog(&agent, "streaming from")) << agent.LogContents();
  ASSERT_OK(agent.Kill(SIGTERM));
  ASSERT_EQ(agent.WaitExit(seconds(5)), 0) << agent.LogContents();

  ASSERT_OK(agent.Start(
      {"--source", cluster().ConnInfo("b"), "--store", store_path, "--slot", "a_slot"}));
  EXPECT_EQ(agent.WaitExit(seconds(30)), 6) << agent.LogContents();
  const std::string log = agent.LogContents();
  const std::string second_run = log.substr(log.rfind("=== pgtrail test: starting"));
  EXPECT_TRUE(Contains(second_run, "belongs to database \"a\"")) << second_run;
  EXPECT_FALSE(Contains(second_run, "terminate called")) << second_run;
  EXPECT_EQ(cluster().Scalar("b", "SELECT count(*) FROM pg_publication"), "0");
  EXPECT_EQ(cluster().Scalar("postgres",
                             "SELECT string_agg(database, ',') FROM pg_replication_slots "
                             "WHERE slot_name = 'a_slot'"),
            "a");
  EXPECT_OK(cluster().Exec("postgres", "SELECT pg_drop_replication_slot('a_slot')"));
}

TEST_F(CliErrorsTest, PasswordNeverAppearsInLogsOrMessages) {
  ASSERT_TRUE(Env().error.empty());
  ASSERT_OK(cluster().Exec("postgres",
                           "CREATE ROLE trail_user LOGIN REPLICATION PASSWORD 'S3cretPw!'"));
  ASSERT_OK(cluster().CreateDatabase("pw"));
  ASSERT_OK(cluster().Exec("pw",
                           "CREATE TABLE t (id int PRIMARY KEY, v text);"
                           "INSERT INTO t VALUES (1, 'one');"
                           "GRANT SELECT ON t TO trail_user;"
                           "CREATE PUBLICATION pgtrail FOR ALL TABLES"));
  const std::string pw_source = "host=127.0.0.1 port=" + std::to_string(cluster().port()) +
                                " user=trail_user password=S3cretPw! dbname=pw";
  const int closed = ClosedPort();
  const std::string unreachable = "host=127.0.0.1 port=" + std::to_string(closed) +
                                  " user=trail_user password=S3cretPw! dbname=pw";
  const std::string dir = NewDir("pgtrail-cli-pw-");

  AgentProcess agent;
  ASSERT_OK(agent.Start({"--source", pw_source, "--store", dir + "/store", "--slot", "pw_slot"}));
  EXPECT_TRUE(WaitForLog(&agent, "streaming from")) << agent.LogContents();
  ASSERT_OK(agent.Kill(SIGTERM));
  EXPECT_EQ(agent.WaitExit(seconds(5)), 0) << agent.LogContents();

  AgentProcess retrying;
  ASSERT_OK(retrying.Start({"--source", unreachable, "--store", dir + "/store2"}));
  EXPECT_TRUE(WaitForLog(&retrying, "could not connect", seconds(5))) << retrying.LogContents();
  ASSERT_OK(retrying.Kill(SIGTERM));
  EXPECT_EQ(retrying.WaitExit(seconds(5)), 0) << retrying.LogContents();

  EXPECT_FALSE(Contains(AgentOutput(agent), kPassword)) << agent.LogContents();
  EXPECT_FALSE(Contains(AgentOutput(retrying), kPassword)) << retrying.LogContents();

  // Failing commands: an unreachable target, a URI, and conninfo that does not parse.
  const std::vector<std::vector<std::string>> failing = {
      {kRestoreBin, "--store", store(), "--to", Env().before_mistake, "--target", unreachable},
      {kRestoreBin, "--store", store(), "--to", Env().before_mistake, "--target",
       "postgresql://trail_user:S3cretPw!@127.0.0.1:" + std::to_string(closed) + "/pw"},
      {kRestoreBin, "--store", store(), "--to", Env().before_mistake, "--target",
       "host=127.0.0.1 password=S3cretPw! dbname"},
      {kRestoreBin, "--store", store(), "--to", Env().before_mistake, "--target",
       "host=127.0.0.1 password='S3cretPw! dbname=x"},
      {kAgentBin, "--source", "host=127.0.0.1 password=S3cretPw! dbname", "--store",
       dir + "/store3"},
      {kAgentBin, "--source", pw_source, "--store", store()},  // a store of another database
  };
  for (const auto& argv : failing) {
    CommandResult r = RunCommand(argv, "", seconds(30));
    SCOPED_TRACE(argv.back());
    EXPECT_GT(r.exit_code, 0) << r;
    EXPECT_LT(r.exit_code, 128) << r;
    EXPECT_FALSE(r.stderr_text.empty()) << r;
    EXPECT_FALSE(Contains(r.stderr_text, kPassword)) << r;
    EXPECT_FALSE(Contains(r.stdout_text, kPassword)) << r;
    if (std::getenv("PGTRAIL_SHOW_MESSAGES") != nullptr) std::cerr << r << "\n";
  }
  EXPECT_OK(cluster().Exec("postgres", "SELECT pg_drop_replication_slot('pw_slot')"));
}

TEST_F(CliErrorsTest, StoreFilesArePrivateToTheOwner) {
  ASSERT_TRUE(Env().error.empty());
  struct stat st {};
  ASSERT_EQ(stat(store().c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 07777, 0700u) << std::oct << (st.st_mode & 07777);
  int files = 0;
  for (const auto& entry : fs::recursive_directory_iterator(store())) {
    ASSERT_EQ(lstat(entry.path().c_str(), &st), 0) << entry.path();
    if (S_ISDIR(st.st_mode)) {
      EXPECT_EQ(st.st_mode & 07777, 0700u) << entry.path() << " " << std::oct << st.st_mode;
    } else if (S_ISREG(st.st_mode)) {
      files++;
      EXPECT_EQ(st.st_mode & 07777, 0600u) << entry.path() << " " << std::oct << st.st_mode;
    }
  }
  EXPECT_GT(files, 3);
}

}  // namespace
}  // namespace pgtrail::testing
