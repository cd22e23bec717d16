// ParseSchemaChange: which 'pgtrail.ddl' messages a restore replays, and
// what it runs for them. The inputs are written as the capture trigger
// (deploy/sql/ddl-capture.sql) emits them: json_build_object(...)::text.
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "tools/restore.h"
#include "tools/sql_statements.h"

namespace pgtrail {
namespace {

using Names = std::vector<std::string>;

// A message as the trigger builds it; `query` and `search_path` are put in
// as JSON strings (escaped here), `schemas` and `objects` as raw JSON.
std::string Message(
    const std::string& event, const std::string& tag, const std::string& query,
    const std::string& schemas = "[\"public\"]",
    const std::string& objects = "[{\"type\" : \"table\", \"identity\" : \"public.t\"}]",
    const std::string& search_path = "\\\"$user\\\", public") {
  std::string escaped;
  for (char c : query) {
    if (c == '"' || c == '\\') escaped += '\\';
    if (c == '\n') {
      escaped += "\\n";
      continue;
    }
    escaped += c;
  }
  return "{\"event\" : \"" + event + "\", \"tag\" : \"" + tag + "\", \"query\" : \"" + escaped +
         "\", \"search_path\" : \"" + search_path + "\", \"schemas\" : " + schemas +
         ", \"objects\" : " + objects + "}";
}

// The statements replay_sql runs (its exact separators are not the point).
std::vector<std::string> ReplayedStatements(const SchemaChange& change) {
  return SplitSqlStatements(change.replay_sql);
}

TEST(ParseSchemaChangeTest, AcceptsDdlCommandEndWithTagQueryAndSearchPath) {
  SchemaChange change;
  ASSERT_TRUE(ParseSchemaChange(
      Message("ddl_command_end", "ALTER TABLE", "ALTER TABLE t ADD COLUMN c int DEFAULT 7",
              "[\"app\"]", "[{\"type\" : \"table\", \"identity\" : \"app.t\"}]", "app, public"),
      &change));
  EXPECT_EQ(change.tag, "ALTER TABLE");
  EXPECT_EQ(change.query, "ALTER TABLE t ADD COLUMN c int DEFAULT 7");
  EXPECT_EQ(change.search_path, "app, public");
  EXPECT_EQ(ReplayedStatements(change), Names{"ALTER TABLE t ADD COLUMN c int DEFAULT 7"});
  EXPECT_TRUE(change.filled_tables.empty());
}

TEST(ParseSchemaChangeTest, KeepsTheQuotedUserEntryOfTheSearchPath) {
  SchemaChange change;
  ASSERT_TRUE(ParseSchemaChange(
      Message("ddl_command_end", "CREATE TABLE", "CREATE TABLE t (a int)"), &change));
  EXPECT_EQ(change.search_path, "\"$user\", public");
}

TEST(ParseSchemaChangeTest, RejectsTheSqlDropNoticeOfTheSameStatement) {
  SchemaChange change;
  EXPECT_FALSE(ParseSchemaChange(Message("sql_drop", "DROP TABLE", "DROP TABLE t", "[\"public\"]",
                                         "[{\"type\" : \"table\", \"identity\" : \"public.t\"}, "
                                         "{\"type\" : \"type\", \"identity\" : \"public.t\"}]"),
                                 &change));
  EXPECT_FALSE(ParseSchemaChange(
      Message("sql_drop", "ALTER TABLE", "ALTER TABLE t DROP COLUMN c", "[\"public\"]",
              "[{\"type\" : \"table column\", \"identity\" : \"public.t.c\"}]"),
      &change));
}

TEST(ParseSchemaChangeTest, AcceptsTheDdlCommandEndOfADrop) {
  // pg_event_trigger_ddl_commands() is empty for a DROP: no schemas, no objects.
  SchemaChange change;
  ASSERT_TRUE(ParseSchemaChange(
      Message("ddl_command_end", "DROP TABLE", "DROP TABLE t", "[]", "[]"), &change));
  EXPECT_EQ(change.tag, "DROP TABLE");
  EXPECT_EQ(ReplayedStatements(change), Names{"DROP TABLE t"});
}

TEST(ParseSchemaChangeTest, RejectsPrivilegeAndPublicationTags) {
  const std::vector<std::pair<std::string, std::string>> skipped = {
      {"GRANT", "GRANT SELECT ON t TO reader"},
      {"REVOKE", "REVOKE SELECT ON t FROM reader"},
      {"ALTER DEFAULT PRIVILEGES", "ALTER DEFAULT PRIVILEGES GRANT SELECT ON TABLES TO reader"},
      {"CREATE PUBLICATION", "CREATE PUBLICATION p FOR TABLE t"},
      {"ALTER PUBLICATION", "ALTER PUBLICATION p ADD TABLE u"},
      {"DROP PUBLICATION", "DROP PUBLICATION p"},
      {"CREATE SUBSCRIPTION", "CREATE SUBSCRIPTION s CONNECTION '' PUBLICATION p"},
  };
  for (const auto& [tag, query] : skipped) {
    SCOPED_TRACE(tag);
    SchemaChange change;
    EXPECT_FALSE(ParseSchemaChange(Message("ddl_command_end", tag, query), &change));
  }
}

TEST(ParseSchemaChangeTest, RejectsChangesOnlyToPgtrailsOwnSchema) {
  SchemaChange change;
  EXPECT_FALSE(ParseSchemaChange(
      Message("ddl_command_end", "CREATE FUNCTION",
              "CREATE OR REPLACE FUNCTION pgtrail.capture_ddl() RETURNS event_trigger ...",
              "[\"pgtrail\"]",
              "[{\"type\" : \"function\", \"identity\" : \"pgtrail.capture_ddl()\"}]"),
      &change));
}

TEST(ParseSchemaChangeTest, AcceptsAChangeTouchingPgtrailAndAnotherSchema) {
  SchemaChange change;
  ASSERT_TRUE(ParseSchemaChange(
      Message("ddl_command_end", "CREATE TABLE", "CREATE TABLE public.t (a int)",
              "[\"pgtrail\", \"public\"]", "[{\"type\" : \"table\", \"identity\" : \"public.t\"}]"),
      &change));
  EXPECT_EQ(change.tag, "CREATE TABLE");
  EXPECT_EQ(ReplayedStatements(change), Names{"CREATE TABLE public.t (a int)"});
}

TEST(ParseSchemaChangeTest, RejectsMalformedJsonWithoutThrowing) {
  std::vector<std::string> malformed = {
      "",
      "{",
      "not json",
      "null",
      "[]",
      "\"ddl_command_end\"",
      "{\"event\" : \"ddl_command_end\", \"tag\" : \"ALTER TABLE\"",                 // truncated
      "{\"event\" : \"ddl_command_end\", \"tag\" : \"ALTER TABLE\"}",                // no query
      "{\"event\" : \"ddl_command_end\", \"query\" : \"ALTER TABLE t ADD c int\"}",  // no tag
      "{\"event\" : 1, \"tag\" : \"ALTER TABLE\", \"query\" : \"ALTER TABLE t ADD c int\"}",
      "{\"event\" : \"ddl_command_end\", \"tag\" : [\"ALTER TABLE\"], \"query\" : \"x\"}",
      "{\"event\" : \"ddl_command_end\", \"tag\" : \"ALTER TABLE\", \"query\" : null}",
  };
  // A raw NUL inside a string is not JSON.
  malformed.push_back(std::string("{\"event\" : \"ddl_command_end\", \"tag\" : \"A") + '\0' +
                      "B\", \"query\" : \"x\"}");
  for (const std::string& content : malformed) {
    SCOPED_TRACE(content);
    SchemaChange change;
    bool parsed = true;
    EXPECT_NO_THROW(parsed = ParseSchemaChange(content, &change));
    EXPECT_FALSE(parsed);
  }
}

TEST(ParseSchemaChangeTest, ToleratesWrongTypesInOptionalFields) {
  // Anyone may emit a 'pgtrail.ddl' message; odd optional fields must not
  // throw out of the restore.
  const std::vector<std::string> odd = {
      "{\"event\" : \"ddl_command_end\", \"tag\" : \"CREATE TABLE\", \"query\" : \"CREATE TABLE t "
      "(a int)\", "
      "\"search_path\" : 5, \"schemas\" : \"public\", \"objects\" : {}}",
      "{\"event\" : \"ddl_command_end\", \"tag\" : \"CREATE TABLE AS\", \"query\" : \"CREATE TABLE "
      "t AS SELECT 1\", "
      "\"schemas\" : [\"public\"], \"objects\" : [1, \"x\", null, {\"type\" : 7, \"identity\" : "
      "\"public.t\"}]}",
  };
  for (const std::string& content : odd) {
    SCOPED_TRACE(content);
    SchemaChange change;
    EXPECT_NO_THROW((void)ParseSchemaChange(content, &change));
    EXPECT_TRUE(change.filled_tables.empty());
  }
}

TEST(ParseSchemaChangeTest, ReplaysOnlyTheSchemaStatementsOfAStatementString) {
  SchemaChange change;
  ASSERT_TRUE(ParseSchemaChange(
      Message("ddl_command_end", "ALTER TABLE", "ALTER TABLE t ADD c int; UPDATE t SET c = 1"),
      &change));
  EXPECT_EQ(change.query, "ALTER TABLE t ADD c int; UPDATE t SET c = 1");
  EXPECT_EQ(ReplayedStatements(change), Names{"ALTER TABLE t ADD c int"});
}

TEST(ParseSchemaChangeTest, ReplaysOnlyTheDdlOfATransactionSentAsOneString) {
  SchemaChange change;
  ASSERT_TRUE(ParseSchemaChange(
      Message("ddl_command_end", "ALTER TABLE",
              "BEGIN;\nINSERT INTO t VALUES (1, 'a;b');\nALTER TABLE t ADD COLUMN c int;\n"
              "UPDATE t SET c = 1;\nCREATE INDEX t_c ON t (c);\nCOMMIT;\n"),
      &change));
  EXPECT_EQ(ReplayedStatements(change),
            (Names{"ALTER TABLE t ADD COLUMN c int", "CREATE INDEX t_c ON t (c)"}));
}

TEST(ParseSchemaChangeTest, ReplaysAStringWithoutSchemaStatementsWhole) {
  // DDL run by a function (or a DO block): running the call again redoes it.
  SchemaChange change;
  ASSERT_TRUE(ParseSchemaChange(Message("ddl_command_end", "CREATE TABLE", "SELECT make_tables()"),
                                &change));
  EXPECT_EQ(change.replay_sql, "SELECT make_tables()");

  SchemaChange block;
  const std::string body = "DO $$ BEGIN EXECUTE 'CREATE TABLE x (a int)'; END $$";
  ASSERT_TRUE(ParseSchemaChange(Message("ddl_command_end", "CREATE TABLE", body), &block));
  EXPECT_EQ(block.replay_sql, body);
}

TEST(ParseSchemaChangeTest, CreateTableAsNamesTheTablesItFilled) {
  SchemaChange change;
  ASSERT_TRUE(ParseSchemaChange(
      Message("ddl_command_end", "CREATE TABLE AS",
              "CREATE TABLE totals AS SELECT item_id, sum(amount) FROM orders GROUP BY 1",
              "[\"public\"]",
              "[{\"type\" : \"table\", \"identity\" : \"public.totals\"}, "
              "{\"type\" : \"index\", \"identity\" : \"public.totals_idx\"}, "
              "{\"type\" : \"type\", \"identity\" : \"public.totals\"}]"),
      &change));
  EXPECT_EQ(change.tag, "CREATE TABLE AS");
  EXPECT_EQ(change.filled_tables, Names{"public.totals"});
}

TEST(ParseSchemaChangeTest, SelectIntoNamesTheTableItFilled) {
  SchemaChange change;
  ASSERT_TRUE(ParseSchemaChange(
      Message("ddl_command_end", "SELECT INTO", "SELECT * INTO \"Copy\" FROM orders",
              "[\"public\"]", "[{\"type\" : \"table\", \"identity\" : \"public.\\\"Copy\\\"\"}]"),
      &change));
  EXPECT_EQ(change.filled_tables, Names{"public.\"Copy\""});
}

TEST(ParseSchemaChangeTest, OtherTagsFillNoTables) {
  SchemaChange change;
  ASSERT_TRUE(ParseSchemaChange(
      Message("ddl_command_end", "CREATE TABLE", "CREATE TABLE t (a int)", "[\"public\"]",
              "[{\"type\" : \"table\", \"identity\" : \"public.t\"}]"),
      &change));
  EXPECT_TRUE(change.filled_tables.empty());
}

}  // namespace
}  // namespace pgtrail
