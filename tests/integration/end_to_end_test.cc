// End to end: a real PostgreSQL 15, the real pgtrail-agent streaming it, and
// pitr-restore rebuilding the database at instants recorded while the source
// changed. A restore must equal the source at that instant, table by table:
// same columns and types, same multiset of rows (see Fingerprint).
//
// Each test: schema and initial data (the base snapshot), start the agent,
// then steps; after each step's commit the instant (server clock) and the
// source's fingerprints are recorded. One more commit follows the last
// instant, because a restore refuses times after the last captured commit.
#include <gtest/gtest.h>

#include <chrono>
#include <cstdint>
#include <regex>
#include <string>
#include <utility>
#include <vector>

#include "tests/integration/e2e_helpers.h"
#include "tests/integration/pg_cluster.h"

namespace pgtrail::testing {
namespace {

// "schema.table" -> {"schema", "table"} (our test names hold no dot in the schema).
std::pair<std::string, std::string> SplitName(const std::string& name) {
  const size_t dot = name.find('.');
  return {name.substr(0, dot), name.substr(dot + 1)};
}

// Restores `instant` into a new database `target_db`; expects exit 0 and the
// same fingerprints as recorded (all tables, or only the recorded ones when
// `only_recorded_tables`); then runs `after_restore_sql`, statements that
// insert through serial defaults, which must not collide with restored rows.
void ExpectRestoreMatches(RecordedSource& source, const Instant& instant,
                          const std::string& target_db,
                          const std::vector<std::string>& after_restore_sql,
                          bool only_recorded_tables = false) {
  SCOPED_TRACE("restore to \"" + instant.label + "\" at " + instant.time + " into " + target_db);
  CommandResult result = source.Restore(instant.time, target_db);
  ASSERT_EQ(result.exit_code, 0) << result;
  if (only_recorded_tables) {
    for (const auto& [name, expected] : instant.fingerprints) {
      const auto [schema, table] = SplitName(name);
      EXPECT_EQ(source.cluster().TableFingerprint(target_db, schema, table), expected) << name;
    }
  } else {
    EXPECT_TRUE(FingerprintsEqual(instant.fingerprints,
                                  source.cluster().DatabaseFingerprint(target_db)))
        << "pitr-restore said:\n"
        << result.stdout_text;
  }
  for (const std::string& sql : after_restore_sql) {
    EXPECT_OK(source.cluster().Exec(target_db, sql));
  }
}

// Restores every recorded instant i into database "r<i>".
void ExpectEveryInstantRestores(RecordedSource& source,
                                const std::vector<std::string>& after_restore_sql) {
  // Each step changed something, so a restore to a neighbouring instant
  // cannot pass for this one.
  for (size_t i = 1; i < source.instants().size(); i++) {
    EXPECT_FALSE(FingerprintsEqual(source.instants()[i - 1].fingerprints,
                                   source.instants()[i].fingerprints))
        << "step \"" << source.instants()[i].label << "\" changed nothing";
  }
  for (size_t i = 0; i < source.instants().size(); i++) {
    ExpectRestoreMatches(source, source.instants()[i], "r" + std::to_string(i), after_restore_sql);
  }
}

// count(*) of a table; -1 if it cannot be read (the failure is reported).
int64_t RowCount(PgCluster& cluster, const std::string& db, const std::string& table) {
  const std::string count = cluster.Scalar(db, "SELECT count(*) FROM " + table);
  return count.find_first_not_of("0123456789") == std::string::npos && !count.empty()
             ? std::stoll(count)
             : -1;
}

// ---------------------------------------------------------------------------
// 1. Values of every common type survive snapshot, stream and restore exactly.

constexpr char kTypesSchema[] = R"sql(
CREATE TABLE typed (
  id serial PRIMARY KEY,
  n numeric, n_fixed numeric(20,4), t text, vc varchar(20), ch char(5),
  b bytea, ia int[], ta text[], j jsonb, js json, u uuid, iv interval,
  r4 int4range, rtz tstzrange, ip inet, net cidr, m money,
  f8 double precision, f4 real, ts timestamptz, tsn timestamp, d date, tm time,
  flag boolean);
INSERT INTO typed (n, n_fixed, t, vc, ch, b, ia, ta, j, js, u, iv, r4, rtz, ip, net, m,
                   f8, f4, ts, tsn, d, tm, flag) VALUES
 ('NaN', 12345678.1234,
  E'tab\there\nnew line\\back\\slash ''single'' "double" \\N end', 'varchar', 'ab',
  '\x00ff00', '{1,NULL,3}', ARRAY['a"b', NULL, 'c,d', 'back\slash', '', 'NULL', '{x}', ' sp '],
  '{"a": [1, "x\ny", null], "b": {"c": "é", "d": 1.50}}', '{ "keep" :  "spacing", "k": 1, "k": 2 }',
  'a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11', '1 year 2 mons 3 days 04:05:06.789', '[1,10)',
  '["2024-01-01 00:00:00+00",infinity)', '192.168.0.1/24', '10.0.0.0/8', 1234.56,
  'NaN', 'NaN', '2024-02-29 12:34:56.789012+05:30', '2024-02-29 12:34:56.789012', '2024-02-29',
  '23:59:59.999999', true),
 (('1' || repeat('0', 130) || '.' || repeat('3', 200))::numeric, NULL, '', '', '', '\x', '{}',
  '{}', '[]', '""', NULL, '0', 'empty', 'empty', NULL, NULL, 0, 0, 0, NULL, NULL, NULL, NULL,
  false);
INSERT INTO typed DEFAULT VALUES;
)sql";

constexpr char kTypesInsert[] = R"sql(
INSERT INTO typed (n, n_fixed, t, vc, ch, b, ia, ta, j, js, u, iv, r4, rtz, ip, net, m,
                   f8, f4, ts, tsn, d, tm, flag) VALUES
 (-0.000000000000000000000000000001, -99.5, '😀 漢字 ñ Ωmega', '漢字', 'é', '\x5c4e00',
  '{{1,2},{3,4}}', '{"{\"quoted\"}", "\\N", "tab\there"}',
  '{"emoji": "😀", "esc": "\\\\N", "num": 1e2}', '[1, 2.50, "\u0041"]',
  gen_random_uuid(), '-1 days +02:03:04', '(,5]',
  '(2024-01-01 10:00:00+02,2024-06-01 00:00:00+00]', '::1', '2001:db8::/32', -1.5,
  '-0', '-0', 'infinity', '-infinity', '4713-01-01 BC', '00:00:00', NULL),
 (0, 0, '\N', NULL, NULL, NULL, '{NULL}', '{NULL,"NULL"}', 'null', 'null', NULL,
  '178000000 years', '[-2147483648,2147483647)', '[-infinity,infinity]', '0.0.0.0/0',
  '0.0.0.0/0', '92233720368547758.07', 1e300, 3.4e38, '0001-01-01 00:00:00+00 BC',
  '294276-12-31 23:59:59.999999', 'infinity', '24:00:00', true),
 (('-' || repeat('9', 1000) || '.' || repeat('1', 1000))::numeric, 1e15,
  E'carriage\rreturn\r\nctl\x01 bell\x07 vtab\x0b formfeed\f trailing backslash\\', NULL,
  NULL, '\x00', NULL, ARRAY[E'line\nbreak', E'back\\slash', 'comma,brace}'], '{}', '{}', NULL,
  NULL, NULL, NULL, NULL, NULL, '-0.01', '-Infinity', 'Infinity', NULL, NULL, NULL, NULL,
  false),
 (1e-300::numeric, NULL, 'plain', NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL,
  NULL, NULL, NULL, NULL, 1e-300, 1.17549435e-38, NULL, NULL, NULL, NULL, NULL);
)sql";

