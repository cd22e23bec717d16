#include "tools/sql_statements.h"

#include <gtest/gtest.h>

namespace pgtrail {
namespace {

using Statements = std::vector<std::string>;

TEST(SqlStatements, SplitsAtTopLevelSemicolons) {
  EXPECT_EQ(SplitSqlStatements("alter table t add c int; update t set c = 1;"),
            (Statements{"alter table t add c int", "update t set c = 1"}));
}

TEST(SqlStatements, LeavesOutEmptyStatementsAndTrims) {
  EXPECT_EQ(SplitSqlStatements(" ;; create table a (x int) ;\n\n "),
            (Statements{"create table a (x int)"}));
  EXPECT_TRUE(SplitSqlStatements("").empty());
}

TEST(SqlStatements, SemicolonsInLiteralsDoNotSplit) {
  EXPECT_EQ(SplitSqlStatements("insert into t values ('a;b', 'it''s;'); drop table t"),
            (Statements{"insert into t values ('a;b', 'it''s;')", "drop table t"}));
}

TEST(SqlStatements, EscapeStringLiteralsHonourBackslashes) {
  EXPECT_EQ(SplitSqlStatements("select E'a\\';b'; select 1"),
            (Statements{"select E'a\\';b'", "select 1"}));
  // A plain literal takes the backslash as a character.
  EXPECT_EQ(SplitSqlStatements("select 'a\\'; select 1"),
            (Statements{"select 'a\\'", "select 1"}));
}

TEST(SqlStatements, SemicolonsInQuotedIdentifiersDoNotSplit) {
  EXPECT_EQ(SplitSqlStatements("create table \"a;\"\"b\" (x int); select 1"),
            (Statements{"create table \"a;\"\"b\" (x int)", "select 1"}));
}

TEST(SqlStatements, DollarQuotedBodiesDoNotSplit) {
  const std::string fn =
      "create function f() returns int language sql as $body$ select 1; select 2 $body$";
  EXPECT_EQ(SplitSqlStatements(fn + "; drop function f"), (Statements{fn, "drop function f"}));
  EXPECT_EQ(SplitSqlStatements("do $$ begin perform 1; end $$; select 3"),
            (Statements{"do $$ begin perform 1; end $$", "select 3"}));
}

TEST(SqlStatements, PositionalParametersAreNotDollarQuotes) {
  EXPECT_EQ(SplitSqlStatements("select $1; select $2"), (Statements{"select $1", "select $2"}));
}

TEST(SqlStatements, CommentsDoNotSplit) {
  EXPECT_EQ(SplitSqlStatements("alter table t add c int -- why; not\n; select 1"),
            (Statements{"alter table t add c int -- why; not", "select 1"}));
  EXPECT_EQ(SplitSqlStatements("/* a; /* nested; */ still; */ drop table t; select 1"),
            (Statements{"/* a; /* nested; */ still; */ drop table t", "select 1"}));
}

TEST(SqlStatements, ClassifiesSchemaStatementsByFirstKeyword) {
  EXPECT_TRUE(IsSchemaStatement("ALTER TABLE t ADD c int"));
  EXPECT_TRUE(IsSchemaStatement("  -- note\n  create index on t (c)"));
  EXPECT_TRUE(IsSchemaStatement("/* x */ Drop table t"));
  EXPECT_TRUE(IsSchemaStatement("comment on table t is 'x'"));
  EXPECT_FALSE(IsSchemaStatement("update t set c = 1"));
  EXPECT_FALSE(IsSchemaStatement("insert into created_at values (1)"));
  EXPECT_FALSE(IsSchemaStatement("select create_table()"));
  EXPECT_FALSE(IsSchemaStatement("do $$ begin end $$"));
  EXPECT_FALSE(IsSchemaStatement("createx table t ()"));
}

}  // namespace
}  // namespace pgtrail
