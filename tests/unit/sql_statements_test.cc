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
  // pg_dump's entries end with the next entry's comment header.
  EXPECT_EQ(SplitSqlStatements("-- Name: i\nCREATE INDEX i ON t (c);\n\n\n--\n/* x */"),
            (Statements{"-- Name: i\nCREATE INDEX i ON t (c)"}));
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

TEST(SqlStatements, TokenizesWordsIdentifiersLiteralsAndPunctuation) {
  const std::vector<SqlToken> t =
      TokenizeSql("ALTER TABLE \"My \"\"T\".x$1 /* c */ ADD e'a\\'b' $q$ ; $q$ $2 3.5;");
  ASSERT_EQ(t.size(), 11u);
  EXPECT_EQ(t[0].kind, SqlToken::kWord);
  EXPECT_EQ(IdentifierName(t[0]), "alter");
  EXPECT_EQ(t[2].kind, SqlToken::kQuotedIdent);
  EXPECT_EQ(IdentifierName(t[2]), "My \"T");
  EXPECT_EQ(t[3].text, ".");
  EXPECT_EQ(IdentifierName(t[4]), "x$1");
  EXPECT_EQ(IdentifierName(t[5]), "add");
  EXPECT_EQ(t[6].kind, SqlToken::kLiteral);
  EXPECT_EQ(t[6].text, "e'a\\'b'");
  EXPECT_EQ(t[7].kind, SqlToken::kLiteral);
  EXPECT_EQ(t[7].text, "$q$ ; $q$");
  EXPECT_EQ(t[8].kind, SqlToken::kOther);
  EXPECT_EQ(t[8].text, "$2");
  EXPECT_EQ(t[9].text, "3.5");
  EXPECT_EQ(t[10].kind, SqlToken::kPunct);
  EXPECT_EQ(t[10].offset, 61u);
}

TEST(SqlStatements, RecognisesStatementsThatLeaveATablesRowsAlone) {
  const std::string t = "accounts";
  EXPECT_TRUE(LeavesRowsAlone("alter table pgbench_accounts add primary key (aid)", t));
  EXPECT_TRUE(LeavesRowsAlone("ALTER TABLE IF EXISTS ONLY public.\"accounts\" ADD CONSTRAINT "
                              "a_pk PRIMARY KEY (id) INCLUDE (v) WITH (fillfactor = 90)", t));
  EXPECT_TRUE(LeavesRowsAlone("alter table accounts add unique nulls not distinct (a, b)", t));
  EXPECT_TRUE(LeavesRowsAlone("create unique index concurrently if not exists i on accounts (lower(v)) "
                              "where v > 0", t));
  EXPECT_TRUE(LeavesRowsAlone("CREATE INDEX ON accounts USING gin (doc)", t));
  EXPECT_TRUE(LeavesRowsAlone("create table other (id bigint generated always as identity primary key,"
                              " a int references public.accounts (id)) with (fillfactor = 70)", t));
  EXPECT_TRUE(LeavesRowsAlone("create temp table if not exists x (a int)", t));
  EXPECT_TRUE(LeavesRowsAlone("create sequence s owned by accounts.id", t));
  EXPECT_TRUE(LeavesRowsAlone("create or replace view v as select * from accounts", t));
  EXPECT_TRUE(LeavesRowsAlone("comment on table accounts is 'x'", t));

  // Rewrites rows (a USING clause), adds or drops columns, or more subcommands.
  EXPECT_FALSE(LeavesRowsAlone("alter table accounts alter column v type text using v || '!'", t));
  EXPECT_FALSE(LeavesRowsAlone("alter table accounts add column c int default 1", t));
  EXPECT_FALSE(LeavesRowsAlone("alter table accounts add primary key (id), add column c int", t));
  EXPECT_FALSE(LeavesRowsAlone("alter table accounts add constraint c check (v > 0) not valid", t));
  EXPECT_FALSE(LeavesRowsAlone("alter table other add foreign key (a) references accounts", t));
  EXPECT_FALSE(LeavesRowsAlone("alter table accounts drop constraint accounts_pkey", t));
  // Fills a table from rows, or checks a default partition's rows.
  EXPECT_FALSE(LeavesRowsAlone("create table copy as select * from accounts", t));
  EXPECT_FALSE(LeavesRowsAlone("create table copy (a, b) as select 1, 2", t));
  EXPECT_FALSE(LeavesRowsAlone("create table p1 partition of accounts for values in (1)", t));
  EXPECT_FALSE(LeavesRowsAlone("create table child (c int) inherits (\"accounts\")", t));
  EXPECT_FALSE(LeavesRowsAlone("create materialized view m as select * from accounts", t));
  EXPECT_FALSE(LeavesRowsAlone("drop index i", t));
  EXPECT_FALSE(LeavesRowsAlone("do $$ begin alter table accounts add primary key (id); end $$", t));
  EXPECT_FALSE(LeavesRowsAlone("create function f() returns int language sql as 'select 1'", t));
  EXPECT_FALSE(LeavesRowsAlone("create unique table x (a int)", t));
  EXPECT_FALSE(LeavesRowsAlone("", t));
}