// ids: 1..3 from the snapshot, 4..7 from kTypesInsert.
constexpr char kTypesUpdate[] = R"sql(
UPDATE typed SET t = t || E'\n更新 \\N', ia = array_append(ia, NULL),
                 ta = ta || ARRAY['new "one"'], j = j || '{"added": "a\\\\b"}' WHERE id = 1;
UPDATE typed SET t = NULL, b = NULL, vc = NULL WHERE id = 2;
UPDATE typed SET t = '', b = '\x', d = NULL, n = n * 2 WHERE id = 5;
UPDATE typed SET flag = NOT flag, f8 = f8 * -1, m = m - 1::money WHERE flag IS NOT NULL;
UPDATE typed SET t = 'was all null', ia = '{7}' WHERE id = 3;
)sql";

constexpr char kTypesDelete[] = R"sql(
DELETE FROM typed WHERE id IN (3, 6);
INSERT INTO typed DEFAULT VALUES;
UPDATE typed SET ts = ts + interval '1 microsecond', f4 = 'NaN' WHERE id = 1;
)sql";

TEST(EndToEndTest, RestoresEveryTypeExactlyAtEachInstant) {
  RecordedSource source;
  ASSERT_OK(source.Start(kTypesSchema));
  ASSERT_OK(source.StartAgent());
  ASSERT_OK(source.Step("snapshot only", ""));
  ASSERT_OK(source.Step("inserts", kTypesInsert));
  ASSERT_OK(source.Step("updates", kTypesUpdate));
  ASSERT_OK(source.Step("deletes", kTypesDelete));
  ASSERT_OK(source.CommitAfterLastInstant("INSERT INTO typed (t) VALUES ('tail')"));

  EXPECT_EQ(source.instants()[1].fingerprints.at("public.typed").row_count, 7);

  ExpectEveryInstantRestores(source, {"INSERT INTO typed (t) VALUES ('after restore')"});
}

// ---------------------------------------------------------------------------
// 2. Quoted, mixed-case, reserved and spaced names, in two schemas.

constexpr char kNamesSchema[] = R"sql(
CREATE TABLE "Order Items" ("Select" int, "user id" text, "Weird""Quote" numeric,
                            "order" serial UNIQUE, "From" text,
                            PRIMARY KEY ("Select", "user id"));
CREATE INDEX "Idx ""Q"" From" ON "Order Items" ("From");
CREATE SCHEMA "Other Schema";
CREATE TABLE "Other Schema"."Order Items" (
  "ID" serial PRIMARY KEY, "Value" text, "Select" int, "user id" text,
  FOREIGN KEY ("Select", "user id") REFERENCES public."Order Items" ("Select", "user id")
    ON UPDATE CASCADE ON DELETE SET NULL);
