// Schema changes end to end: a real PostgreSQL 15 runs a scripted series of
// migrations interleaved with row changes while pgtrail-agent records it;
// after every step the source's fingerprints (columns, types, rows) and its
// schema objects (indexes, constraints, defaults) are recorded with the
// instant, and pitr-restore must rebuild exactly that state at every instant,
// as well as for --to-xid, --to-lsn and --to-mark targets, with --tables and
// with --clean. changelog must list each DDL statement at its place.
//
// The migration series is recorded once per test process (it is long) and
// shared, read-only, by the SchemaChangeTest tests; the mark and clean tests
// record their own small source.
#include <gtest/gtest.h>

#include <chrono>
#include <csignal>
#include <cstdint>
#include <map>
#include <memory>
#include <nlohmann/json.hpp>
#include <regex>
#include <sstream>
#include <string>
#include <tuple>
#include <utility>
#include <vector>

#include "storage/pg.h"
#include "tests/integration/e2e_helpers.h"
#include "tests/integration/pg_cluster.h"

namespace pgtrail::testing {
namespace {

// Indexes, constraints, column defaults and identity columns of the user
// tables, one per line, sorted: what a schema change may alter without
// changing a Fingerprint.
std::string SchemaObjects(PgCluster& cluster, const std::string& db) {
  return cluster.Scalar(db, R"sql(
    WITH user_class AS (
      SELECT c.oid FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
       WHERE n.nspname NOT IN ('pg_catalog', 'information_schema', 'pgtrail')
         AND n.nspname NOT LIKE 'pg\_%')
    SELECT coalesce(string_agg(x, E'\n' ORDER BY x COLLATE "C"), '') FROM (
      SELECT 'index ' || schemaname || '.' || indexname || ': ' || indexdef AS x
        FROM pg_indexes
       WHERE schemaname NOT IN ('pg_catalog', 'information_schema', 'pgtrail')
      UNION ALL
      SELECT 'constraint ' || c.conrelid::regclass::text || ' ' || c.conname || ': ' ||
             pg_get_constraintdef(c.oid)
        FROM pg_constraint c WHERE c.conrelid IN (SELECT oid FROM user_class)
      UNION ALL
      SELECT 'default ' || d.adrelid::regclass::text || '.' || a.attname || ': ' ||
             pg_get_expr(d.adbin, d.adrelid)
        FROM pg_attrdef d
        JOIN pg_attribute a ON a.attrelid = d.adrelid AND a.attnum = d.adnum
       WHERE d.adrelid IN (SELECT oid FROM user_class)
      UNION ALL
      SELECT 'identity ' || a.attrelid::regclass::text || '.' || a.attname || ': ' || a.attidentity::text
        FROM pg_attribute a
       WHERE a.attidentity <> '' AND a.attrelid IN (SELECT oid FROM user_class)) s
  )sql");
}

// The source right after one step.
struct Moment {
  Instant instant;
  std::string objects;  // SchemaObjects
};

// Runs `sql` as one step, records its instant and schema objects.
Status RecordStep(RecordedSource* source, std::vector<Moment>* moments, const std::string& label,
                  const std::string& sql) {
  ASSIGN_OR_RETURN(Instant instant, source->Step(label, sql));
  moments->push_back({std::move(instant), SchemaObjects(source->cluster(), "src")});
  return Status::OK();
}

// pitr-restore --store <store> args... [--target <db>] (no target if db is empty).
CommandResult RunRestore(RecordedSource& source, const std::vector<std::string>& args,
                         const std::string& target_db) {
  std::vector<std::string> argv = {kRestoreBin, "--store", source.store()};
  argv.insert(argv.end(), args.begin(), args.end());
  if (!target_db.empty()) {
    argv.push_back("--target");
    argv.push_back(source.cluster().ConnInfo(target_db));
  }
  return RunCommand(argv);
}

// changelog --store <store> grep args...
CommandResult RunChangelog(RecordedSource& source, const std::vector<std::string>& args) {
  std::vector<std::string> argv = {kChangelogBin, "--store", source.store(), "grep"};
  argv.insert(argv.end(), args.begin(), args.end());
  return RunCommand(argv);
}

// One JSON object per line; a line that is not JSON fails the test.
std::vector<nlohmann::json> JsonLines(const std::string& text) {
  std::vector<nlohmann::json> out;
  std::istringstream in(text);
  std::string line;
  while (std::getline(in, line)) {
    if (line.empty()) continue;
    nlohmann::json j = nlohmann::json::parse(line, nullptr, /*allow_exceptions=*/false);
    EXPECT_TRUE(j.is_object()) << "not a JSON object: " << line;
    out.push_back(std::move(j));
  }
  return out;
}

// "0/1A2B3C0" -> 0x1A2B3C0.
uint64_t LsnValue(const std::string& lsn) {
  const size_t slash = lsn.find('/');
  if (slash == std::string::npos) {
    ADD_FAILURE() << "not an LSN: " << lsn;
    return 0;
  }
  return (std::stoull(lsn.substr(0, slash), nullptr, 16) << 32) |
         std::stoull(lsn.substr(slash + 1), nullptr, 16);
}

// The restore into `db` succeeded and equals `moment`: tables, columns,
// rows, indexes, constraints and defaults.
void ExpectRestoredAs(RecordedSource& source, const CommandResult& result, const std::string& db,
                      const Moment& moment) {
  ASSERT_EQ(result.exit_code, 0) << result;
  EXPECT_TRUE(
      FingerprintsEqual(moment.instant.fingerprints, source.cluster().DatabaseFingerprint(db)))
      << "pitr-restore said:\n"
      << result.stdout_text;
  EXPECT_EQ(SchemaObjects(source.cluster(), db), moment.objects);
}

// Inserts through every serial/identity default that exists at the time.
const std::vector<std::string>& InsertsWithDefaults() {
  static const std::vector<std::string> kInserts = {"INSERT INTO items DEFAULT VALUES",
                                                    "INSERT INTO orders DEFAULT VALUES",
                                                    R"sql(DO $$ BEGIN
        IF to_regclass('public.old_name') IS NOT NULL THEN INSERT INTO old_name DEFAULT VALUES; END IF;
        IF to_regclass('public.new_name') IS NOT NULL THEN INSERT INTO new_name DEFAULT VALUES; END IF;
        IF to_regclass('public.tags') IS NOT NULL THEN INSERT INTO tags DEFAULT VALUES; END IF;
      END $$)sql"};
  return kInserts;
}

// ---------------------------------------------------------------------------
// The migration series.

constexpr char kSeriesSchema[] = R"sql(
CREATE TABLE items (id serial PRIMARY KEY, name text, qty int, code text, note text);
CREATE TABLE orders (id int GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY, item_id int, amount int);
CREATE TABLE doomed (id int PRIMARY KEY, v text);
CREATE TABLE old_name (id serial PRIMARY KEY, v text);
CREATE TABLE bag (x int, y text);
ALTER TABLE bag REPLICA IDENTITY FULL;
INSERT INTO items (name, qty, code, note)
  SELECT 'item ' || g, g, 'c' || g, 'note ' || g FROM generate_series(1, 10) g;
INSERT INTO orders (item_id, amount) VALUES (1, 100), (3, 300), (6, 600), (8, 800), (10, 1000);
INSERT INTO doomed VALUES (1, 'd1'), (2, 'd2');
INSERT INTO old_name (v) VALUES ('o1'), ('o2');
INSERT INTO bag VALUES (1, 'dup'), (1, 'dup'), (2, NULL);
)sql";

constexpr char kMultiStatement[] =
    "ALTER TABLE items ADD COLUMN score int; UPDATE items SET score = id * 2";

struct Series {
  RecordedSource source;
  std::vector<Moment> moments;
  // (tag, query) of every DDL statement, in order.
  std::vector<std::pair<std::string, std::string>> ddl;
  // Moment index by name, for the steps tests look at.
  std::map<std::string, size_t> at;
  // txid_current() inside the transaction with DML before and after a DDL.
  std::string in_txn_xid;
};

// A DDL step: `sql` is one statement string, as changelog will show it; it
// is run here unless `already_run`.
Status RecordDdl(Series* s, const std::string& name, const std::string& tag, const std::string& sql,
                 bool already_run = false) {
  RETURN_IF_ERROR(RecordStep(&s->source, &s->moments, name, already_run ? "" : sql));
  s->ddl.emplace_back(tag, sql);
  s->at[name] = s->moments.size() - 1;
  return Status::OK();
}

Status RecordDml(Series* s, const std::string& label, const std::string& sql) {
  return RecordStep(&s->source, &s->moments, label, sql);
}

void RecordSeries(Series* s) {
  RecordedSource& source = s->source;
  ASSERT_OK(source.Start(kSeriesSchema));
  ASSERT_OK(source.StartAgent());
  ASSERT_OK(RecordDml(s, "snapshot only", ""));
  ASSERT_OK(RecordDml(s, "dml before any ddl", R"sql(
    INSERT INTO items (name, qty, code, note) VALUES ('item 11', 11, 'c11', 'n11'), ('item 12', 12, 'c12', 'n12');
    UPDATE items SET qty = qty + 100 WHERE id IN (1, 11);
    DELETE FROM items WHERE id = 2;
    UPDATE orders SET amount = amount + 1 WHERE id = 1;
    INSERT INTO bag VALUES (4, 'stream');
  )sql"));
  ASSERT_OK(RecordDdl(s, "add column with a default", "ALTER TABLE",
                      "ALTER TABLE items ADD COLUMN c int DEFAULT 7"));
  ASSERT_OK(RecordDml(s, "dml on the new column", R"sql(
    INSERT INTO items (name, qty, c) VALUES ('item 13', 13, 70);
    UPDATE items SET c = 8 WHERE id IN (3, 12);
    DELETE FROM items WHERE id = 11;
  )sql"));
  ASSERT_OK(RecordDdl(s, "drop column", "ALTER TABLE", "ALTER TABLE items DROP COLUMN note"));
  ASSERT_OK(RecordDml(s, "dml after the drop", R"sql(
    UPDATE items SET code = 'changed' WHERE id IN (4, 13);
    INSERT INTO items (name, qty, code) VALUES ('item 14', 14, 'c14');
    DELETE FROM items WHERE id = 5;
  )sql"));
  ASSERT_OK(RecordDdl(s, "rename column", "ALTER TABLE",
                      "ALTER TABLE items RENAME COLUMN name TO title"));
  ASSERT_OK(RecordDml(s, "dml on the renamed column", R"sql(
    UPDATE items SET title = title || ' renamed' WHERE id IN (6, 14);
    INSERT INTO items (title, qty) VALUES ('item 15', 15);
  )sql"));
  ASSERT_OK(RecordDdl(s, "int to bigint", "ALTER TABLE",
                      "ALTER TABLE items ALTER COLUMN qty TYPE bigint"));
  ASSERT_OK(RecordDml(s, "dml with big values", R"sql(
    UPDATE items SET qty = 5000000000 WHERE id IN (7, 15);
    INSERT INTO items (title, qty) VALUES ('item 16', 6000000000);
    DELETE FROM items WHERE id = 13;
  )sql"));
  ASSERT_OK(RecordDdl(s, "text to varchar(40)", "ALTER TABLE",
                      "ALTER TABLE items ALTER COLUMN title TYPE varchar(40)"));
  ASSERT_OK(RecordDml(s, "dml on the varchar", R"sql(
    UPDATE items SET title = 'short' WHERE id IN (8, 16);
    INSERT INTO items (title) VALUES ('item 17');
  )sql"));
  ASSERT_OK(RecordDdl(s, "int to text using", "ALTER TABLE",
                      "ALTER TABLE items ALTER COLUMN c TYPE text USING 'c=' || c"));
  ASSERT_OK(RecordDml(s, "dml on the text column", R"sql(
    UPDATE items SET c = 'text now' WHERE id IN (9, 17);
    INSERT INTO items (title, c) VALUES ('item 18', 'c text');
    DELETE FROM items WHERE id = 14;
  )sql"));
  ASSERT_OK(RecordDdl(s, "create table", "CREATE TABLE",
                      "CREATE TABLE tags (id serial PRIMARY KEY, item_id int, label text)"));
  ASSERT_OK(RecordDml(s, "dml on the new table", R"sql(
    INSERT INTO tags (item_id, label) VALUES (1, 'red'), (3, 'blue');
    UPDATE items SET qty = qty + 1 WHERE id = 10;
    DELETE FROM doomed WHERE id = 1;
  )sql"));
  ASSERT_OK(RecordDdl(s, "drop table", "DROP TABLE", "DROP TABLE doomed"));
  ASSERT_OK(RecordDml(s, "dml before the rename", R"sql(
    UPDATE tags SET label = 'green' WHERE id = 1;
    INSERT INTO old_name (v) VALUES ('o3');
    UPDATE old_name SET v = 'o1 changed' WHERE id = 1;
  )sql"));
  ASSERT_OK(RecordDdl(s, "rename table", "ALTER TABLE", "ALTER TABLE old_name RENAME TO new_name"));
  ASSERT_OK(RecordDml(s, "dml on the renamed table", R"sql(
    INSERT INTO new_name (v) VALUES ('n4');
    UPDATE new_name SET v = v || '!' WHERE id IN (2, 3);
    DELETE FROM new_name WHERE id = 1;
  )sql"));
  ASSERT_OK(
      RecordDdl(s, "add index", "CREATE INDEX", "CREATE INDEX items_title_idx ON items (title)"));
  ASSERT_OK(RecordDml(s, "dml after the index", R"sql(
    INSERT INTO items (title, qty) VALUES ('item 19', 19);
    UPDATE items SET title = 'indexed' WHERE id = 1;
    DELETE FROM bag WHERE ctid = (SELECT ctid FROM bag WHERE x = 1 LIMIT 1);
  )sql"));
  ASSERT_OK(RecordDdl(s, "add foreign key", "ALTER TABLE",
                      "ALTER TABLE orders ADD CONSTRAINT orders_item_fk FOREIGN KEY (item_id) "
                      "REFERENCES items (id)"));
  ASSERT_OK(RecordDml(s, "dml after the foreign key", R"sql(
    INSERT INTO orders (item_id, amount) VALUES (12, 1200);
    UPDATE orders SET amount = 0 WHERE id = 2;
    DELETE FROM orders WHERE id = 3;
  )sql"));
  ASSERT_OK(RecordDdl(s, "set default", "ALTER TABLE",
                      "ALTER TABLE items ALTER COLUMN qty SET DEFAULT 42"));
  ASSERT_OK(RecordDml(s, "dml using the new default", R"sql(
    INSERT INTO items (title) VALUES ('item 20 default qty');
    UPDATE items SET qty = 0 WHERE id = 4;
  )sql"));
  ASSERT_OK(RecordDdl(s, "add check", "ALTER TABLE",
                      "ALTER TABLE items ADD CONSTRAINT items_qty_nonneg CHECK (qty >= 0)"));
  ASSERT_OK(RecordDml(s, "dml after the check", R"sql(
    UPDATE items SET qty = qty * 2 WHERE id IN (3, 20);
    DELETE FROM tags WHERE id = 2;
    INSERT INTO tags (item_id, label) VALUES (20, 'new');
  )sql"));

  // Rows changed in the same transaction before and after a DDL on their
  // table, each statement sent on its own as an application would.
  {
    ASSERT_OK_AND_ASSIGN(std::unique_ptr<PgConn> conn, source.cluster().Connect("src"));
    ASSERT_OK(conn->Exec("BEGIN"));
    ASSERT_OK_AND_ASSIGN(PgResult xid, conn->Query("SELECT txid_current()::text"));
    s->in_txn_xid = xid.GetString(0, 0);
    ASSERT_OK(conn->Exec("INSERT INTO orders (item_id, amount) VALUES (1, 111)"));
    ASSERT_OK(conn->Exec("ALTER TABLE orders ADD COLUMN status text"));
    ASSERT_OK(conn->Exec("UPDATE orders SET status = 'new' WHERE id IN (1, 2) OR amount = 111"));
    ASSERT_OK(conn->Exec(
        "INSERT INTO orders (item_id, amount, status) VALUES (3, 333, 'inserted after the ddl')"));
    ASSERT_OK(conn->Exec("COMMIT"));
  }
  ASSERT_OK(RecordDdl(s, "dml, ddl, dml in one transaction", "ALTER TABLE",
                      "ALTER TABLE orders ADD COLUMN status text", /*already_run=*/true));
  ASSERT_OK(RecordDml(s, "dml on the column added in a transaction", R"sql(
    UPDATE orders SET status = 'shipped' WHERE id = 1;
    INSERT INTO orders (item_id, amount) VALUES (6, 600);
    DELETE FROM orders WHERE id = 4;
  )sql"));
  // One query string, one implicit transaction: the ALTER and its backfill.
  ASSERT_OK(RecordDdl(s, "alter and update in one query string", "ALTER TABLE", kMultiStatement));
  ASSERT_OK(RecordDml(s, "dml on the backfilled column", R"sql(
    UPDATE items SET score = -1 WHERE id = 1;
    INSERT INTO items (title, score) VALUES ('item 21', 42);
    DELETE FROM items WHERE id = 9;
  )sql"));
  ASSERT_OK(RecordDdl(s, "add column to a keyless table", "ALTER TABLE",
                      "ALTER TABLE bag ADD COLUMN z int DEFAULT 0"));
  ASSERT_OK(RecordDml(s, "dml on the keyless table", R"sql(
    INSERT INTO bag VALUES (3, 'new', 5), (3, 'new', 5);
    UPDATE bag SET z = 9 WHERE ctid = (SELECT ctid FROM bag WHERE x = 1 LIMIT 1);
    DELETE FROM bag WHERE x = 2;
  )sql"));
  ASSERT_OK(source.CommitAfterLastInstant("INSERT INTO items (title) VALUES ('tail')"));
}

class SchemaChangeTest : public ::testing::Test {
 protected:
  static void TearDownTestSuite() {
    delete series_;
    series_ = nullptr;
  }

  void SetUp() override {
    if (series_ == nullptr) {
      series_ = new Series();
      RecordSeries(series_);
      recorded_ = !HasFailure();
    }
    ASSERT_TRUE(recorded_) << "recording the migration series failed (see the first test)";
  }

  static const Moment& MomentAt(const std::string& name) {
    return series_->moments.at(series_->at.at(name));
  }
  static const Moment& MomentBefore(const std::string& name) {
    return series_->moments.at(series_->at.at(name) - 1);
  }

  static inline Series* series_ = nullptr;
  static inline bool recorded_ = false;
};

TEST_F(SchemaChangeTest, RestoresEveryInstantAroundEveryMigration) {
  RecordedSource& source = series_->source;
  const std::vector<Moment>& moments = series_->moments;
  // Every step changed the tables or the schema objects, so a restore to a
  // neighbouring instant cannot pass for this one.
  for (size_t i = 1; i < moments.size(); i++) {
    EXPECT_TRUE(
        !FingerprintsEqual(moments[i - 1].instant.fingerprints, moments[i].instant.fingerprints) ||
        moments[i - 1].objects != moments[i].objects)
        << "step \"" << moments[i].instant.label << "\" changed nothing";
  }
  // Just before and just after each DDL: the instants of the steps around it.
  for (size_t i = 0; i < moments.size(); i++) {
    const Moment& moment = moments[i];
    const std::string db = "at" + std::to_string(i);
    SCOPED_TRACE("restore to \"" + moment.instant.label + "\" at " + moment.instant.time);
    ExpectRestoredAs(source, RunRestore(source, {"--to", moment.instant.time}, db), db, moment);
  }

  // The objects a DDL creates exist from its instant on, not before.
  PgCluster& cluster = source.cluster();
  auto db_at = [&](const std::string& name, int offset) {
    return "at" + std::to_string(series_->at.at(name) + offset);
  };
  const std::string index_sql =
      "SELECT count(*) FROM pg_indexes WHERE schemaname = 'public' AND tablename = 'items' "
      "AND indexname = 'items_title_idx'";
  EXPECT_EQ(cluster.Scalar(db_at("add index", -1), index_sql), "0");
  EXPECT_EQ(cluster.Scalar(db_at("add index", 0), index_sql), "1");
  EXPECT_EQ(cluster.Scalar(db_at("add index", 0),
                           "SELECT indexdef FROM pg_indexes WHERE indexname = 'items_title_idx'"),
            "CREATE INDEX items_title_idx ON public.items USING btree (title)");
  const std::string fk_sql =
      "SELECT count(*) FROM pg_constraint WHERE conname = 'orders_item_fk' AND contype = 'f' "
      "AND conrelid = 'orders'::regclass AND confrelid = 'items'::regclass";
  EXPECT_EQ(cluster.Scalar(db_at("add foreign key", -1), fk_sql), "0");
  EXPECT_EQ(cluster.Scalar(db_at("add foreign key", 0), fk_sql), "1");
  const std::string check_sql =
      "SELECT count(*) FROM pg_constraint WHERE conname = 'items_qty_nonneg' AND contype = 'c'";
  EXPECT_EQ(cluster.Scalar(db_at("add check", -1), check_sql), "0");
  EXPECT_EQ(cluster.Scalar(db_at("add check", 0), check_sql), "1");
  const std::string default_sql =
      "SELECT coalesce(column_default, '<none>') FROM information_schema.columns "
      "WHERE table_name = 'items' AND column_name = 'qty'";
  EXPECT_EQ(cluster.Scalar(db_at("set default", -1), default_sql), "<none>");
  EXPECT_EQ(cluster.Scalar(db_at("set default", 0), default_sql), "42");
  // Rows untouched since the snapshot went through ADD COLUMN ... DEFAULT 7
  // and ALTER TYPE ... USING on the target, as on the source.
  EXPECT_EQ(cluster.Scalar(db_at("add column with a default", 0),
                           "SELECT string_agg(DISTINCT c::text, ',') FROM items"),
            "7");
  EXPECT_EQ(cluster.Scalar(db_at("int to text using", 0), "SELECT c FROM items WHERE id = 1"),
            "c=7");
  // The CHECK is enforced in the restored database.
  EXPECT_FALSE(cluster.Exec(db_at("add check", 0), "UPDATE items SET qty = -1 WHERE id = 1").ok());

  // Every serial and identity default still inserts after each restore.
  for (size_t i = 0; i < moments.size(); i++) {
    SCOPED_TRACE("inserts with defaults after the restore to \"" + moments[i].instant.label + "\"");
    for (const std::string& sql : InsertsWithDefaults()) {
      EXPECT_OK(cluster.Exec("at" + std::to_string(i), sql));
    }
  }
}

TEST_F(SchemaChangeTest, RestoresToAnXidInclusiveOrExclusive) {
  RecordedSource& source = series_->source;
  const std::string& xid = series_->in_txn_xid;
  const std::string name = "dml, ddl, dml in one transaction";
  {
    SCOPED_TRACE("--to-xid " + xid);
    ExpectRestoredAs(source, RunRestore(source, {"--to-xid", xid}, "xid_incl"), "xid_incl",
                     MomentAt(name));
  }
  {
    SCOPED_TRACE("--to-xid " + xid + " --exclusive");
    ExpectRestoredAs(source, RunRestore(source, {"--to-xid", xid, "--exclusive"}, "xid_excl"),
                     "xid_excl", MomentBefore(name));
  }
  // An xid that never committed anything is refused, naming the range.
  CommandResult unknown = RunRestore(source, {"--to-xid", "4000000000"}, "xid_unknown");
  EXPECT_EQ(unknown.exit_code, 2) << unknown;
  EXPECT_NE(unknown.stderr_text.find("no transaction with xid 4000000000"), std::string::npos)
      << unknown;
}

TEST_F(SchemaChangeTest, RestoresToACommitLsnShownByTheChangelog) {
  RecordedSource& source = series_->source;
  CommandResult listing = RunChangelog(source, {"--format", "json"});
  ASSERT_EQ(listing.exit_code, 0) << listing;
  const std::vector<nlohmann::json> lines = JsonLines(listing.stdout_text);
  // The commit LSN of the transaction with DML around a DDL, and of the
  // query string with an ALTER and an UPDATE.
  std::string in_txn_lsn, multi_lsn;
  for (const nlohmann::json& j : lines) {
    if (std::to_string(j.value("xid", 0ull)) == series_->in_txn_xid) {
      if (!in_txn_lsn.empty()) {
        EXPECT_EQ(j.value("lsn", ""), in_txn_lsn) << j.dump();
      }
      in_txn_lsn = j.value("lsn", "");
    }
    if (j.value("op", "") == "ddl" && j.value("query", "") == kMultiStatement) {
      multi_lsn = j.value("lsn", "");
    }
  }
  ASSERT_FALSE(in_txn_lsn.empty()) << listing.stdout_text;
  ASSERT_FALSE(multi_lsn.empty()) << listing.stdout_text;
  const std::vector<std::tuple<std::string, std::string, std::string>> cases = {
      {in_txn_lsn, "dml, ddl, dml in one transaction", "lsn_txn"},
      {multi_lsn, "alter and update in one query string", "lsn_multi"}};
  for (const auto& [lsn, name, db] : cases) {
    {
      SCOPED_TRACE("--to-lsn " + lsn + " (" + name + ")");
      ExpectRestoredAs(source, RunRestore(source, {"--to-lsn", lsn}, db + "_incl"), db + "_incl",
                       MomentAt(name));
    }
    {
      SCOPED_TRACE("--to-lsn " + lsn + " --exclusive (" + name + ")");
      ExpectRestoredAs(source, RunRestore(source, {"--to-lsn", lsn, "--exclusive"}, db + "_excl"),
                       db + "_excl", MomentBefore(name));
    }
  }
}

TEST_F(SchemaChangeTest, ChangelogListsExactlyTheDdlStatementsInOrder) {
  RecordedSource& source = series_->source;
  CommandResult json = RunChangelog(source, {"--op", "ddl", "--format", "json"});
  ASSERT_EQ(json.exit_code, 0) << json;
  std::vector<std::pair<std::string, std::string>> listed;
  for (const nlohmann::json& j : JsonLines(json.stdout_text)) {
    EXPECT_EQ(j.value("op", ""), "ddl") << j.dump();
    listed.emplace_back(j.value("tag", ""), j.value("query", ""));
  }
  EXPECT_EQ(listed, series_->ddl);

  CommandResult text = RunChangelog(source, {"--op", "ddl"});
  ASSERT_EQ(text.exit_code, 0) << text;
  std::vector<std::string> text_lines;
  std::istringstream in(text.stdout_text);
  for (std::string line; std::getline(in, line);) text_lines.push_back(line);
  ASSERT_EQ(text_lines.size(), series_->ddl.size()) << text.stdout_text;
  for (size_t i = 0; i < text_lines.size(); i++) {
    const std::string want = "  DDL " + series_->ddl[i].first + ": " + series_->ddl[i].second;
    EXPECT_TRUE(text_lines[i].size() >= want.size() &&
                text_lines[i].compare(text_lines[i].size() - want.size(), want.size(), want) == 0)
        << "line " << i << ": \"" << text_lines[i] << "\"\nexpected it to end with \"" << want
        << "\"";
  }
}

// One header line of the plain listing.
struct ListedChange {
  std::string xid;
  uint64_t lsn = 0;
  std::string op;    // INSERT, UPDATE, DELETE, TRUNCATE, DDL, MARK, MESSAGE
  std::string rest;  // table and key, or "tag: query"
};

std::vector<ListedChange> ParseListing(const std::string& text) {
  static const std::regex kHeader(
      R"(^\d{4}-\d\d-\d\d \S+  xid (\d+)  ([0-9A-F]+/[0-9A-F]+)  ([A-Z]+) ?(.*)$)");
  std::vector<ListedChange> out;
  std::istringstream in(text);
  for (std::string line; std::getline(in, line);) {
    if (line.empty() || line[0] == ' ') continue;  // a value line of the change above
    std::smatch m;
    if (!std::regex_match(line, m, kHeader)) {
      ADD_FAILURE() << "unexpected listing line: " << line;
      continue;
    }
    out.push_back({m[1], LsnValue(m[2]), m[3], m[4]});
  }
  return out;
}

TEST_F(SchemaChangeTest, ChangelogShowsEachDdlAtItsPlaceAmongTheRowChanges) {
  RecordedSource& source = series_->source;
  CommandResult text = RunChangelog(source, {});
  ASSERT_EQ(text.exit_code, 0) << text;
  const std::vector<ListedChange> changes = ParseListing(text.stdout_text);
  ASSERT_FALSE(changes.empty()) << text.stdout_text;

  std::vector<std::string> ddl_shown;
  size_t rows_since_ddl = 0;
  for (size_t i = 0; i < changes.size(); i++) {
    if (i > 0) {
      EXPECT_GE(changes[i].lsn, changes[i - 1].lsn) << "line " << i << " out of LSN order";
    }
    if (changes[i].op == "DDL") {
      // Every DDL step came after a step with row changes.
      EXPECT_GT(rows_since_ddl, 0u) << "no row change before the DDL " << changes[i].rest;
      rows_since_ddl = 0;
      ddl_shown.push_back(changes[i].rest);
    } else if (changes[i].op == "INSERT" || changes[i].op == "UPDATE" ||
               changes[i].op == "DELETE") {
      rows_since_ddl++;
    }
  }
  EXPECT_GT(rows_since_ddl, 0u) << "no row change after the last DDL";
  std::vector<std::string> ddl_expected;
  for (const auto& [tag, query] : series_->ddl) ddl_expected.push_back(tag + ": " + query);
  EXPECT_EQ(ddl_shown, ddl_expected);

  // Inside the transaction: the insert, the DDL, the updates of the new
  // column, the insert after it, in statement order.
  std::vector<std::string> in_txn;
  for (const ListedChange& c : changes) {
    // The op and the first word: the table, or the DDL's tag.
    if (c.xid == series_->in_txn_xid)
      in_txn.push_back(c.op + " " + c.rest.substr(0, c.rest.find(' ')));
  }
  EXPECT_EQ(in_txn, (std::vector<std::string>{"INSERT public.orders", "DDL ALTER",
                                              "UPDATE public.orders", "UPDATE public.orders",
                                              "UPDATE public.orders", "INSERT public.orders"}))
      << text.stdout_text;

  // The query string with an ALTER and an UPDATE: the DDL, then one update
  // per item row.
  std::string multi_xid;
  for (const ListedChange& c : changes) {
    if (c.op == "DDL" && c.rest == std::string("ALTER TABLE: ") + kMultiStatement)
      multi_xid = c.xid;
  }
  ASSERT_FALSE(multi_xid.empty());
  std::vector<std::string> multi_ops;
  for (const ListedChange& c : changes) {
    if (c.xid == multi_xid) multi_ops.push_back(c.op);
  }
  const int64_t items_rows = MomentBefore("alter and update in one query string")
                                 .instant.fingerprints.at("public.items")
                                 .row_count;
  std::vector<std::string> expected_ops = {"DDL"};
  expected_ops.insert(expected_ops.end(), static_cast<size_t>(items_rows), "UPDATE");
  EXPECT_EQ(multi_ops, expected_ops);
}

TEST_F(SchemaChangeTest, RestoresOnlyATableAlteredAfterTheSnapshot) {
  RecordedSource& source = series_->source;
  PgCluster& cluster = source.cluster();
  const std::vector<std::pair<std::string, const Moment*>> points = {
      {"after_types", &MomentAt("int to text using")}, {"after_all", &series_->moments.back()}};
  for (const auto& [suffix, moment] : points) {
    SCOPED_TRACE("--tables public.items at \"" + moment->instant.label + "\"");
    const std::string db = "items_" + suffix;
    CommandResult result =
        RunRestore(source, {"--to", moment->instant.time, "--tables", "public.items"}, db);
    ASSERT_EQ(result.exit_code, 0) << result;
    EXPECT_TRUE(
        FingerprintsEqual({{"public.items", moment->instant.fingerprints.at("public.items")}},
                          cluster.DatabaseFingerprint(db)))
        << result.stdout_text;
    EXPECT_OK(cluster.Exec(db, "INSERT INTO items DEFAULT VALUES"));
  }
  // With its index and CHECK, and without the foreign key of a table left out.
  EXPECT_EQ(cluster.Scalar("items_after_all",
                           "SELECT count(*) FROM pg_indexes WHERE indexname = 'items_title_idx'"),
            "1");
  EXPECT_EQ(cluster.Scalar("items_after_all",
                           "SELECT string_agg(conname, ',' ORDER BY conname) FROM pg_constraint "
                           "WHERE conrelid = 'items'::regclass"),
            "items_pkey,items_qty_nonneg");

  // orders: a column added in a transaction with rows around it, and a
  // foreign key into items, which is left out.
  const Moment& last = series_->moments.back();
  CommandResult result =
      RunRestore(source, {"--to", last.instant.time, "--tables", "orders"}, "orders_only");
  ASSERT_EQ(result.exit_code, 0) << result;
  EXPECT_TRUE(FingerprintsEqual({{"public.orders", last.instant.fingerprints.at("public.orders")}},
                                cluster.DatabaseFingerprint("orders_only")))
      << result.stdout_text;
  EXPECT_OK(cluster.Exec("orders_only", "INSERT INTO orders DEFAULT VALUES"));
}

TEST_F(SchemaChangeTest, RestoresOnlyATableRenamedAfterTheSnapshotByItsNewName) {
  RecordedSource& source = series_->source;
  const Moment& last = series_->moments.back();
  CommandResult result =
      RunRestore(source, {"--to", last.instant.time, "--tables", "new_name"}, "renamed_only");
  ASSERT_EQ(result.exit_code, 0) << result;
  EXPECT_TRUE(
      FingerprintsEqual({{"public.new_name", last.instant.fingerprints.at("public.new_name")}},
                        source.cluster().DatabaseFingerprint("renamed_only")))
      << result.stdout_text;
}

TEST_F(SchemaChangeTest, RestoresOnlyATableCreatedAfterTheSnapshot) {
  RecordedSource& source = series_->source;
  const Moment& last = series_->moments.back();
  CommandResult result =
      RunRestore(source, {"--to", last.instant.time, "--tables", "public.tags"}, "created_only");
  ASSERT_EQ(result.exit_code, 0) << result;
  EXPECT_TRUE(FingerprintsEqual({{"public.tags", last.instant.fingerprints.at("public.tags")}},
                                source.cluster().DatabaseFingerprint("created_only")))
      << result.stdout_text;
}

// ---------------------------------------------------------------------------
// Epochs: rows changed after a schema change go in as a delta.

// A migration that adds, backfills and drops in one query string (as many
// migration tools send a file): the UPDATE's rows have the layout between
// the two ALTERs.
TEST(SchemaChangeEpochTest, RestoresAQueryStringThatAddsBackfillsAndDropsAColumn) {
  RecordedSource source;
  ASSERT_OK(
      source.Start("CREATE TABLE prices (id serial PRIMARY KEY, amount numeric); "
                   "INSERT INTO prices (amount) VALUES (1.5), (2.25), (3)"));
  ASSERT_OK(source.StartAgent());
  std::vector<Moment> moments;
  ASSERT_OK(RecordStep(&source, &moments, "snapshot only", ""));
  ASSERT_OK(RecordStep(&source, &moments, "dml", "INSERT INTO prices (amount) VALUES (4.75)"));
  ASSERT_OK(RecordStep(&source, &moments, "add, backfill, drop in one string",
                       "ALTER TABLE prices ADD COLUMN cents bigint; "
                       "UPDATE prices SET cents = amount * 100; "
                       "ALTER TABLE prices DROP COLUMN amount"));
  ASSERT_OK(RecordStep(&source, &moments, "dml after", "INSERT INTO prices (cents) VALUES (500)"));
  ASSERT_OK(source.CommitAfterLastInstant("INSERT INTO prices (cents) VALUES (600)"));
  for (size_t i = 0; i < moments.size(); i++) {
    SCOPED_TRACE("restore to \"" + moments[i].instant.label + "\"");
    const std::string db = "p" + std::to_string(i);
    ExpectRestoredAs(source, RunRestore(source, {"--to", moments[i].instant.time}, db), db,
                     moments[i]);
  }
}

// Rows of a GENERATED ALWAYS identity column keep their ids when they are
// applied after a schema change.
TEST(SchemaChangeEpochTest, AppliesRowsOfAGeneratedAlwaysIdentityTableAfterADdl) {
  RecordedSource source;
  ASSERT_OK(source.Start(
      "CREATE TABLE events (id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY, what text); "
      "INSERT INTO events (what) VALUES ('one'), ('two'), ('three')"));
  ASSERT_OK(source.StartAgent());
  std::vector<Moment> moments;
  ASSERT_OK(RecordStep(&source, &moments, "snapshot only", ""));
  ASSERT_OK(
      RecordStep(&source, &moments, "rows before the ddl",
                 "INSERT INTO events (what) VALUES ('four'); DELETE FROM events WHERE id = 2"));
  ASSERT_OK(RecordStep(&source, &moments, "add column",
                       "ALTER TABLE events ADD COLUMN level int DEFAULT 1"));
  ASSERT_OK(RecordStep(&source, &moments, "rows after the ddl",
                       "INSERT INTO events (what, level) VALUES ('five', 5); "
                       "UPDATE events SET level = 3 WHERE id = 1"));
  ASSERT_OK(source.CommitAfterLastInstant("INSERT INTO events (what) VALUES ('tail')"));
  for (size_t i = 0; i < moments.size(); i++) {
    SCOPED_TRACE("restore to \"" + moments[i].instant.label + "\"");
    const std::string db = "e" + std::to_string(i);
    const CommandResult result = RunRestore(source, {"--to", moments[i].instant.time}, db);
    ExpectRestoredAs(source, result, db, moments[i]);
    if (result.exit_code == 0) {
      EXPECT_OK(source.cluster().Exec(db, "INSERT INTO events (what) VALUES ('after restore')"));
    }
  }
}

// ---------------------------------------------------------------------------
// Marks, --list, --clean.

constexpr char kShopSchema[] = R"sql(
CREATE TABLE accounts (id serial PRIMARY KEY, owner text, balance int);
CREATE TABLE audit (id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY, what text);
INSERT INTO accounts (owner, balance) SELECT 'owner ' || g, g * 10 FROM generate_series(1, 20) g;
INSERT INTO audit (what) VALUES ('opened');
)sql";

constexpr char kMigration[] =
    "ALTER TABLE accounts ADD COLUMN currency text DEFAULT 'EUR'; "
    "UPDATE accounts SET balance = balance * 100";

// pgtrail-agent mark NAME --source <src>.
CommandResult RunMark(RecordedSource& source, const std::string& name) {
  return RunCommand({kAgentBin, "mark", name, "--source", source.cluster().ConnInfo("src")});
}

// The shop up to a mark "before-migration" (moments: snapshot, rows changed;
// the mark comes right after the second).
void RecordShopUpToTheMark(RecordedSource* source, std::vector<Moment>* moments,
                           CommandResult* mark) {
  ASSERT_OK(source->Start(kShopSchema));
  ASSERT_OK(source->StartAgent());
  ASSERT_OK(RecordStep(source, moments, "snapshot only", ""));
  ASSERT_OK(RecordStep(source, moments, "before the mark", R"sql(
    UPDATE accounts SET balance = balance + 1 WHERE id <= 5;
    INSERT INTO audit (what) VALUES ('paid');
    DELETE FROM accounts WHERE id = 20;
  )sql"));
  *mark = RunMark(*source, "before-migration");
  ASSERT_EQ(mark->exit_code, 0) << *mark;
}

TEST(SchemaChangeMarkTest, RestoresToAMarkRecordedBeforeAMigration) {
  RecordedSource source;
  std::vector<Moment> moments;
  CommandResult mark;
  RecordShopUpToTheMark(&source, &moments, &mark);
  ASSERT_FALSE(::testing::Test::HasFatalFailure());
  EXPECT_NE(mark.stdout_text.find("mark \"before-migration\" recorded at LSN "), std::string::npos)
      << mark;
  ASSERT_OK(RecordStep(&source, &moments, "migration", kMigration));
  ASSERT_OK(RecordStep(&source, &moments, "after the migration",
                       "INSERT INTO accounts (owner, balance) VALUES ('new', 5); "
                       "UPDATE accounts SET currency = 'USD' WHERE id = 2"));
  CommandResult second = RunMark(source, "after-migration");
  ASSERT_EQ(second.exit_code, 0) << second;
  ASSERT_OK(source.CatchUp());

  {
    SCOPED_TRACE("--to-mark before-migration");
    ExpectRestoredAs(source, RunRestore(source, {"--to-mark", "before-migration"}, "m_before"),
                     "m_before", moments[1]);
    EXPECT_OK(source.cluster().Exec("m_before",
                                    "INSERT INTO accounts DEFAULT VALUES; "
                                    "INSERT INTO audit DEFAULT VALUES"));
  }
  {
    // The mark's transaction holds nothing else: exclusive is the same state.
    SCOPED_TRACE("--to-mark before-migration --exclusive");
    ExpectRestoredAs(source,
                     RunRestore(source, {"--to-mark", "before-migration", "--exclusive"}, "m_excl"),
                     "m_excl", moments[1]);
  }
  {
    SCOPED_TRACE("--to-mark after-migration");
    ExpectRestoredAs(source, RunRestore(source, {"--to-mark", "after-migration"}, "m_after"),
                     "m_after", moments[3]);
  }

  CommandResult unknown = RunRestore(source, {"--to-mark", "release-41"}, "m_unknown");
  EXPECT_EQ(unknown.exit_code, 2) << unknown;
  EXPECT_NE(unknown.stderr_text.find(
                "no mark \"release-41\" in the store; marks: before-migration, after-migration"),
            std::string::npos)
      << unknown;
  CommandResult invalid = RunRestore(source, {"--to-mark", "bad name!"}, "m_invalid");
  EXPECT_EQ(invalid.exit_code, 2) << invalid;
  EXPECT_NE(invalid.stderr_text.find("invalid --to-mark \"bad name!\""), std::string::npos)
      << invalid;
  CommandResult invalid_mark = RunMark(source, "bad name!");
  EXPECT_EQ(invalid_mark.exit_code, 2) << invalid_mark;
  EXPECT_NE(invalid_mark.stderr_text.find("invalid mark name \"bad name!\""), std::string::npos)
      << invalid_mark;
  EXPECT_EQ(source.cluster().Scalar("postgres",
                                    "SELECT count(*) FROM pg_database WHERE datname "
                                    "IN ('m_unknown', 'm_invalid')"),
            "0");

  // changelog --op mark: both marks, in order, with their commit LSN.
  CommandResult marks = RunChangelog(source, {"--op", "mark", "--format", "json"});
  ASSERT_EQ(marks.exit_code, 0) << marks;
  const std::vector<nlohmann::json> mark_lines = JsonLines(marks.stdout_text);
  ASSERT_EQ(mark_lines.size(), 2u) << marks.stdout_text;
  EXPECT_EQ(mark_lines[0].value("op", ""), "mark");
  EXPECT_EQ(mark_lines[0].value("name", ""), "before-migration");
  EXPECT_EQ(mark_lines[1].value("name", ""), "after-migration");
  CommandResult marks_text = RunChangelog(source, {"--op", "mark"});
  ASSERT_EQ(marks_text.exit_code, 0) << marks_text;
  EXPECT_TRUE(std::regex_search(marks_text.stdout_text,
                                std::regex("  MARK before-migration\n.*  MARK after-migration\n")))
      << marks_text.stdout_text;

  // --list, text.
  CommandResult list = RunRestore(source, {"--list"}, "");
  ASSERT_EQ(list.exit_code, 0) << list;
  EXPECT_TRUE(std::regex_search(
      list.stdout_text,
      std::regex("base snapshots:\n  [0-9]+  [0-9-]+ [0-9:.]+\\+00  LSN [0-9A-F]+/[0-9A-F]+  2 "
                 "tables, 21 rows\n")))
      << list.stdout_text;
  EXPECT_TRUE(std::regex_search(
      list.stdout_text,
      std::regex("marks:\n  before-migration  [0-9-]+ [0-9:.]+\\+00  LSN [0-9A-F]+/[0-9A-F]+  xid "
                 "[0-9]+\n  after-migration  ")))
      << list.stdout_text;

  // --list --format json: one object.
  CommandResult list_json = RunRestore(source, {"--list", "--format", "json"}, "");
  ASSERT_EQ(list_json.exit_code, 0) << list_json;
  const nlohmann::json j = nlohmann::json::parse(list_json.stdout_text, nullptr, false);
  ASSERT_TRUE(j.is_object()) << list_json.stdout_text;
  ASSERT_TRUE(j.contains("range")) << list_json.stdout_text;
  for (const char* key : {"from_time", "to_time", "from_lsn", "to_lsn"}) {
    EXPECT_TRUE(j["range"].contains(key) && j["range"][key].is_string()) << key;
  }
  EXPECT_LE(LsnValue(j["range"].value("from_lsn", "0/0")),
            LsnValue(j["range"].value("to_lsn", "0/0")));
  ASSERT_TRUE(j["snapshots"].is_array());
  ASSERT_EQ(j["snapshots"].size(), 1u);
  EXPECT_EQ(j["snapshots"][0].value("tables", 0), 2);
  EXPECT_EQ(j["snapshots"][0].value("rows", 0), 21);
  EXPECT_EQ(j["snapshots"][0].value("lsn", ""), j["range"].value("from_lsn", ""));
  ASSERT_TRUE(j["marks"].is_array());
  ASSERT_EQ(j["marks"].size(), 2u) << list_json.stdout_text;
  const nlohmann::json& first = j["marks"][0];
  EXPECT_EQ(first.value("name", ""), "before-migration");
  EXPECT_TRUE(first.contains("time") && first["time"].is_string());
  EXPECT_TRUE(first.contains("xid") && first["xid"].is_number());
  // The same transaction as changelog shows, and as the mark command printed.
  EXPECT_EQ(first.value("lsn", ""), mark_lines[0].value("lsn", "?"));
  EXPECT_EQ(first.value("xid", 0ull), mark_lines[0].value("xid", 1ull));
  EXPECT_NE(mark.stdout_text.find("(xid " + std::to_string(first.value("xid", 0ull)) + ")"),
            std::string::npos)
      << mark;
  EXPECT_EQ(j["marks"][1].value("name", ""), "after-migration");
}

// A database that is not empty: other schemas, a table named like one of
// the source's, rows.
constexpr char kBusyTarget[] = R"sql(
CREATE SCHEMA junk;
CREATE TABLE junk.stuff (a int);
CREATE TABLE accounts (id int, other text);
INSERT INTO accounts VALUES (1, 'not from the source');
CREATE SEQUENCE leftover;
)sql";

TEST(SchemaChangeCleanTest, CleanReplacesANonEmptyTargetOnlyWhenConfirmed) {
  RecordedSource source;
  std::vector<Moment> moments;
  ASSERT_OK(source.Start(kShopSchema));
  ASSERT_OK(source.StartAgent());
  ASSERT_OK(RecordStep(&source, &moments, "snapshot only", ""));
  ASSERT_OK(RecordStep(&source, &moments, "migration", kMigration));
  ASSERT_OK(RecordStep(&source, &moments, "rows", "INSERT INTO accounts (owner) VALUES ('x')"));
  ASSERT_OK(source.CommitAfterLastInstant("DELETE FROM accounts WHERE id = 1"));
  PgCluster& cluster = source.cluster();

  ASSERT_OK(cluster.CreateDatabase("busy"));
  ASSERT_OK(cluster.Exec("busy", kBusyTarget));
  CommandResult cleaned =
      RunRestore(source, {"--to", moments[1].instant.time, "--clean", "--yes"}, "busy");
  ExpectRestoredAs(source, cleaned, "busy", moments[1]);
  EXPECT_EQ(cluster.Scalar("busy",
                           "SELECT to_regnamespace('junk') IS NULL AND "
                           "to_regclass('public.leftover') IS NULL"),
            "t");
  EXPECT_OK(cluster.Exec("busy",
                         "INSERT INTO accounts DEFAULT VALUES; INSERT INTO audit DEFAULT VALUES"));

  // No --yes and no terminal to ask on: refused, nothing changed.
  ASSERT_OK(cluster.CreateDatabase("busy2"));
  ASSERT_OK(cluster.Exec("busy2", kBusyTarget));
  const DatabaseFingerprints before = cluster.DatabaseFingerprint("busy2");
  const std::string objects_before = SchemaObjects(cluster, "busy2");
  CommandResult refused = RunRestore(source, {"--to", moments[2].instant.time, "--clean"}, "busy2");
  EXPECT_EQ(refused.exit_code, 6) << refused;
  EXPECT_NE(refused.stderr_text.find("needs a confirmation"), std::string::npos) << refused;
  EXPECT_TRUE(FingerprintsEqual(before, cluster.DatabaseFingerprint("busy2")));
  EXPECT_EQ(SchemaObjects(cluster, "busy2"), objects_before);
  EXPECT_EQ(cluster.Scalar("busy2", "SELECT to_regclass('public.leftover') IS NOT NULL"), "t");

  // And without --clean a non-empty target is refused as before.
  CommandResult not_empty = RunRestore(source, {"--to", moments[2].instant.time}, "busy2");
  EXPECT_EQ(not_empty.exit_code, 6) << not_empty;
  EXPECT_NE(not_empty.stderr_text.find("is not empty"), std::string::npos) << not_empty;
}

TEST(SchemaChangeCleanTest, RestoresTheSourceItselfToTheMarkBeforeAFailedMigration) {
  // README: mark, migrate, it went wrong: stop, restore the source itself.
  RecordedSource source;
  std::vector<Moment> moments;
  CommandResult mark;
  RecordShopUpToTheMark(&source, &moments, &mark);
  ASSERT_FALSE(::testing::Test::HasFatalFailure());
  ASSERT_OK(RecordStep(&source, &moments, "migration", kMigration));
  ASSERT_OK(RecordStep(&source, &moments, "more rows",
                       "INSERT INTO accounts (owner, currency) VALUES ('after', 'GBP')"));
  ASSERT_FALSE(FingerprintsEqual(moments[1].instant.fingerprints, moments[3].instant.fingerprints));

  ASSERT_OK(source.agent().Kill(SIGTERM));
  EXPECT_EQ(source.agent().WaitExit(std::chrono::seconds(20)), std::optional<int>(0))
      << source.agent().LogContents();
  CommandResult result = RunRestore(source, {"--to-mark", "before-migration", "--clean", "--yes"},
                                    RecordedSource::kSourceDb);
  ExpectRestoredAs(source, result, RecordedSource::kSourceDb, moments[1]);
  EXPECT_OK(source.cluster().Exec(RecordedSource::kSourceDb,
                                  "INSERT INTO accounts (owner) VALUES ('after the restore'); "
                                  "INSERT INTO audit (what) VALUES ('restored')"));
}

TEST(SchemaChangeCleanTest, KeepsRecordingTheSourceAfterItWasRestoredInPlace) {
  // After the README's in-place restore the agent starts again on the same
  // store: the history goes on, and every point of it still restores.
  RecordedSource source;
  std::vector<Moment> moments;
  CommandResult mark;
  RecordShopUpToTheMark(&source, &moments, &mark);
  ASSERT_FALSE(::testing::Test::HasFatalFailure());
  ASSERT_OK(RecordStep(&source, &moments, "migration", kMigration));
  ASSERT_OK(source.agent().Kill(SIGTERM));
  ASSERT_EQ(source.agent().WaitExit(std::chrono::seconds(20)), std::optional<int>(0))
      << source.agent().LogContents();
  CommandResult in_place = RunRestore(source, {"--to-mark", "before-migration", "--clean", "--yes"},
                                      RecordedSource::kSourceDb);
  ASSERT_EQ(in_place.exit_code, 0) << in_place;

  ASSERT_OK(source.StartAgent());
  ASSERT_OK(RecordStep(&source, &moments, "in place restored", ""));
  ASSERT_OK(RecordStep(&source, &moments, "rows after the in-place restore",
                       "INSERT INTO accounts (owner) VALUES ('later'); "
                       "UPDATE accounts SET balance = 0 WHERE id = 1"));
  ASSERT_OK(RecordStep(&source, &moments, "ddl after the in-place restore",
                       "ALTER TABLE accounts ADD COLUMN note text DEFAULT 'n'"));
  ASSERT_OK(source.CommitAfterLastInstant("INSERT INTO audit (what) VALUES ('tail')"));
  EXPECT_TRUE(source.agent().IsRunning()) << source.agent().LogContents();
  EXPECT_TRUE(FingerprintsEqual(moments[1].instant.fingerprints, moments[3].instant.fingerprints));

  for (size_t i = 0; i < moments.size(); i++) {
    SCOPED_TRACE("restore to \"" + moments[i].instant.label + "\" at " + moments[i].instant.time);
    const std::string db = "again" + std::to_string(i);
    ExpectRestoredAs(source, RunRestore(source, {"--to", moments[i].instant.time}, db), db,
                     moments[i]);
  }
  {
    SCOPED_TRACE("--to-mark before-migration after the in-place restore");
    ExpectRestoredAs(source, RunRestore(source, {"--to-mark", "before-migration"}, "mark_again"),
                     "mark_again", moments[1]);
  }
}

}  // namespace
}  // namespace pgtrail::testing
