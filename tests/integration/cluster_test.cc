// Tests of the integration fixture itself: if these fail, no other
// integration test result means anything.
#include <gtest/gtest.h>
#include <sys/stat.h>

#include <chrono>
#include <csignal>
#include <string>

#include "tests/integration/pg_cluster.h"

namespace pgtrail::testing {
namespace {

using std::chrono::milliseconds;
using std::chrono::seconds;

class PgClusterTest : public ::testing::Test {
 protected:
  void SetUp() override { ASSERT_OK(cluster_.Start()); }

  PgCluster cluster_;
};

TEST_F(PgClusterTest, StartsWithLogicalWalLevelAndUtc) {
  EXPECT_EQ(cluster_.Scalar("postgres", "SHOW wal_level"), "logical");
  EXPECT_EQ(cluster_.Scalar("postgres", "SHOW max_replication_slots"), "10");
  EXPECT_EQ(cluster_.Scalar("postgres", "SHOW timezone"), "UTC");
  EXPECT_EQ(cluster_.Scalar("postgres", "SHOW server_encoding"), "UTF8");
  EXPECT_EQ(cluster_.Scalar("postgres", "SHOW port"), std::to_string(cluster_.port()));
}

TEST_F(PgClusterTest, ServerRunsAsNonRootOsUser) {
  // The backend must still be there when it is looked at: keep its session.
  ASSERT_OK_AND_ASSIGN(auto conn, cluster_.Connect("postgres"));
  ASSERT_OK_AND_ASSIGN(PgResult res, conn->Query("SELECT pg_backend_pid()"));
  const std::string pid = res.GetString(0, 0);
  struct stat st {};
  ASSERT_EQ(stat(("/proc/" + pid).c_str(), &st), 0) << "no process " << pid;
  EXPECT_NE(st.st_uid, 0u);
}

TEST_F(PgClusterTest, ConnInfoNamesTheDatabase) {
  EXPECT_EQ(cluster_.ConnInfo("app"),
            "host=127.0.0.1 port=" + std::to_string(cluster_.port()) + " user=postgres dbname=app");
  ASSERT_OK(cluster_.CreateDatabase("app"));
  EXPECT_EQ(cluster_.Scalar("app", "SELECT current_database()"), "app");
}

TEST_F(PgClusterTest, ExecReportsTheServerError) {
  Status status = cluster_.Exec("postgres", "SELECT * FROM no_such_table");
  EXPECT_EQ(status.code(), Status::kFailedPrecondition);
  EXPECT_NE(status.message().find("no_such_table"), std::string::npos) << status.ToString();
}

TEST_F(PgClusterTest, QueryReturnsNullsAsNullopt) {
  Rows rows = cluster_.Query("postgres", "SELECT 'a', NULL::text UNION ALL SELECT '', 'b'");
  ASSERT_EQ(rows.size(), 2u);
  EXPECT_EQ(rows[0], (Row{"a", std::nullopt}));
  EXPECT_EQ(rows[1], (Row{"", "b"}));
  EXPECT_EQ(cluster_.Scalar("postgres", "SELECT NULL"), "<null>");
}

TEST_F(PgClusterTest, TableFingerprintChangesWhenOneRowChanges) {
  ASSERT_OK(cluster_.Exec("postgres",
                          "CREATE TABLE t (id int PRIMARY KEY, v text);"
                          "INSERT INTO t SELECT g, 'row ' || g FROM generate_series(1, 100) g"));
  const Fingerprint before = cluster_.TableFingerprint("postgres", "public", "t");
  EXPECT_EQ(before.row_count, 100);
  EXPECT_EQ(before.columns, "\"id\" integer NOT NULL, \"v\" text");

  ASSERT_OK(cluster_.Exec("postgres", "UPDATE t SET v = 'changed' WHERE id = 42"));
  const Fingerprint after = cluster_.TableFingerprint("postgres", "public", "t");
  EXPECT_EQ(after.row_count, 100);
  EXPECT_NE(after.rows_md5, before.rows_md5);
}

TEST_F(PgClusterTest, TableFingerprintIgnoresInsertionOrder) {
  const std::string schema = "CREATE TABLE t (id int PRIMARY KEY, v text, n numeric);";
  ASSERT_OK(cluster_.CreateDatabase("a"));
  ASSERT_OK(cluster_.CreateDatabase("b"));
  ASSERT_OK(cluster_.Exec("a", schema + "INSERT INTO t VALUES (1, 'x', 1.5), (2, NULL, NULL), "
                                        "(3, 'Z', -2)"));
  ASSERT_OK(cluster_.Exec("b", schema + "INSERT INTO t VALUES (3, 'Z', -2);"
                                        "INSERT INTO t VALUES (1, 'x', 1.5), (2, NULL, NULL)"));
  EXPECT_EQ(cluster_.TableFingerprint("a", "public", "t"),
            cluster_.TableFingerprint("b", "public", "t"));
  EXPECT_TRUE(
      FingerprintsEqual(cluster_.DatabaseFingerprint("a"), cluster_.DatabaseFingerprint("b")));
}

TEST_F(PgClusterTest, TableFingerprintSeesColumnTypes) {
  ASSERT_OK(cluster_.Exec("postgres",
                          "CREATE TABLE narrow (id int NOT NULL);"
                          "CREATE TABLE wide (id bigint NOT NULL);"
                          "INSERT INTO narrow VALUES (1); INSERT INTO wide VALUES (1)"));
  const Fingerprint narrow = cluster_.TableFingerprint("postgres", "public", "narrow");
  const Fingerprint wide = cluster_.TableFingerprint("postgres", "public", "wide");
  EXPECT_EQ(narrow.rows_md5, wide.rows_md5);
  EXPECT_NE(narrow, wide);
}

TEST_F(PgClusterTest, FingerprintsHandleQuotedIdentifiers) {
  ASSERT_OK(cluster_.Exec("postgres",
                          "CREATE SCHEMA \"Other Schema\";"
                          "CREATE TABLE \"Other Schema\".\"Mixed \"\"Case\"\" Table\" "
                          "  (\"select\" text NOT NULL, \"Id\" int);"
                          "INSERT INTO \"Other Schema\".\"Mixed \"\"Case\"\" Table\" "
                          "  VALUES ('from', 1), ('where', 2)"));
  const Fingerprint fp =
      cluster_.TableFingerprint("postgres", "Other Schema", "Mixed \"Case\" Table");
  EXPECT_EQ(fp.columns, "\"select\" text NOT NULL, \"Id\" integer");
  EXPECT_EQ(fp.row_count, 2);

  const DatabaseFingerprints all = cluster_.DatabaseFingerprint("postgres");
  ASSERT_EQ(all.count("Other Schema.Mixed \"Case\" Table"), 1u) << ::testing::PrintToString(all);
  EXPECT_EQ(all.at("Other Schema.Mixed \"Case\" Table"), fp);
}

TEST_F(PgClusterTest, DatabaseFingerprintSkipsPgtrailSchemaAndCatalogs) {
  ASSERT_OK(cluster_.Exec("postgres",
                          "CREATE SCHEMA pgtrail; CREATE TABLE pgtrail.meta (k text);"
                          "CREATE TABLE kept (k text); CREATE VIEW v AS SELECT 1 AS one"));
  const DatabaseFingerprints all = cluster_.DatabaseFingerprint("postgres");
  EXPECT_EQ(all.size(), 1u) << ::testing::PrintToString(all);
  EXPECT_EQ(all.count("public.kept"), 1u) << ::testing::PrintToString(all);
}

TEST_F(PgClusterTest, FingerprintsEqualNamesTheTableThatDiffers) {
  ASSERT_OK(cluster_.CreateDatabase("a"));
  ASSERT_OK(cluster_.CreateDatabase("b"));
  ASSERT_OK(cluster_.Exec("a", "CREATE TABLE same (k int); CREATE TABLE differs (k int)"));
  ASSERT_OK(cluster_.Exec("b",
                          "CREATE TABLE same (k int); CREATE TABLE differs (k int);"
                          "INSERT INTO differs VALUES (1)"));
  ::testing::AssertionResult equal =
      FingerprintsEqual(cluster_.DatabaseFingerprint("a"), cluster_.DatabaseFingerprint("b"));
  ASSERT_FALSE(equal);
  EXPECT_NE(std::string(equal.message()).find("public.differs"), std::string::npos);
  EXPECT_EQ(std::string(equal.message()).find("public.same"), std::string::npos);
}

TEST_F(PgClusterTest, WaitForSlotCatchUpFollowsConfirmedFlushLsn) {
  ASSERT_OK(cluster_.Exec("postgres",
                          "SELECT pg_create_logical_replication_slot('fixture_slot', 'pgoutput')"));
  const std::string created_at = cluster_.CurrentWalLsn();
  ASSERT_FALSE(created_at.empty());
  ASSERT_OK(cluster_.Exec("postgres", "CREATE TABLE t (k int); INSERT INTO t VALUES (1)"));
  const std::string target = cluster_.CurrentWalLsn();

  // Nobody consumes the slot: it stays behind.
  EXPECT_FALSE(cluster_.WaitForSlotCatchUp("fixture_slot", target, milliseconds(200)));
  EXPECT_FALSE(cluster_.WaitForSlotCatchUp("no_such_slot", target, milliseconds(100)));

  ASSERT_OK(cluster_.Exec("postgres",
                          "SELECT pg_replication_slot_advance('fixture_slot', '" + target + "')"));
  EXPECT_TRUE(cluster_.WaitForSlotCatchUp("fixture_slot", target, seconds(10)));
}

TEST_F(PgClusterTest, RestartKeepsDataAndPort) {
  ASSERT_OK(cluster_.Exec("postgres", "CREATE TABLE t (k int); INSERT INTO t VALUES (7)"));
  const int port = cluster_.port();
  ASSERT_OK(cluster_.Restart());
  EXPECT_EQ(cluster_.port(), port);
  EXPECT_EQ(cluster_.Scalar("postgres", "SELECT k FROM t"), "7");
}

TEST(PgClusterRunCommandTest, ReturnsExitCodeAndBothOutputs) {
  CommandResult result = RunCommand({"/bin/sh", "-c", "echo out; echo err >&2; exit 3"});
  EXPECT_EQ(result.exit_code, 3) << result;
  EXPECT_EQ(result.stdout_text, "out\n");
  EXPECT_EQ(result.stderr_text, "err\n");
  EXPECT_FALSE(result.timed_out);
}

TEST(PgClusterRunCommandTest, FeedsLargeStdinWithoutDeadlock) {
  const std::string input(4 << 20, 'x');
  CommandResult result = RunCommand({"cat"}, input);
  EXPECT_EQ(result.exit_code, 0) << result.stderr_text;
  EXPECT_EQ(result.stdout_text.size(), input.size());
  EXPECT_TRUE(result.stdout_text == input);
}

TEST(PgClusterRunCommandTest, SurvivesChildThatIgnoresStdin) {
  CommandResult result = RunCommand({"/bin/sh", "-c", "exit 0"}, std::string(1 << 20, 'x'));
  EXPECT_EQ(result.exit_code, 0) << result;
}

TEST(PgClusterRunCommandTest, ReportsSignalAs128PlusSignal) {
  CommandResult result = RunCommand({"/bin/sh", "-c", "kill -TERM $$"});
  EXPECT_EQ(result.exit_code, 128 + SIGTERM) << result;
}

TEST(PgClusterRunCommandTest, KillsAfterTimeout) {
  CommandResult result = RunCommand({"/bin/sh", "-c", "sleep 30"}, "", milliseconds(200));
  EXPECT_TRUE(result.timed_out);
  EXPECT_EQ(result.exit_code, 128 + SIGKILL) << result;
}

TEST(PgClusterRunCommandTest, MissingProgramExits127) {
  CommandResult result = RunCommand({"/nonexistent/pgtrail-binary"});
  EXPECT_EQ(result.exit_code, 127);
  EXPECT_NE(result.stderr_text.find("/nonexistent/pgtrail-binary"), std::string::npos);
}

TEST(PgClusterAgentProcessTest, KillAndWaitExitReportTheSignal) {
  AgentProcess process("/bin/sh");
  ASSERT_OK(process.Start({"-c", "echo started; exec sleep 30"}));
  EXPECT_TRUE(process.IsRunning());
  EXPECT_EQ(process.WaitExit(milliseconds(100)), std::nullopt);
  ASSERT_OK(process.Kill(SIGTERM));
  EXPECT_EQ(process.WaitExit(seconds(10)), 128 + SIGTERM);
  EXPECT_FALSE(process.IsRunning());
  EXPECT_NE(process.LogContents().find("started\n"), std::string::npos) << process.LogContents();
  EXPECT_EQ(process.Kill(SIGTERM).code(), Status::kNotFound);
}

TEST(PgClusterAgentProcessTest, RestartAppendsToTheSameLog) {
  AgentProcess process("/bin/sh");
  ASSERT_OK(process.Start({"-c", "echo first >&2; exit 4"}));
  EXPECT_EQ(process.WaitExit(seconds(10)), 4);
  ASSERT_OK(process.Start({"-c", "echo second; exit 0"}));
  EXPECT_EQ(process.WaitExit(seconds(10)), 0);
  const std::string log = process.LogContents();
  EXPECT_LT(log.find("first"), log.find("second")) << log;
}

}  // namespace
}  // namespace pgtrail::testing