CREATE TABLE "Other Schema"."lower case" ("table" text PRIMARY KEY, "Column" int);
CREATE TABLE "dotted.name" ("a.b" int PRIMARY KEY, "ünïcödé 列" text);
INSERT INTO "dotted.name" VALUES (1, 'one');
INSERT INTO "Order Items" ("Select", "user id", "Weird""Quote", "From")
  VALUES (1, 'alice', 1.5, 'web'), (2, 'bob', NULL, 'shop'), (3, 'carol', 3, NULL);
INSERT INTO "Other Schema"."Order Items" ("Value", "Select", "user id")
  VALUES ('for alice', 1, 'alice'), ('for bob', 2, 'bob'), ('orphan', NULL, NULL);
INSERT INTO "Other Schema"."lower case" VALUES ('select', 1), ('from', 2);
)sql";

TEST(EndToEndTest, RestoresQuotedMixedCaseNamesInTwoSchemas) {
  RecordedSource source;
  ASSERT_OK(source.Start(kNamesSchema));
  ASSERT_OK(source.StartAgent());
  ASSERT_OK(source.Step("snapshot only", ""));
  ASSERT_OK(source.Step("key update cascades and insert", R"sql(
    UPDATE "Order Items" SET "Select" = "Select" + 100 WHERE "user id" <> 'carol';
    INSERT INTO "Order Items" ("Select", "user id", "From") VALUES (4, 'dave "the" \ man', 'api');
  )sql"));
  ASSERT_OK(source.Step("update, delete with SET NULL, key change", R"sql(
    UPDATE "Order Items" SET "Weird""Quote" = 42 WHERE "Select" = 102;
    DELETE FROM "Order Items" WHERE "user id" = 'alice';
    UPDATE "Other Schema"."lower case" SET "table" = 'where' WHERE "table" = 'from';
  )sql"));
  ASSERT_OK(source.Step("delete and insert in the other schema", R"sql(
    DELETE FROM "Other Schema"."Order Items" WHERE "Value" = 'orphan';
    INSERT INTO "Other Schema"."Order Items" ("Value") VALUES ('new');
    UPDATE "dotted.name" SET "a.b" = 2, "ünïcödé 列" = '二';
  )sql"));
  ASSERT_OK(source.CommitAfterLastInstant(
      "INSERT INTO \"Other Schema\".\"lower case\" VALUES ('tail', 0)"));

  ASSERT_EQ(source.instants()[0].fingerprints.count("Other Schema.Order Items"), 1u);
  ASSERT_EQ(source.instants()[0].fingerprints.count("public.Order Items"), 1u);
  const std::vector<std::string> after = {
      "INSERT INTO \"Order Items\" (\"Select\", \"user id\") VALUES (9999, 'after')",
      "INSERT INTO \"Other Schema\".\"Order Items\" (\"Value\") VALUES ('after')"};
  ExpectEveryInstantRestores(source, after);

  // An existing but empty target database is used as it is.
  ASSERT_OK(source.cluster().CreateDatabase("Empty Target"));
  ExpectRestoreMatches(source, source.instants().back(), "Empty Target", after);
}

// ---------------------------------------------------------------------------
// 3. Keys: composite keys that change, keyless multisets with duplicates,
//    unchanged TOAST values, TRUNCATE, and a table that stays empty.

constexpr char kKeysSchema[] = R"sql(
CREATE TABLE pairs (a int, b text, v text, PRIMARY KEY (a, b));
CREATE TABLE bag (x int, y text);
ALTER TABLE bag REPLICA IDENTITY FULL;
CREATE TABLE docs (id serial PRIMARY KEY, body text, note text);
ALTER TABLE docs ALTER COLUMN body SET STORAGE EXTERNAL;
CREATE TABLE logs (id bigserial PRIMARY KEY, msg text);
CREATE TABLE never_used (id serial PRIMARY KEY, v text);
INSERT INTO pairs VALUES (1, 'x', 'one'), (2, 'x', 'two'), (2, 'y', 'two y'), (3, 'z', NULL);
INSERT INTO bag VALUES (1, 'dup'), (1, 'dup'), (1, 'dup'), (2, NULL), (2, NULL), (NULL, NULL);
INSERT INTO docs (body, note) VALUES
  ((SELECT string_agg(md5(random()::text), '') FROM generate_series(1, 3500)), 'snap');
INSERT INTO logs (msg) SELECT 'log ' || g FROM generate_series(1, 10) g;
)sql";

TEST(EndToEndTest, RestoresKeyChangesMultisetsToastAndTruncate) {
  RecordedSource source;
  ASSERT_OK(source.Start(kKeysSchema));
  // The body is stored out of line, so an UPDATE of `note` sends it as
  // "unchanged TOAST" and the agent must fill it in from the row's last image.
  ASSERT_EQ(source.cluster().Scalar(
                "src", "SELECT pg_column_size(body) > 100000 FROM docs WHERE note = 'snap'"),
            "t");
  ASSERT_EQ(source.cluster().Scalar("src",
                                    "SELECT c.reltoastrelid <> 0 FROM pg_class c "
                                    "WHERE c.oid = 'docs'::regclass"),
            "t");
  ASSERT_OK(source.StartAgent());
  ASSERT_OK(source.Step("snapshot only", ""));
  ASSERT_OK(source.Step("key shift, toast insert, one duplicate deleted", R"sql(
    UPDATE pairs SET a = a + 100;
    INSERT INTO docs (body, note) VALUES
      ((SELECT string_agg(md5(random()::text), '') FROM generate_series(1, 3500)), 'stream');
    DELETE FROM bag WHERE ctid = (SELECT ctid FROM bag WHERE x = 1 LIMIT 1);
    INSERT INTO bag VALUES (3, 'new'), (3, 'new');
  )sql"));
  ASSERT_OK(source.Step("toast unchanged, one duplicate updated, truncate", R"sql(
    UPDATE docs SET note = note || ' updated';
    UPDATE bag SET y = 'changed' WHERE ctid = (SELECT ctid FROM bag WHERE x = 2 LIMIT 1);
    TRUNCATE logs;
  )sql"));
  ASSERT_OK(source.Step("re-insert after truncate, second key column changes", R"sql(
    INSERT INTO logs (msg) VALUES ('after truncate 1'), ('after truncate 2');
    UPDATE docs SET note = 'again' WHERE note LIKE 'stream%';
    UPDATE pairs SET b = b || '!' WHERE a = 102;
    UPDATE pairs SET v = NULL WHERE a = 101;
    DELETE FROM bag WHERE ctid = (SELECT ctid FROM bag WHERE x = 1 LIMIT 1);
    DELETE FROM bag WHERE ctid = (SELECT ctid FROM bag WHERE x = 3 LIMIT 1);
  )sql"));
  ASSERT_OK(source.Step("key change with unchanged toast; truncate inside a transaction", R"sql(
    UPDATE docs SET id = id + 1000, note = 'moved' WHERE note = 'again';
    BEGIN;
    INSERT INTO logs (msg) VALUES ('doomed');
    TRUNCATE logs;
    INSERT INTO logs (msg) VALUES ('reborn');
    COMMIT;
    UPDATE docs SET note = 'snap 3' WHERE note LIKE 'snap%';
  )sql"));
  ASSERT_OK(source.Step("toast inserted and updated in one transaction and in the next", R"sql(
    BEGIN;
    INSERT INTO docs (body, note) VALUES
      ((SELECT string_agg(md5(random()::text), '') FROM generate_series(1, 3500)), 'same txn');
    UPDATE docs SET note = 'same txn updated' WHERE note = 'same txn';
    COMMIT;
    UPDATE docs SET note = 'next txn updated' WHERE note = 'same txn updated';
  )sql"));
  ASSERT_OK(source.Step("multiset truncated and refilled", R"sql(
    BEGIN;
    TRUNCATE bag;
    INSERT INTO bag VALUES (1, 'dup'), (1, 'dup'), (NULL, NULL);
    COMMIT;
    UPDATE bag SET y = 'one of two' WHERE ctid = (SELECT ctid FROM bag WHERE x = 1 LIMIT 1);
  )sql"));
  ASSERT_OK(source.CommitAfterLastInstant("INSERT INTO logs (msg) VALUES ('tail')"));

  // The steps did what they say (so the fingerprints compare something).
  const auto& fps = source.instants();
  EXPECT_EQ(fps[0].fingerprints.at("public.bag").row_count, 6);
  EXPECT_EQ(fps[1].fingerprints.at("public.bag").row_count, 7);
  EXPECT_EQ(fps[2].fingerprints.at("public.logs").row_count, 0);
  EXPECT_EQ(fps[4].fingerprints.at("public.docs").row_count, 2);
  EXPECT_EQ(fps[4].fingerprints.at("public.logs").row_count, 1);
  EXPECT_EQ(fps[5].fingerprints.at("public.docs").row_count, 3);
  EXPECT_EQ(fps[6].fingerprints.at("public.never_used").row_count, 0);
  EXPECT_EQ(source.cluster().Scalar(
                "src", "SELECT count(*) FROM docs WHERE length(body) = 3500 * 32"),
            "3");

  ExpectEveryInstantRestores(source, {"INSERT INTO docs (body, note) VALUES ('b', 'after')",
                                      "INSERT INTO logs (msg) VALUES ('after')",
                                      "INSERT INTO never_used (v) VALUES ('after')"});
  // The TOASTed bodies themselves, compared directly as well.
  const std::string last = "r" + std::to_string(fps.size() - 1);
  EXPECT_EQ(source.cluster().Scalar(last, "SELECT string_agg(md5(body), ',' ORDER BY id) FROM docs "
                                          "WHERE note <> 'after'"),
            source.cluster().Scalar("src", "SELECT string_agg(md5(body), ',' ORDER BY id) FROM "
                                           "docs"));
}

// ---------------------------------------------------------------------------
// 3b. Schema objects that shape what pgoutput sends and COPY takes:
//     partitions, generated and dropped columns, enum and domain types.

constexpr char kShapesSchema[] = R"sql(
CREATE TYPE mood AS ENUM ('sad', 'ok', 'happy "quoted"');
CREATE DOMAIN positive AS int CHECK (VALUE > 0);
CREATE TABLE shaped (id serial PRIMARY KEY, gone text, m mood, p positive,
                     price numeric, doubled numeric GENERATED ALWAYS AS (price * 2) STORED,
                     label text);
ALTER TABLE shaped DROP COLUMN gone;
INSERT INTO shaped (m, p, price, label) VALUES ('ok', 1, 1.5, 'snap'), ('happy "quoted"', 2, NULL, NULL);
CREATE TABLE events (id bigserial, at date NOT NULL, what text, PRIMARY KEY (id, at))
  PARTITION BY RANGE (at);
CREATE TABLE events_2023 PARTITION OF events FOR VALUES FROM ('2023-01-01') TO ('2024-01-01');
CREATE TABLE events_2024 PARTITION OF events FOR VALUES FROM ('2024-01-01') TO ('2025-01-01');
INSERT INTO events (at, what) VALUES ('2023-05-01', 'old'), ('2024-05-01', 'new');
CREATE TABLE ident (id bigint GENERATED ALWAYS AS IDENTITY (START WITH 1000) PRIMARY KEY, v text);
INSERT INTO ident (v) VALUES ('i1'), ('i2');
CREATE TABLE wide_bag (k int, big text);
ALTER TABLE wide_bag ALTER COLUMN big SET STORAGE EXTERNAL;
ALTER TABLE wide_bag REPLICA IDENTITY FULL;
INSERT INTO wide_bag SELECT 1, string_agg(md5(random()::text), '') FROM generate_series(1, 3500);
INSERT INTO wide_bag SELECT * FROM wide_bag;
)sql";

TEST(EndToEndTest, RestoresPartitionsGeneratedColumnsAndUserTypes) {
  RecordedSource source;
  ASSERT_OK(source.Start(kShapesSchema));
  ASSERT_OK(source.StartAgent());
  ASSERT_OK(source.Step("snapshot only", ""));
  ASSERT_OK(source.Step("changes through the parent and generated columns", R"sql(
    INSERT INTO shaped (m, p, price, label) VALUES ('sad', 3, 10, 'stream');
    UPDATE shaped SET price = 7, m = 'happy "quoted"' WHERE label = 'snap';
    INSERT INTO events (at, what) VALUES ('2023-12-31', 'late'), ('2024-01-01', 'early');
    UPDATE events SET what = what || ' changed' WHERE what = 'old';
    INSERT INTO ident (v) VALUES ('i3');
    UPDATE wide_bag SET k = 2 WHERE ctid = (SELECT ctid FROM wide_bag LIMIT 1);
  )sql"));
  ASSERT_OK(source.Step("a row moves to another partition, rows deleted", R"sql(
    UPDATE events SET at = '2024-06-01' WHERE what = 'late';
    DELETE FROM events WHERE what = 'new';
    DELETE FROM shaped WHERE p = 2;
    DELETE FROM ident WHERE v = 'i1';
    TRUNCATE shaped, events;
    INSERT INTO shaped (m, p, price, label) VALUES ('ok', 4, 4, 'after truncate');
  )sql"));
  ASSERT_OK(source.CommitAfterLastInstant("INSERT INTO events (at) VALUES ('2024-12-31')"));

  ASSERT_EQ(source.instants()[0].fingerprints.count("public.events_2023"), 1u);
  ExpectEveryInstantRestores(source,
                             {"INSERT INTO shaped (m, p, price) VALUES ('ok', 9, 1)",
                              "INSERT INTO events (at, what) VALUES ('2024-02-02', 'after')",
                              "INSERT INTO ident (v) VALUES ('after')"});
}

// A table without columns still has rows (the base snapshot copies them with
// COPY (SELECT FROM t)); the restore must bring back as many.
TEST(EndToEndTest, RestoresTableWithoutColumns) {
  RecordedSource source;
  ASSERT_OK(source.Start(
      "CREATE TABLE no_columns (); INSERT INTO no_columns DEFAULT VALUES; "
      "INSERT INTO no_columns DEFAULT VALUES; CREATE TABLE other (id serial PRIMARY KEY)"));
  ASSERT_OK(source.StartAgent());
  ASSERT_OK(source.Step("snapshot only", ""));
  ASSERT_OK(source.Step("one more row", "INSERT INTO no_columns DEFAULT VALUES"));
  ASSERT_OK(source.CommitAfterLastInstant("INSERT INTO other DEFAULT VALUES"));

  EXPECT_EQ(source.instants()[1].fingerprints.at("public.no_columns").row_count, 3);
  ExpectEveryInstantRestores(source, {"INSERT INTO other DEFAULT VALUES"});
}

// ---------------------------------------------------------------------------
// 4. Transactions: rollbacks leave nothing, savepoints keep what committed,
//    and large transactions are all or nothing at every instant.

constexpr char kTxnSchema[] = R"sql(
CREATE TABLE acct (id serial PRIMARY KEY, name text, balance int);
CREATE TABLE big (id int PRIMARY KEY, v int, pad text);
INSERT INTO acct (name, balance) VALUES ('a', 10), ('b', 20);
)sql";

TEST(EndToEndTest, RestoresRollbacksSavepointsAndLargeTransactions) {
  RecordedSource source;
  ASSERT_OK(source.Start(kTxnSchema));
  ASSERT_OK(source.StartAgent());
  ASSERT_OK(source.Step("snapshot only", ""));
  ASSERT_OK(source.Step("rollback, then savepoints", R"sql(
    BEGIN;
    INSERT INTO acct (name, balance) VALUES ('rolled back', 1);
    UPDATE acct SET balance = 0;
    ROLLBACK;
    BEGIN;
    INSERT INTO acct (name, balance) VALUES ('kept', 1);
    SAVEPOINT s1;
    INSERT INTO acct (name, balance) VALUES ('discarded', 2);
    UPDATE acct SET balance = -1 WHERE name = 'a';
    ROLLBACK TO SAVEPOINT s1;
    SAVEPOINT s2;
    UPDATE acct SET balance = balance + 5 WHERE name = 'b';
    RELEASE SAVEPOINT s2;
    COMMIT;
  )sql"));
  ASSERT_OK(source.Step("50000 rows in one transaction",
                        "INSERT INTO big SELECT g, g, md5(g::text) FROM generate_series(1, 50000) g"));
  ASSERT_OK(source.Step("50000 rows updated in one transaction",
                        "UPDATE big SET v = v * 2, pad = pad || 'x'"));
  ASSERT_OK(source.CommitAfterLastInstant("UPDATE acct SET balance = balance + 1 WHERE id = 1"));

  const auto& fps = source.instants();
  EXPECT_EQ(fps[1].fingerprints.at("public.acct").row_count, 3);
  EXPECT_EQ(fps[1].fingerprints.at("public.big").row_count, 0);
  EXPECT_EQ(fps[2].fingerprints.at("public.big").row_count, 50000);
  EXPECT_NE(fps[2].fingerprints.at("public.big"), fps[3].fingerprints.at("public.big"));

  const std::vector<std::string> after = {"INSERT INTO acct (name) VALUES ('after restore')"};
  ExpectEveryInstantRestores(source, after);
  EXPECT_EQ(source.cluster().Scalar("r1", "SELECT string_agg(name || '=' || balance, ',' "
                                          "ORDER BY id) FROM acct WHERE name <> 'after restore'"),
            "a=10,b=25,kept=1");

  // The restore point is inclusive: a time equal to a commit's time includes
  // that commit, one microsecond earlier does not. The 50000-row insert is
  // the only commit between instants 1 and 2; the dry run names it.
  CommandResult plan = source.Restore(fps[2].time, "", {"--dry-run"});
  ASSERT_EQ(plan.exit_code, 0) << plan;
  EXPECT_NE(plan.stdout_text.find("  public.big: 50000 rows\n"), std::string::npos) << plan;
  std::smatch match;
  ASSERT_TRUE(std::regex_search(
      plan.stdout_text, match,
      std::regex("last transaction included: xid [0-9]+, committed ([^,\n]+), LSN")))
      << plan;
  const std::string commit_time = match[1];
  EXPECT_GT(commit_time, fps[1].time);
  EXPECT_LE(commit_time, fps[2].time);
  const std::string just_before = source.cluster().Scalar(
      "postgres", "SELECT to_char(('" + commit_time +
                      "'::timestamptz - interval '1 microsecond') AT TIME ZONE 'UTC', "
                      "'YYYY-MM-DD HH24:MI:SS.US') || '+00'");
  ExpectRestoreMatches(source, Instant{"the insert's commit time", commit_time, fps[2].fingerprints},
                       "at_commit", after);
  ExpectRestoreMatches(source, Instant{"just before the insert", just_before, fps[1].fingerprints},
                       "before_commit", after);
}

// ---------------------------------------------------------------------------
// 5. The snapshot/stream boundary: rows from the base snapshot changed later,
//    and writes that keep coming while the agent creates its slot and copies.

constexpr char kBoundarySchema[] = R"sql(
CREATE TABLE accounts (id serial PRIMARY KEY, owner text, balance numeric(12,2));
CREATE TABLE churn (id int PRIMARY KEY, n int);
INSERT INTO accounts (owner, balance) SELECT 'owner ' || g, g * 10 FROM generate_series(1, 100) g;
INSERT INTO churn SELECT g, 0 FROM generate_series(1, 50) g;
)sql";

TEST(EndToEndTest, RestoresSnapshotRowsChangedAfterTheSnapshot) {
  RecordedSource source;
  ASSERT_OK(source.Start(kBoundarySchema));
  // Commits before, during and after slot creation and the base snapshot:
  // each must be in the snapshot or in the stream, never both, never neither.
  BackgroundWriter writer;
  ASSERT_OK_AND_ASSIGN(auto conn, source.cluster().Connect("src"));
  ASSERT_OK(writer.Start(std::move(conn), [](int64_t i) {
    return "UPDATE churn SET n = n + 1 WHERE id = " + std::to_string(i % 50 + 1) +
           "; INSERT INTO churn VALUES (" + std::to_string(1000 + i) + ", " + std::to_string(i) +
           ")";
  }));
  ASSERT_TRUE(writer.WaitForIterations(20));
  ASSERT_OK(source.StartAgent());
  const int64_t at_streaming = writer.iterations();
  ASSERT_TRUE(writer.WaitForIterations(at_streaming + 50));
  ASSERT_OK(writer.Stop());

  ASSERT_OK(source.Step("after concurrent start", ""));
  ASSERT_OK(source.Step("snapshot row updated", R"sql(
    UPDATE accounts SET balance = balance + 0.01, owner = 'first changed' WHERE id = 1;
  )sql"));
  ASSERT_OK(source.Step("snapshot row deleted, another updated twice", R"sql(
    DELETE FROM accounts WHERE id = 2;
    BEGIN;
    UPDATE accounts SET balance = 0 WHERE id = 3;
    UPDATE accounts SET owner = 'twice' WHERE id = 3;
    COMMIT;
  )sql"));
  ASSERT_OK(source.Step("new rows and a deleted snapshot key reused", R"sql(
    INSERT INTO accounts (owner, balance) VALUES ('new', 1);
    INSERT INTO accounts (id, owner, balance) VALUES (2, 'reused key', 2);
    UPDATE accounts SET balance = balance * 2 WHERE id > 90;
  )sql"));
  ASSERT_OK(source.CommitAfterLastInstant("UPDATE accounts SET owner = 'tail' WHERE id = 4"));

  EXPECT_EQ(source.instants()[0].fingerprints.at("public.churn").row_count,
            50 + writer.iterations());
  ExpectEveryInstantRestores(source, {"INSERT INTO accounts (owner) VALUES ('after restore')"});
}

// ---------------------------------------------------------------------------
// 6 and 7. --tables and --dry-run.

constexpr char kPartialSchema[] = R"sql(
CREATE TABLE a (id serial PRIMARY KEY, v text);
CREATE TABLE b (id serial PRIMARY KEY, v text);
CREATE SCHEMA other;
CREATE TABLE other.a (id int PRIMARY KEY, v text);
INSERT INTO a (v) VALUES ('a1'), ('a2'), ('a3');
INSERT INTO b (v) VALUES ('b1'), ('b2');
INSERT INTO other.a VALUES (1, 'other a1');
)sql";

// The source for --tables and --dry-run: three instants, three tables.
void RecordPartialSource(RecordedSource* source) {
  ASSERT_OK(source->Start(kPartialSchema));
  ASSERT_OK(source->StartAgent());
  ASSERT_OK(source->Step("snapshot only", ""));
  ASSERT_OK(source->Step("a grows, b changes",
                         "INSERT INTO a (v) VALUES ('a4'), ('a5'); UPDATE b SET v = 'b1 new' "
                         "WHERE id = 1; INSERT INTO other.a VALUES (2, 'other a2')"));
  ASSERT_OK(source->Step("a shrinks, b grows",
                         "DELETE FROM a WHERE id IN (1, 4); UPDATE a SET v = 'a2 new' WHERE id = "
                         "2; INSERT INTO b (v) VALUES ('b3'), ('b4'), ('b5')"));
  ASSERT_OK(source->CommitAfterLastInstant("INSERT INTO b (v) VALUES ('tail')"));
}

TEST(EndToEndTest, RestoresOnlyTheChosenTables) {
  RecordedSource source;
  RecordPartialSource(&source);
  ASSERT_FALSE(::testing::Test::HasFatalFailure());
  PgCluster& cluster = source.cluster();
  for (size_t i = 0; i < source.instants().size(); i++) {
    const Instant& instant = source.instants()[i];
    // The chosen tables as they were at the instant, and no other table:
    // the tables not chosen are not restored (not even empty; README).
    {
      const std::string db = "part_a" + std::to_string(i);
      SCOPED_TRACE("restore --tables public.a to \"" + instant.label + "\" at " + instant.time);
      CommandResult result = source.Restore(instant.time, db, {"--tables", "public.a"});
      ASSERT_EQ(result.exit_code, 0) << result;
      EXPECT_EQ(cluster.TableFingerprint(db, "public", "a"), instant.fingerprints.at("public.a"));
      EXPECT_TRUE(FingerprintsEqual({{"public.a", instant.fingerprints.at("public.a")}},
                                    cluster.DatabaseFingerprint(db)));
      EXPECT_EQ(cluster.Scalar(db, "SELECT to_regclass('public.b') IS NULL AND "
                                   "to_regclass('other.a') IS NULL"),
                "t");
      EXPECT_OK(cluster.Exec(db, "INSERT INTO a (v) VALUES ('after restore')"));
    }
    {
      // Two tables, one named without its schema.
      const std::string db = "part_b" + std::to_string(i);
      SCOPED_TRACE("restore --tables b,other.a to \"" + instant.label + "\" at " + instant.time);
      CommandResult result = source.Restore(instant.time, db, {"--tables", "b,other.a"});
      ASSERT_EQ(result.exit_code, 0) << result;
      EXPECT_TRUE(FingerprintsEqual({{"public.b", instant.fingerprints.at("public.b")},
                                     {"other.a", instant.fingerprints.at("other.a")}},
                                    cluster.DatabaseFingerprint(db)));
      EXPECT_OK(cluster.Exec(db, "INSERT INTO b (v) VALUES ('after restore')"));
    }
  }
}

TEST(EndToEndTest, DryRunPrintsRowCountsAndWritesNothing) {
  RecordedSource source;
  RecordPartialSource(&source);
  ASSERT_FALSE(::testing::Test::HasFatalFailure());
  PgCluster& cluster = source.cluster();
  const std::string databases_before =
      cluster.Scalar("postgres", "SELECT string_agg(datname, ',' ORDER BY datname) FROM pg_database");
  for (size_t i = 0; i < source.instants().size(); i++) {
    const Instant& instant = source.instants()[i];
    SCOPED_TRACE("dry run to \"" + instant.label + "\" at " + instant.time);
    CommandResult result = source.Restore(instant.time, "dry_target", {"--dry-run"});
    ASSERT_EQ(result.exit_code, 0) << result;
    EXPECT_NE(result.stdout_text.find("dry run: nothing was written\n"), std::string::npos)
        << result;
    for (const auto& [name, fp] : instant.fingerprints) {
      const std::string line = "  " + name + ": " + std::to_string(fp.row_count) + " rows\n";
      EXPECT_NE(result.stdout_text.find(line), std::string::npos)
          << "expected the line \"" << line << "\" in:\n"
          << result.stdout_text;
    }
  }
  // Without --target too.
  CommandResult no_target = source.Restore(source.instants()[1].time, "", {"--dry-run"});
  EXPECT_EQ(no_target.exit_code, 0) << no_target;
  EXPECT_NE(no_target.stdout_text.find("  public.a: 5 rows\n"), std::string::npos) << no_target;

  EXPECT_EQ(cluster.Scalar("postgres", "SELECT count(*) FROM pg_database WHERE datname = "
                                       "'dry_target'"),
            "0");
  EXPECT_EQ(cluster.Scalar("postgres",
                           "SELECT string_agg(datname, ',' ORDER BY datname) FROM pg_database"),
            databases_before);
}

// ---------------------------------------------------------------------------
// 8. Restores while the agent keeps running and the source keeps writing.

constexpr char kLiveSchema[] = R"sql(
CREATE TABLE ledger (id serial PRIMARY KEY, amount int, memo text);
CREATE TABLE noise (id bigserial PRIMARY KEY, written_at timestamptz, payload text);
INSERT INTO ledger (amount, memo) VALUES (100, 'opening');
)sql";

TEST(EndToEndTest, RestoresWhileTheSourceKeepsWriting) {
  RecordedSource source;
  ASSERT_OK(source.Start(kLiveSchema));
  ASSERT_OK(source.StartAgent());
  ASSERT_OK(source.Step("snapshot only", ""));
  ASSERT_OK(source.Step("quiet 1", "INSERT INTO ledger (amount, memo) VALUES (5, 'q1')"));
  ASSERT_OK(source.Step("quiet 2", "UPDATE ledger SET amount = amount - 1 WHERE id = 1"));

  // One writer, one row per transaction: ids are in commit order, so any
  // consistent restore holds exactly ids 1..k of noise.
  BackgroundWriter writer;
  ASSERT_OK_AND_ASSIGN(auto conn, source.cluster().Connect("src"));
  ASSERT_OK(writer.Start(std::move(conn), [](int64_t i) {
    return "INSERT INTO noise (written_at, payload) VALUES (clock_timestamp(), 'noise " +
           std::to_string(i) + "')";
  }));
  ASSERT_TRUE(writer.WaitForIterations(20));
  auto only_ledger = [](const std::string& name) { return name == "public.ledger"; };
  ASSERT_OK(source.Step("busy 1", "INSERT INTO ledger (amount, memo) VALUES (7, 'b1')",
                        only_ledger));
  ASSERT_OK(source.Step("busy 2", "DELETE FROM ledger WHERE memo = 'q1'; UPDATE ledger SET "
                                  "memo = 'busy' WHERE memo = 'opening'",
                        only_ledger));
  ASSERT_OK(source.CommitAfterLastInstant("INSERT INTO ledger (amount, memo) VALUES (0, 'tail')"));

  // Restore every instant while the writer and the agent keep going.
  const std::vector<std::string> after = {"INSERT INTO ledger (amount) VALUES (1)",
                                          "INSERT INTO noise (payload) VALUES ('after')"};
  for (size_t i = 0; i < source.instants().size(); i++) {
    const Instant& instant = source.instants()[i];
    const std::string db = "live" + std::to_string(i);
    const int64_t before = writer.iterations();
    ExpectRestoreMatches(source, instant, db, {}, /*only_recorded_tables=*/i >= 3);
    if (i >= 3) {
      SCOPED_TRACE(instant.label);
      // noise as of the instant: a prefix of the writer's rows, none written
      // after the instant.
      EXPECT_EQ(source.cluster().Scalar(db, "SELECT count(*) = coalesce(max(id), 0) FROM noise"),
                "t");
      EXPECT_EQ(source.cluster().Scalar(db, "SELECT count(*) FROM noise WHERE written_at > '" +
                                                instant.time + "'"),
                "0");
      EXPECT_GT(RowCount(source.cluster(), db, "noise"), 0);
    }
    for (const std::string& sql : after) EXPECT_OK(source.cluster().Exec(db, sql));
    EXPECT_GT(writer.iterations(), before) << "the source was not written during the restore";
  }
  ASSERT_OK(writer.Stop());
  EXPECT_TRUE(source.agent().IsRunning()) << source.agent().LogContents();
  // And the agent has everything the writer committed.
  ASSERT_OK(source.CatchUp());
}

}  // namespace
}  // namespace pgtrail::testing
