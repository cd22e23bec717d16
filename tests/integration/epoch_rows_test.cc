// Rows applied after a schema change (epochs), end to end: a real
// PostgreSQL 15 and pgtrail-agent record a small source; pitr-restore must
// rebuild exactly the rows of every table at every recorded instant. Each
// test puts the hard cases of one kind inside epochs: key changes, deletes
// and reinserts, unchanged TOAST and NULL, duplicate rows, TRUNCATE, a
// table's layout changing without a captured schema change, --tables.
#include <gtest/gtest.h>


#include <chrono>
#include <csignal>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "tests/integration/e2e_helpers.h"
#include "tests/integration/pg_cluster.h"

namespace pgtrail::testing {
namespace {

// Runs the steps in order, recording the instant after each.
std::vector<Instant> RecordEveryInstant(
    RecordedSource* source, const std::vector<std::pair<std::string, std::string>>& steps) {
  std::vector<Instant> instants;
  for (const auto& [label, sql] : steps) {
    auto instant = source->Step(label, sql);
    EXPECT_OK(instant);
    if (!instant.ok()) return {};
    instants.push_back(std::move(instant).value());
  }
  EXPECT_OK(source->CommitAfterLastInstant("SELECT pg_logical_emit_message(true, 'tail', 'x')"));
  return instants;
}

// Restores to every instant into its own database (`prefix` + index) and
// compares every table's rows. pitr-restore's output of each restore goes
// to *outputs, if given.
void RestoreEveryInstant(RecordedSource* source, const std::string& prefix,
                         const std::vector<Instant>& instants,
                         std::vector<std::string>* outputs = nullptr,
                         const std::vector<std::string>& extra_args = {}) {
  for (size_t i = 0; i < instants.size(); i++) {
    SCOPED_TRACE("restore to \"" + instants[i].label + "\"");
    const std::string db = prefix + std::to_string(i);
    CommandResult result = source->Restore(instants[i].time, db, extra_args);
    ASSERT_EQ(result.exit_code, 0) << result;
    if (outputs != nullptr) outputs->push_back(result.stdout_text);
    EXPECT_TRUE(FingerprintsEqual(instants[i].fingerprints,
                                  source->cluster().DatabaseFingerprint(db)))
        << "pitr-restore said:\n"
        << result.stdout_text;
  }
}

void RecordAndRestoreEveryInstant(RecordedSource* source, const std::string& prefix,
                                  const std::vector<std::pair<std::string, std::string>>& steps,
                                  std::vector<std::string>* outputs = nullptr) {
  const std::vector<Instant> instants = RecordEveryInstant(source, steps);
  ASSERT_EQ(instants.size(), steps.size());
  RestoreEveryInstant(source, prefix, instants, outputs);
}

// A text value far over the TOAST threshold that does not compress away.
constexpr char kBigValue[] =
    "(SELECT string_agg(md5(g::text), '') FROM generate_series(1, 200) g)";

TEST(EpochRowsTest, AppliesKeyChangesDeletesReinsertsAndUnchangedToastAfterASchemaChange) {
  RecordedSource source;
  ASSERT_OK(source.Start(std::string(
      "CREATE TABLE acct (id int PRIMARY KEY, v text, big text);"
      "INSERT INTO acct SELECT g, 'v' || g, NULL FROM generate_series(1, 8) g;"
      "UPDATE acct SET big = ") + kBigValue + " WHERE id IN (1, 2);"));
  ASSERT_OK(source.StartAgent());
  RecordAndRestoreEveryInstant(
      &source, "keyed",
      {{"snapshot only", ""},
       // A non-empty table: the epoch goes in through scratch tables.
       {"add column", "ALTER TABLE acct ADD COLUMN note text"},
       {"key changes, deletes, reinserts",
        "UPDATE acct SET id = 100 WHERE id = 1;"          // big: unchanged TOAST
        "UPDATE acct SET v = 'two', note = 'n' WHERE id = 2;"
        "DELETE FROM acct WHERE id = 3;"
        "INSERT INTO acct VALUES (3, 'three again', NULL, NULL);"
        "UPDATE acct SET v = NULL, note = NULL WHERE id = 4;"
        "DELETE FROM acct WHERE id = 5;"
        "UPDATE acct SET id = 5 WHERE id = 6;"            // onto a key deleted before
        "DELETE FROM acct WHERE id = 7; INSERT INTO acct VALUES (7, 'v7', NULL, 'back');"
        "DELETE FROM acct WHERE id = 8;"},
       {"more in the same epoch",
        "UPDATE acct SET id = 200 WHERE id = 100;"
        "UPDATE acct SET id = 1 WHERE id = 200;"          // back to its first key
        "INSERT INTO acct VALUES (8, NULL, NULL, NULL);"},
       // An empty table: the epoch goes straight in with COPY.
       {"create table", "CREATE TABLE fresh (k text PRIMARY KEY, n int, big text)"},
       {"rows of the new table",
        std::string("INSERT INTO fresh VALUES ('a', 1, NULL), ('b', 2, ") + kBigValue + "), ('', NULL, '');"
        "UPDATE fresh SET k = 'c' WHERE k = 'a';"
        "UPDATE fresh SET n = 20 WHERE k = 'b';"          // big: unchanged TOAST
        "DELETE FROM fresh WHERE k = 'b'; INSERT INTO fresh VALUES ('b', 3, NULL);"
        "UPDATE acct SET note = 'late' WHERE id = 1;"},
       {"drop the new table", "DROP TABLE fresh"},
       {"after the drop", "UPDATE acct SET v = 'after' WHERE id = 2"}});
}

// A table created after the snapshot gets its rows with its indexes dropped
// and built again after the COPY (LoadIntoEmpty): every index and
// constraint must come back exactly, and a table whose indexes cannot be
// rebuilt exactly from SQL (a comment on one, a foreign key onto it) keeps
// them through the load.
TEST(EpochRowsTest, RebuildsTheIndexesOfATableLoadedAfterASchemaChangeExactly) {
  RecordedSource source;
  ASSERT_OK(source.Start("CREATE TABLE seed (id int PRIMARY KEY)"));
  ASSERT_OK(source.StartAgent());
  const std::vector<std::pair<std::string, std::string>> steps = {
      {"create tables",
       "CREATE TABLE t1 (id bigint PRIMARY KEY, code text UNIQUE DEFERRABLE INITIALLY DEFERRED,"
       "  v int CHECK (v >= 0), w int, EXCLUDE USING btree (w WITH =) WHERE (w > 100));"
       "CREATE INDEX t1_expr ON t1 (lower(code)) WHERE v > 0;"
       "CREATE INDEX \"T1 v\" ON t1 (v DESC NULLS LAST) WITH (fillfactor = 70);"
       "CREATE TABLE t2 (id int PRIMARY KEY, note text);"
       "COMMENT ON INDEX t2_pkey IS 'kept';"
       "CREATE TABLE t3 (id int PRIMARY KEY);"
       "CREATE TABLE t4 (ref int REFERENCES t3);"},
      {"rows",
       "INSERT INTO t1 SELECT g, 'c' || g, g % 7, g FROM generate_series(1, 500) g;"
       "INSERT INTO t2 SELECT g, 'n' || g FROM generate_series(1, 50) g;"
       "INSERT INTO t3 SELECT g FROM generate_series(1, 50) g;"
       "INSERT INTO t4 SELECT g FROM generate_series(1, 50, 2) g;"}};
  std::vector<Instant> instants;
  for (const auto& [label, sql] : steps) {
    auto instant = source.Step(label, sql);
    ASSERT_OK(instant);
    instants.push_back(std::move(instant).value());
  }
  ASSERT_OK(source.CommitAfterLastInstant("SELECT pg_logical_emit_message(true, 'tail', 'x')"));
  CommandResult result = source.Restore(instants.back().time, "idx");
  ASSERT_EQ(result.exit_code, 0) << result;
  EXPECT_TRUE(FingerprintsEqual(instants.back().fingerprints,
                                source.cluster().DatabaseFingerprint("idx")));
  const std::string schema_sql =
      "SELECT c.relname || ' ' || pg_catalog.pg_get_indexdef(i.indexrelid) || ' ' ||"
      " coalesce(pg_catalog.obj_description(i.indexrelid, 'pg_class'), '-') || ' ' ||"
      " coalesce((SELECT k.conname || ' ' || pg_catalog.pg_get_constraintdef(k.oid)"
      "           FROM pg_catalog.pg_constraint k WHERE k.conindid = i.indexrelid"
      "           AND k.conrelid = i.indrelid), '-')"
      " FROM pg_catalog.pg_index i JOIN pg_catalog.pg_class c ON c.oid = i.indexrelid"
      " JOIN pg_catalog.pg_class t ON t.oid = i.indrelid"
      " WHERE t.relname IN ('t1', 't2', 't3', 't4') ORDER BY 1";
  const Rows expected = source.cluster().Query(RecordedSource::kSourceDb, schema_sql);
  EXPECT_EQ(expected.size(), 7u);
  EXPECT_EQ(source.cluster().Query("idx", schema_sql), expected);
  // Other constraints (check, foreign key) are untouched, too.
  const std::string constraints_sql =
      "SELECT conrelid::regclass::text || ' ' || conname || ' ' ||"
      " pg_catalog.pg_get_constraintdef(oid) FROM pg_catalog.pg_constraint"
      " WHERE conrelid IN ('t1'::regclass, 't2'::regclass, 't3'::regclass, 't4'::regclass)"
      " ORDER BY 1";
  EXPECT_EQ(source.cluster().Query("idx", constraints_sql),
            source.cluster().Query(RecordedSource::kSourceDb, constraints_sql));
  // Which indexes were rebuilt after the rows went in: their OIDs are newer
  // than t4, the last table the schema change created. t1's are; t2's (a
  // comment) and t3's (a foreign key onto it) stayed through the load.
  const std::string rebuilt_sql =
      "SELECT string_agg(c.relname, ',' ORDER BY c.relname) FROM pg_catalog.pg_index i"
      " JOIN pg_catalog.pg_class c ON c.oid = i.indexrelid"
      " WHERE i.indrelid IN ('t1'::regclass, 't2'::regclass, 't3'::regclass)"
      " AND i.indexrelid > 't4'::regclass";
  EXPECT_EQ(source.cluster().Scalar("idx", rebuilt_sql), "T1 v,t1_code_key,t1_expr,t1_pkey,t1_w_excl");
}

// A non-empty table's changed rows are updated in place when that is safe
// (CanUpdateInPlace), else deleted and inserted again: two rows that swap
// the values of a UNIQUE column would collide in one UPDATE, and a non-key
// GENERATED ALWAYS identity column cannot be set by UPDATE.
TEST(EpochRowsTest, AppliesUpdatesInPlaceOnlyWhereThatIsSafe) {
  RecordedSource source;
  ASSERT_OK(source.Start(
      "CREATE TABLE plain (id int PRIMARY KEY, v text, n int);"
      "INSERT INTO plain SELECT g, 'v' || g, g FROM generate_series(1, 20) g;"
      "CREATE TABLE uniq (id int PRIMARY KEY, email text UNIQUE, n int);"
      "INSERT INTO uniq VALUES (1, 'a', 1), (2, 'b', 2), (3, 'c', 3);"
      "CREATE TABLE ident (code text PRIMARY KEY, seq int GENERATED ALWAYS AS IDENTITY, v text);"
      "INSERT INTO ident (code, v) VALUES ('x', 'one'), ('y', 'two');"));
  ASSERT_OK(source.StartAgent());
  RecordAndRestoreEveryInstant(
      &source, "inplace",
      {{"snapshot only", ""},
       {"a schema change", "ALTER TABLE plain ADD COLUMN note text"},
       {"updates, inserts, deletes",
        "UPDATE plain SET v = 'changed', note = 'n' WHERE id <= 5;"
        "INSERT INTO plain VALUES (21, 'new', 21, NULL), (22, NULL, NULL, 'x');"
        "DELETE FROM plain WHERE id IN (6, 7);"
        "UPDATE plain SET id = 7 WHERE id = 8;"
        "UPDATE uniq SET email = 'tmp' WHERE id = 1;"
        "UPDATE uniq SET email = 'a' WHERE id = 2;"
        "UPDATE uniq SET email = 'b', n = 10 WHERE id = 1;"
        "INSERT INTO uniq VALUES (4, 'c2', 4);"
        "UPDATE ident SET v = 'uno' WHERE code = 'x';"
        "INSERT INTO ident (code, v) VALUES ('z', 'three');"}});
}

TEST(EpochRowsTest, KeepsDuplicateRowsOfAKeylessTableAcrossAddPrimaryKey) {
  RecordedSource source;
  ASSERT_OK(source.Start(
      "CREATE TABLE bag (x int NOT NULL, y text);"
      "ALTER TABLE bag REPLICA IDENTITY FULL;"
      "INSERT INTO bag VALUES (1, 'dup'), (1, 'dup'), (2, NULL);"
      // No key and the default replica identity: inserts only.
      "CREATE TABLE plain (id int, v text);"
      "INSERT INTO plain VALUES (1, 'a'), (1, 'a');"));
  ASSERT_OK(source.StartAgent());
  const std::string one_copy = "(SELECT ctid FROM bag WHERE x = 1 LIMIT 1)";
  RecordAndRestoreEveryInstant(
      &source, "bag",
      {{"snapshot only", ""},
       {"create table", "CREATE TABLE marker (id int)"},
       {"duplicates",
        "INSERT INTO bag VALUES (1, 'dup'), (3, NULL), (3, NULL), (4, E'tab\\there');"
        "DELETE FROM bag WHERE ctid = " + one_copy + ";"
        "UPDATE bag SET y = 'one changed' WHERE ctid = " + one_copy + ";"
        "INSERT INTO plain VALUES (1, 'a'), (NULL, NULL), (NULL, NULL), (2, '');"},
       {"make x unique",
        "DELETE FROM bag WHERE x = 3;"
        "DELETE FROM bag WHERE ctid = (SELECT ctid FROM bag WHERE x = 1 AND y = 'dup' LIMIT 1);"},
       {"add primary key", "ALTER TABLE bag ADD PRIMARY KEY (x)"},
       {"identity default", "ALTER TABLE bag REPLICA IDENTITY DEFAULT"},
       {"keyed now",
        "UPDATE bag SET x = 10 WHERE x = 1;"
        "UPDATE bag SET y = NULL WHERE x = 2;"
        "INSERT INTO bag VALUES (1, 'dup');"
        "INSERT INTO plain VALUES (1, 'a');"}});
}

// pgbench -i's pattern: a keyless table filled, then ALTER TABLE ... ADD
// PRIMARY KEY, then changes by key. The restore loads the table once, with
// the rows as they are after the later epochs, before the key is added.
TEST(EpochRowsTest, LoadsATableOnceAcrossSchemaChangesThatLeaveItsRowsAlone) {
  RecordedSource source;
  ASSERT_OK(source.Start("CREATE TABLE seed (id int PRIMARY KEY)"));
  ASSERT_OK(source.StartAgent());
  std::vector<std::string> outputs;
  RecordAndRestoreEveryInstant(
      &source, "once",
      {{"create keyless",
        "CREATE TABLE acc (aid int NOT NULL, bid int, v text);"
        "CREATE TABLE other (id int);"
        "CREATE TABLE rev (v text, id int NOT NULL)"},  // the key will not lead
       {"rows",
        "INSERT INTO acc SELECT g, g % 3, 'v' || g FROM generate_series(1, 50) g;"
        "INSERT INTO acc VALUES (51, NULL, NULL), (52, 1, 'dup'), (53, 1, 'dup');"
        "INSERT INTO acc VALUES (54, 0, E'back\\\\slash'), (540, 0, NULL);"
        "INSERT INTO other VALUES (1), (1);"
        "INSERT INTO rev SELECT 'r' || g, g FROM generate_series(1, 20) g"},
       {"add key", "alter table acc add primary key (aid); ALTER TABLE rev ADD PRIMARY KEY (id)"},
       {"index elsewhere", "CREATE INDEX ON other (id); COMMENT ON TABLE acc IS 'accounts'"},
       {"changes by key",
        "UPDATE acc SET v = 'changed' WHERE aid <= 5;"
        "DELETE FROM acc WHERE aid BETWEEN 6 AND 8;"
        "INSERT INTO acc VALUES (100, 1, 'new');"
        "UPDATE acc SET aid = 200 WHERE aid = 9;"
        "UPDATE acc SET bid = NULL WHERE aid = 10;"
        "UPDATE acc SET v = 'dup2' WHERE aid = 53;"
        "UPDATE rev SET v = 'x' WHERE id <= 3; DELETE FROM rev WHERE id = 4;"
        "INSERT INTO rev VALUES ('new', 100)"},
       {"new table", "CREATE TABLE later (k text PRIMARY KEY)"},
       {"more changes",
        "UPDATE acc SET v = 'again' WHERE aid = 1;"
        "DELETE FROM acc WHERE aid = 100;"
        "INSERT INTO acc VALUES (6, 6, 'back');"
        // Final images out of key order: some are read after the pass.
        "INSERT INTO later VALUES ('z'), ('a'), ('m'); UPDATE later SET k = 'b' WHERE k = 'z';"
        "UPDATE rev SET v = 'late' WHERE id = 5"}},
      &outputs);
  ASSERT_EQ(outputs.size(), 7u);
  // The rows of acc and rev went in once, before their keys: through the
  // last epoch (acc in one pass over the row index, rev's key does not lead).
  EXPECT_NE(outputs.back().find("public.acc: 53 rows changed through the CREATE TABLE of xid"),
            std::string::npos)
      << outputs.back();
  EXPECT_NE(outputs.back().find("public.rev: 20 rows changed through the CREATE TABLE of xid"),
            std::string::npos)
      << outputs.back();
  const size_t key_added = outputs.back().find("replayed ALTER TABLE");
  ASSERT_NE(key_added, std::string::npos) << outputs.back();
  EXPECT_EQ(outputs.back().find("public.acc: ", key_added), std::string::npos) << outputs.back();
}

// A schema change that rewrites rows without changing the table's layout
// (ALTER COLUMN ... TYPE to the same type, USING an expression) is not
// decoded: the rows before it must go through it in the target. Epochs on
// either side of it are never loaded together; epochs on either side of a
// CREATE INDEX are, also into a table that already has rows.
TEST(EpochRowsTest, NeverLoadsRowsTogetherAcrossASchemaChangeThatRewritesThem) {
  RecordedSource source;
  ASSERT_OK(source.Start(
      "CREATE TABLE base (id int PRIMARY KEY, v text);"
      "INSERT INTO base SELECT g, 'b' || g FROM generate_series(1, 10) g"));
  ASSERT_OK(source.StartAgent());
  std::vector<std::string> outputs;
  RecordAndRestoreEveryInstant(
      &source, "rewrite",
      {{"create", "CREATE TABLE t (id int PRIMARY KEY, v text)"},
       {"rows",
        "INSERT INTO t SELECT g, 'v' || g FROM generate_series(1, 20) g;"
        "UPDATE base SET v = 'early' WHERE id = 1"},
       {"rewrite", "ALTER TABLE t ALTER COLUMN v TYPE text USING v || '!'"},
       {"changes",
        "UPDATE t SET v = 'x' WHERE id = 1;"
        "UPDATE base SET v = 'mid' WHERE id = 2"},
       {"index", "CREATE INDEX t_v ON t (v); CREATE INDEX base_v ON base (v)"},
       {"more",
        "UPDATE t SET v = 'y' WHERE id = 2; DELETE FROM t WHERE id = 3;"
        "UPDATE base SET v = 'late' WHERE id = 3; DELETE FROM base WHERE id = 4"}},
      &outputs);
  ASSERT_EQ(outputs.size(), 6u);
  EXPECT_NE(outputs.back().find("public.t: 3 rows changed through the CREATE INDEX of xid"),
            std::string::npos)
      << outputs.back();
  EXPECT_NE(outputs.back().find("public.base: 3 rows changed through the CREATE INDEX of xid"),
            std::string::npos)
      << outputs.back();
  EXPECT_NE(outputs.back().find("public.t: 20 rows changed\n"), std::string::npos)
      << outputs.back();
}

// A restore finds which tables each epoch changed from the transaction
// headers, reading change by change only the transactions whose changes of
// a table lie on both sides of a schema change or of its TRUNCATE. Headers
// of an older agent do not list their tables: the restore then reads the
// row index, with the same result.
TEST(EpochRowsTest, FindsEachEpochsTablesFromHeadersOrTheRowIndex) {
  RecordedSource source;
  ASSERT_OK(source.Start(
      "CREATE TABLE a (id int PRIMARY KEY, v text);"
      "CREATE TABLE b (x int, y text);"
      "INSERT INTO a SELECT g, 'a' || g FROM generate_series(1, 10) g;"
      "INSERT INTO b VALUES (1, 'one'), (1, 'one')"));
  ASSERT_OK(source.StartAgent());
  const std::vector<Instant> instants = RecordEveryInstant(
      &source,
      {{"ddl inside a transaction",
        "UPDATE a SET v = 'before' WHERE id = 1; INSERT INTO b VALUES (2, 'two');"
        "ALTER TABLE a ADD COLUMN w int;"
        "UPDATE a SET v = 'after', w = 1 WHERE id = 2; INSERT INTO b VALUES (3, 'three');"
        "CREATE INDEX ON b (x);"
        "DELETE FROM a WHERE id = 3"},
       {"truncate inside a transaction",
        "INSERT INTO b VALUES (4, 'gone'); UPDATE a SET w = 2 WHERE id = 4;"
        "TRUNCATE b; INSERT INTO b VALUES (5, 'kept'), (5, 'kept')"},
       {"plain", "UPDATE a SET v = 'plain' WHERE id = 5; INSERT INTO b VALUES (6, NULL)"},
       {"after a schema change", "ALTER TABLE b ADD COLUMN z int; UPDATE a SET w = 3"}});
  ASSERT_EQ(instants.size(), 4u);
  RestoreEveryInstant(&source, "listed", instants);

  // The store as an agent before RowIndexed would have left it: b's rows
  // are in the row index too, and are not counted twice.
  ASSERT_OK(source.agent().Kill(SIGTERM));
  ASSERT_TRUE(source.agent().WaitExit(std::chrono::seconds(10)).has_value());
  int added = 0;
  ASSERT_OK(IndexUnindexedRows(source.store(), &added));
  EXPECT_EQ(added, 6);  // b's rows inserted after the snapshot
  RestoreEveryInstant(&source, "indexed", instants);

  // Older still: transaction headers do not list their tables.
  int stripped = 0;
  ASSERT_OK(StripTxnTableLists(source.store(), &stripped));
  EXPECT_GE(stripped, 4);
  RestoreEveryInstant(&source, "unlisted", instants);
}

// The first column of every row a query returns in database db.
std::vector<std::string> FirstColumn(PgCluster& cluster, const std::string& db,
                                     const std::string& sql) {
  auto conn = cluster.Connect(db);
  EXPECT_OK(conn);
  if (!conn.ok()) return {};
  auto res = (*conn)->Query(sql);
  EXPECT_OK(res);
  std::vector<std::string> values;
  for (int i = 0; res.ok() && i < res->rows(); i++) values.push_back(res->GetString(i, 0));
  return values;
}

// The databases named like pitr-restore --jobs's partial ones.
std::vector<std::string> PartialDatabases(PgCluster& cluster) {
  return FirstColumn(cluster, "postgres",
                     "SELECT datname FROM pg_database WHERE datname LIKE 'pgtrail\\_partial\\_%'");
}

// pitr-restore --jobs 2: rows load on two connections while the schema
// changes go on, an index on a table being loaded is built after its load,
// and a later schema change naming that table waits for it (a foreign key
// needs the key). Every instant comes back exactly, under its own name once
// complete.
TEST(EpochRowsTest, ParallelRestoreMatchesEveryInstant) {
  RecordedSource source;
  ASSERT_OK(source.Start("CREATE TABLE seed (id int PRIMARY KEY); INSERT INTO seed VALUES (1)"));
  ASSERT_OK(source.StartAgent());
  const std::vector<Instant> instants = RecordEveryInstant(
      &source,
      {{"create keyless",
        "CREATE TABLE acc (aid int NOT NULL, v text); CREATE TABLE hist (aid int, d int)"},
       {"rows",
        "INSERT INTO acc SELECT g, 'v' || g FROM generate_series(1, 20000) g;"
        "INSERT INTO hist SELECT g % 100, g FROM generate_series(1, 5000) g"},
       {"keys", "ALTER TABLE acc ADD PRIMARY KEY (aid); CREATE INDEX hist_aid ON hist (aid)"},
       {"a table referring to acc",
        "CREATE TABLE child (id int PRIMARY KEY, aid int REFERENCES acc (aid));"
        "INSERT INTO child SELECT g, g FROM generate_series(1, 100) g"},
       {"changes",
        "UPDATE acc SET v = 'changed' WHERE aid % 7 = 0; DELETE FROM acc WHERE aid > 19990;"
        "INSERT INTO hist VALUES (1, -1); UPDATE child SET aid = 5 WHERE id = 1;"
        "UPDATE seed SET id = 2"},
       {"another table", "CREATE TABLE bulk (id bigint PRIMARY KEY, note text)"},
       {"bulk rows", "INSERT INTO bulk SELECT g, md5(g::text) FROM generate_series(1, 20000) g"}});
  ASSERT_EQ(instants.size(), 7u);
  std::vector<std::string> outputs;
  RestoreEveryInstant(&source, "par", instants, &outputs, {"--jobs", "2"});
  ASSERT_EQ(outputs.size(), 7u);
  EXPECT_NE(outputs.back().find("with 2 loading connections; it becomes \"par6\" when complete"),
            std::string::npos)
      << outputs.back();
  EXPECT_NE(outputs.back().find("to \"par6\"\n"), std::string::npos) << outputs.back();
  EXPECT_TRUE(PartialDatabases(source.cluster()).empty());
}

// Every index, constraint and trigger of the target, as SQL would recreate
// it, sorted: the schema a restore must bring back besides the rows.
std::vector<std::string> SchemaObjects(PgCluster& cluster, const std::string& db) {
  return FirstColumn(
      cluster, db,
      "SELECT indexdef FROM pg_catalog.pg_indexes WHERE schemaname = 'public'"
      " UNION ALL SELECT conrelid::regclass::text || ' ' || conname || ' ' ||"
      "   pg_catalog.pg_get_constraintdef(oid) FROM pg_catalog.pg_constraint"
      "   WHERE connamespace = 'public'::regnamespace"
      " UNION ALL SELECT pg_catalog.pg_get_triggerdef(oid) FROM pg_catalog.pg_trigger"
      "   WHERE NOT tgisinternal ORDER BY 1");
}

// With --jobs, the base snapshot's indexes and keys are built on the loading
// connections after each table's rows, the foreign keys and triggers after
// all of them; the restored schema is the source's.
TEST(EpochRowsTest, ParallelRestoreBuildsTheSnapshotsIndexesAndConstraints) {
  RecordedSource source;
  ASSERT_OK(source.Start(
      "CREATE TABLE parent (id int PRIMARY KEY, code text UNIQUE, v int CHECK (v >= 0));"
      "CREATE TABLE child (id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,"
      "  parent_id int NOT NULL REFERENCES parent (id), note text);"
      "CREATE INDEX child_parent ON child (parent_id) WHERE note IS NOT NULL;"
      "CREATE UNIQUE INDEX parent_lower ON parent (lower(code));"
      "CREATE FUNCTION touch() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN RETURN NEW; END $$;"
      "CREATE TRIGGER child_touch BEFORE UPDATE ON child FOR EACH ROW EXECUTE FUNCTION touch();"
      "INSERT INTO parent SELECT g, 'c' || g, g FROM generate_series(1, 3000) g;"
      "INSERT INTO child (parent_id, note) SELECT 1 + g % 3000, CASE WHEN g % 2 = 0 THEN 'n' END"
      "  FROM generate_series(1, 20000) g"));
  ASSERT_OK(source.StartAgent());
  const std::vector<Instant> instants = RecordEveryInstant(
      &source, {{"changes", "UPDATE parent SET v = 7 WHERE id < 10; DELETE FROM child WHERE id = 5"}});
  ASSERT_EQ(instants.size(), 1u);
  std::vector<std::string> outputs;
  RestoreEveryInstant(&source, "parsnap", instants, &outputs, {"--jobs", "2"});
  const std::vector<std::string> want = SchemaObjects(source.cluster(), RecordedSource::kSourceDb);
  EXPECT_GE(want.size(), 9u);
  EXPECT_EQ(SchemaObjects(source.cluster(), "parsnap0"), want);
}

// A parallel restore that fails (a schema change cannot be replayed: its
// role is gone) drops the database it was building; nothing is left under
// the target's name or a temporary one.
TEST(EpochRowsTest, ParallelRestoreDropsItsDatabaseWhenItFails) {
  RecordedSource source;
  ASSERT_OK(source.Start("CREATE ROLE pgtrail_gone_owner; CREATE TABLE seed (id int PRIMARY KEY)"));
  ASSERT_OK(source.StartAgent());
  const std::vector<Instant> instants = RecordEveryInstant(
      &source, {{"owned",
                 "CREATE TABLE owned (id int PRIMARY KEY);"
                 "INSERT INTO owned SELECT generate_series(1, 1000);"
                 "ALTER TABLE owned OWNER TO pgtrail_gone_owner"}});
  ASSERT_EQ(instants.size(), 1u);
  ASSERT_OK(source.cluster().Exec(RecordedSource::kSourceDb,
                                  "ALTER TABLE owned OWNER TO postgres; DROP ROLE pgtrail_gone_owner"));
  CommandResult result = source.Restore(instants[0].time, "parfail", {"--jobs", "2"});
  EXPECT_EQ(result.exit_code, 6) << result;
  EXPECT_NE(result.stderr_text.find("replaying ALTER TABLE"), std::string::npos) << result;
  EXPECT_TRUE(PartialDatabases(source.cluster()).empty());
  EXPECT_EQ(FirstColumn(source.cluster(), "postgres",
                        "SELECT count(*) FROM pg_database WHERE datname = 'parfail'"),
            std::vector<std::string>{"0"});
}

TEST(EpochRowsTest, AppliesTruncatesInsideAnEpochForAllOrChosenTables) {
  RecordedSource source;
  ASSERT_OK(source.Start(
      "CREATE TABLE k (id int PRIMARY KEY, v text);"
      "CREATE TABLE m (x int, y text); ALTER TABLE m REPLICA IDENTITY FULL;"
      "CREATE TABLE other (id int PRIMARY KEY);"
      "INSERT INTO k VALUES (1, 'one'), (2, 'two');"
      "INSERT INTO m VALUES (1, 'a'), (1, 'a'), (2, 'b');"
      "INSERT INTO other VALUES (1);"));
  ASSERT_OK(source.StartAgent());
  std::vector<std::pair<std::string, std::string>> steps = {
      {"snapshot only", ""},
      {"add column", "ALTER TABLE k ADD COLUMN w int"},
      {"changes, truncate, reinserts",
       "BEGIN;"
       "INSERT INTO k VALUES (10, 'ten', 1); UPDATE k SET v = 'x' WHERE id = 1;"
       "DELETE FROM m WHERE x = 2; INSERT INTO m VALUES (5, 'e');"
       "TRUNCATE k, m;"
       "INSERT INTO k VALUES (1, 'one again', 2), (10, 'ten again', NULL);"
       "INSERT INTO m VALUES (1, 'a'), (1, 'a'), (7, NULL);"
       "COMMIT;"},
      {"after the truncate",
       "UPDATE k SET id = 11 WHERE id = 10;"
       "DELETE FROM m WHERE ctid = (SELECT ctid FROM m WHERE x = 1 LIMIT 1);"
       "INSERT INTO other VALUES (2), (3);"},
      {"second truncate", "TRUNCATE other; INSERT INTO other VALUES (3);"},
      {"add index", "CREATE INDEX m_x ON m (x)"},
      {"truncate only", "TRUNCATE m"},
      {"rows after", "INSERT INTO m VALUES (8, 'h'); TRUNCATE other; UPDATE k SET w = 0"}};
  RecordAndRestoreEveryInstant(&source, "trunc", steps);

  // --tables: only the chosen tables get rows, through the same epochs.
  const Instant& last = source.instants().back();
  for (const std::string table : {"k", "m"}) {
    SCOPED_TRACE("--tables " + table);
    const std::string db = "trunc_only_" + table;
    CommandResult result = source.Restore(last.time, db, {"--tables", table});
    ASSERT_EQ(result.exit_code, 0) << result;
    EXPECT_TRUE(FingerprintsEqual({{"public." + table, last.fingerprints.at("public." + table)}},
                                  source.cluster().DatabaseFingerprint(db)))
        << result.stdout_text;
  }
}

// A replica identity changed while event triggers do not fire
// (session_replication_role = replica): no schema change is captured, so
// the table's rowkeys change layout inside one epoch. Its keyed and its
// multiset changes must each be applied under their own layout.
TEST(EpochRowsTest, AppliesAnEpochInWhichATableChangedLayoutWithoutACapturedDdl) {
  RecordedSource source;
  ASSERT_OK(source.Start(
      "CREATE TABLE t (id int PRIMARY KEY, v text);"
      "INSERT INTO t SELECT g, 'v' || g FROM generate_series(1, 5) g;"));
  ASSERT_OK(source.StartAgent());
  RecordAndRestoreEveryInstant(
      &source, "mixed",
      {{"snapshot only", ""},
       {"create table", "CREATE TABLE side (id int)"},
       {"keyed changes",
        "INSERT INTO t VALUES (6, 'six'); UPDATE t SET v = 'two' WHERE id = 2;"
        "DELETE FROM t WHERE id = 3;"},
       {"identity full, not captured",
        "SET session_replication_role = replica; ALTER TABLE t REPLICA IDENTITY FULL;"
        "RESET session_replication_role;"},
       {"multiset changes",
        "UPDATE t SET v = 'four' WHERE id = 4; DELETE FROM t WHERE id = 1;"
        "INSERT INTO t VALUES (7, 'seven'); UPDATE t SET v = 'six!' WHERE id = 6;"}});
}

// A table without a key that is not REPLICA IDENTITY FULL has its rows read
// from its changes, not the row index. With its replica identity changed
// where no schema change is captured, the rows it got while unindexed and
// the row index's entries meet inside one epoch: rows added before are
// deleted after, and the other way round.
TEST(EpochRowsTest, MergesRowsFromChangesWithTheRowIndexInsideOneEpoch) {
  RecordedSource source;
  ASSERT_OK(source.Start(
      "CREATE TABLE bag (x int, y text);"  // unindexed, then FULL
      "CREATE TABLE back (x int, y text); ALTER TABLE back REPLICA IDENTITY FULL;"
      "INSERT INTO bag VALUES (1, 'snap'), (1, 'snap');"
      "INSERT INTO back VALUES (1, 'snap'), (2, 'snap')"));
  ASSERT_OK(source.StartAgent());
  RecordAndRestoreEveryInstant(
      &source, "merge",
      {{"inserts while unindexed",
        "INSERT INTO bag VALUES (1, 'snap'), (2, 'new'), (2, 'new'), (NULL, NULL);"
        "DELETE FROM back WHERE x = 1; INSERT INTO back VALUES (3, 'full')"},
       {"identities changed, not captured",
        "SET session_replication_role = replica; ALTER TABLE bag REPLICA IDENTITY FULL;"
        "ALTER TABLE back REPLICA IDENTITY DEFAULT; RESET session_replication_role;"},
       {"deletes of rows added before",
        "DELETE FROM bag WHERE ctid IN (SELECT ctid FROM bag WHERE x = 1 LIMIT 2);"
        "DELETE FROM bag WHERE x = 2; UPDATE bag SET y = 'was null' WHERE x IS NULL;"
        "INSERT INTO back VALUES (3, 'full'), (4, 'unindexed')"},
       {"a captured schema change", "CREATE TABLE marker (id int)"},
       {"after it", "INSERT INTO bag VALUES (5, 'late'); INSERT INTO back VALUES (5, 'late')"}});
}

}  // namespace
}  // namespace pgtrail::testing