TEST(SqlStatements, FindsTheTableAnIndexBuildIsAbout) {
  EXPECT_EQ(IndexBuildTable("alter table pgbench_accounts add primary key (aid)"), "pgbench_accounts");
  EXPECT_EQ(IndexBuildTable("-- Name: x\nALTER TABLE ONLY public.\"T\"\n ADD CONSTRAINT c UNIQUE (a)"), "T");
  EXPECT_EQ(IndexBuildTable("CREATE UNIQUE INDEX i ON ONLY s.parent USING btree (a) WHERE (b > 0)"),
            "parent");
  EXPECT_EQ(IndexBuildTable("create index on t (\"on\")"), "t");
  // An existing index made the key, another subcommand, anything else.
  EXPECT_EQ(IndexBuildTable("ALTER TABLE t ADD CONSTRAINT t_pk PRIMARY KEY USING INDEX i"), "");
  EXPECT_EQ(IndexBuildTable("ALTER TABLE t ADD PRIMARY KEY (a), ADD COLUMN b int"), "");
  EXPECT_EQ(IndexBuildTable("ALTER TABLE t ADD CONSTRAINT c CHECK (a > 0)"), "");
  EXPECT_EQ(IndexBuildTable("CREATE TABLE t (a int PRIMARY KEY)"), "");
  EXPECT_EQ(IndexBuildTable("DROP INDEX i"), "");
}

TEST(SqlStatements, RecognisesANewEmptyTableAndNames) {
  EXPECT_TRUE(IsCreateTable("CREATE TABLE bench_bulk (id bigint PRIMARY KEY, note text NOT NULL)"));
  EXPECT_TRUE(IsCreateTable("create global temporary table if not exists s.t (a int) with (fillfactor=70)"));
  EXPECT_TRUE(IsCreateTable("CREATE TABLE child (a int REFERENCES parent)"));
  EXPECT_FALSE(IsCreateTable("CREATE TABLE t AS SELECT 1"));
  EXPECT_FALSE(IsCreateTable("CREATE TABLE t (a) AS SELECT 1"));
  EXPECT_FALSE(IsCreateTable("CREATE TABLE p1 PARTITION OF p FOR VALUES IN (1)"));
  EXPECT_FALSE(IsCreateTable("CREATE INDEX ON t (a)"));
  EXPECT_FALSE(IsCreateTable("CREATE UNIQUE TABLE t (a int)"));
  EXPECT_TRUE(MentionsName("CREATE TABLE child (a int REFERENCES public.\"Parent\")", "Parent"));
  EXPECT_TRUE(MentionsName("create table c (a int references parent)", "parent"));
  EXPECT_FALSE(MentionsName("create table c (a text default 'parent')", "parent"));
  EXPECT_FALSE(MentionsName("create table c (a int references \"Parent\")", "parent"));
}

}  // namespace
}  // namespace pgtrail
