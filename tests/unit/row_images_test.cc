// Final images read in LSN order, layout versions and rowkey decoding, on a
// real store in a temporary directory whose records are written by hand.
#include "tools/row_images.h"

#include <gtest/gtest.h>
#include <rocksdb/write_batch.h>

#include <algorithm>
#include <random>
#include <set>
#include <string>
#include <vector>

#include "storage/copy_text.h"
#include "storage/keys.h"
#include "tests/unit/temp_dir.h"

namespace pgtrail {
namespace {

constexpr uint32_t kRelid = 16384;

pb::Relation Layout(uint64_t lsn, uint32_t seq, bool keyed, int columns = 2) {
  pb::Relation rel;
  rel.set_relid(kRelid);
  rel.set_nspname("public");
  rel.set_relname("accounts");
  rel.set_replica_identity(keyed ? 'd' : 'f');
  for (int i = 0; i < columns; i++) {
    pb::Column* c = rel.add_columns();
    c->set_name(i == 0 ? "id" : "c" + std::to_string(i));
    c->set_type_oid(25);
    c->set_type_mod(-1);
    c->set_key(keyed && i == 0);
  }
  rel.set_lsn(lsn);
  rel.set_seq(seq);
  return rel;
}

pb::Tuple Row(const std::vector<std::string>& values) {
  pb::Tuple t;
  for (const std::string& v : values) {
    t.mutable_kinds()->push_back('t');
    t.add_values(v);
  }
  return t;
}

class RowImagesTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_FALSE(dir_.path().empty()) << "cannot make a directory in /tmp";
    auto store = Store::OpenForWrite(dir_.path() + "/store", /*create=*/true);
    ASSERT_TRUE(store.ok()) << store.status().message();
    store_ = std::move(store).value();
  }
  void TearDown() override {
    store_.reset();
  }

  void PutLayout(const pb::Relation& rel) {
    rocksdb::WriteBatch batch;
    batch.Put(store_->cf(Family::kRelation), keys::RelationKey(rel.relid(), rel.lsn(), rel.seq()),
              rel.SerializeAsString());
    ASSERT_TRUE(store_->Write(&batch, false).ok());
  }
  // An INSERT of `row` at (lsn, seq) decoded with the layout version at
  // (rel_lsn, rel_seq).
  void PutInsert(uint64_t lsn, uint32_t seq, const pb::Tuple& row, uint64_t rel_lsn,
                 uint32_t rel_seq) {
    pb::Change c;
    c.set_op(pb::Change::INSERT);
    c.set_relid(kRelid);
    c.set_relation_lsn(rel_lsn);
    c.set_relation_seq(rel_seq);
    *c.mutable_new_tuple() = row;
    // A chunk of one change (see AppendToChunk).
    std::string chunk;
    AppendToChunk(&chunk, c);
    rocksdb::WriteBatch batch;
    batch.Put(store_->cf(Family::kChange), keys::ChangeKey(lsn, seq), chunk);
    ASSERT_TRUE(store_->Write(&batch, false).ok());
  }

  // Runs ForEachFinalImage and returns the first column of every row emitted.
  Status Images(const pb::Relation& layout, std::vector<Position> positions,
                std::vector<std::string>* ids) {
    ASSIGN_OR_RETURN(LayoutHistory history, LayoutHistory::Load(store_.get(), kRelid));
    return ForEachFinalImage(store_.get(), layout, history, std::move(positions),
                             [&](const pb::Tuple& row) {
                               ids->push_back(row.values(0));
                               return Status::OK();
                             });
  }

  testing::TempDir dir_{"row-images-test"};
  std::unique_ptr<Store> store_;
};

TEST_F(RowImagesTest, ReadsFinalImagesInLsnOrderWhateverOrderTheyAreAskedIn) {
  const pb::Relation v1 = Layout(100, 0, /*keyed=*/true);
  PutLayout(v1);
  for (uint32_t i = 0; i < 40; i++) PutInsert(200 + i / 4, i % 4, Row({std::to_string(i), "x"}), 100, 0);
  // Far apart (a seek) and close together (steps), given in rowkey order.
  std::vector<Position> positions = {{209, 3}, {200, 1}, {203, 0}, {200, 2}, {201, 0}};
  std::vector<std::string> ids;
  ASSERT_TRUE(Images(v1, positions, &ids).ok());
  EXPECT_EQ(ids, (std::vector<std::string>{"1", "2", "4", "12", "39"}));
}

TEST_F(RowImagesTest, RefusesAFinalImageWrittenUnderAnotherLayout) {
  const pb::Relation v1 = Layout(100, 0, /*keyed=*/true);
  const pb::Relation v2 = Layout(300, 0, /*keyed=*/true, /*columns=*/3);
  PutLayout(v1);
  PutLayout(v2);
  PutInsert(200, 0, Row({"1", "a"}), 100, 0);
  PutInsert(300, 0, Row({"2", "b", "c"}), 300, 0);
  std::vector<std::string> ids;
  Status st = Images(v1, {{300, 0}, {200, 0}}, &ids);
  EXPECT_EQ(st.code(), Status::kCorruption);
  EXPECT_NE(st.message().find("written under the layout version at LSN 0/12C seq 0"),
            std::string::npos)
      << st.message();
  EXPECT_EQ(ids, std::vector<std::string>{"1"});  // nothing of the wrong layout
}

TEST_F(RowImagesTest, RefusesAMissingOrDoubledFinalImage) {
  const pb::Relation v1 = Layout(100, 0, /*keyed=*/true);
  PutLayout(v1);
  PutInsert(200, 0, Row({"1", "a"}), 100, 0);
  std::vector<std::string> ids;
  Status missing = Images(v1, {{200, 0}, {200, 1}}, &ids);
  EXPECT_EQ(missing.code(), Status::kCorruption);
  EXPECT_NE(missing.message().find("change 1 of transaction at 0/C8 is missing"),
            std::string::npos)
      << missing.message();
  Status doubled = Images(v1, {{200, 0}, {200, 0}}, &ids);
  EXPECT_EQ(doubled.code(), Status::kCorruption);
  EXPECT_NE(doubled.message().find("two rows"), std::string::npos) << doubled.message();
}

TEST_F(RowImagesTest, FindsTheLayoutInForceAndLayoutChangesBetweenTwoPositions) {
  PutLayout(Layout(100, 0, /*keyed=*/true));
  PutLayout(Layout(300, 2, /*keyed=*/false));  // REPLICA IDENTITY FULL
  pb::Relation same_again = Layout(400, 0, /*keyed=*/false);
  PutLayout(same_again);
  auto history = LayoutHistory::Load(store_.get(), kRelid);
  ASSERT_TRUE(history.ok());
  EXPECT_EQ(history->At({99, 0}), nullptr);
  EXPECT_EQ(history->At({300, 1})->lsn(), 100u);
  EXPECT_EQ(history->At({300, 2})->lsn(), 300u);
  EXPECT_TRUE(history->OneLayoutBetween({100, 0}, {300, 1}));
  EXPECT_FALSE(history->OneLayoutBetween({200, 0}, {300, 2}));
  // A version with the same row layout is no change.
  EXPECT_TRUE(history->OneLayoutBetween({300, 2}, {500, 0}));
}

TEST_F(RowImagesTest, DecodesARowKeyOnlyWithTheLayoutItWasWrittenUnder) {
  const pb::Relation multiset = Layout(100, 0, /*keyed=*/false, /*columns=*/2);
  const pb::Relation keyed = Layout(100, 0, /*keyed=*/true, /*columns=*/2);
  std::string rowkey;
  ASSERT_TRUE(AppendTupleRowKey(&rowkey, multiset, Row({"7", "seven"})).ok());
  pb::Tuple row;
  ASSERT_TRUE(RowKeyValues(multiset, rowkey, &row).ok());
  EXPECT_EQ(row.kinds(), "tt");
  EXPECT_EQ(row.values(1), "seven");
  // Under the keyed layout the rowkey would be the key column only.
  Status st = RowKeyValues(keyed, rowkey, &row);
  EXPECT_EQ(st.code(), Status::kCorruption);
  EXPECT_NE(st.message().find("written under another layout"), std::string::npos) << st.message();
  EXPECT_EQ(CheckRowOp(keyed, static_cast<char>(keys::RowOp::kAddOne)).code(),
            Status::kCorruption);
  EXPECT_TRUE(CheckRowOp(keyed, static_cast<char>(keys::RowOp::kDelete)).ok());
}

TEST_F(RowImagesTest, RowKeyValuesReplacesTheWholePreviousRow) {
  const pb::Relation wide = Layout(100, 0, /*keyed=*/false, /*columns=*/3);
  const pb::Relation keyed = Layout(100, 0, /*keyed=*/true, /*columns=*/3);
  pb::Tuple with_null = Row({std::string(40, 'x'), "", std::string("a\0\xff", 3)});
  with_null.mutable_kinds()->at(1) = 'n';
  std::string rowkey;
  ASSERT_TRUE(AppendTupleRowKey(&rowkey, wide, with_null).ok());
  pb::Tuple row = Row({"stale", "stale", "stale", "stale"});
  ASSERT_TRUE(RowKeyValues(wide, rowkey, &row).ok());
  EXPECT_EQ(row.kinds(), "tnt");
  ASSERT_EQ(row.values_size(), 3);
  EXPECT_EQ(row.values(0), std::string(40, 'x'));
  EXPECT_EQ(row.values(1), "");
  EXPECT_EQ(row.values(2), std::string("a\0\xff", 3));
  // Fewer columns next: nothing of the wider row is left.
  std::string key;
  ASSERT_TRUE(AppendTupleRowKey(&key, keyed, Row({"7", "x", "y"})).ok());
  ASSERT_TRUE(RowKeyValues(keyed, key, &row).ok());
  EXPECT_EQ(row.kinds(), "t");
  ASSERT_EQ(row.values_size(), 1);
  EXPECT_EQ(row.values(0), "7");
}

TEST_F(RowImagesTest, RowKeyValuesRejectsDamagedRowKeys) {
  const pb::Relation multiset = Layout(100, 0, /*keyed=*/false, /*columns=*/2);
  std::string rowkey;
  ASSERT_TRUE(AppendTupleRowKey(&rowkey, multiset, Row({"7", "seven"})).ok());
  pb::Tuple row;
  for (size_t len = 0; len < rowkey.size(); len++) {
    EXPECT_EQ(RowKeyValues(multiset, rowkey.substr(0, len), &row).code(), Status::kCorruption)
        << len;
  }
  std::string bad_escape = rowkey;
  bad_escape[bad_escape.size() - 1] = '\x02';  // 0x00 0x02 closes nothing
  EXPECT_EQ(RowKeyValues(multiset, bad_escape, &row).code(), Status::kCorruption);
}

// COPY text straight from a multiset rowkey is byte for byte what decoding
// the row and writing it gives, for NULLs, empty values, every escaped
// character and zero bytes; a damaged rowkey writes nothing.
TEST(AppendCopyTextFromRowKey, MatchesDecodingTheRowThenWritingIt) {
  const pb::Relation rel = Layout(1, 0, /*keyed=*/false, /*columns=*/4);
  const std::vector<std::string> pool = {
      "", "a", "tab\there", "back\\slash", "new\nline\r\n", std::string("z\0ro", 4),
      std::string("\0", 1), std::string(3000, 'x') + "\b\f\v", "ünïcödé"};
  unsigned seed = 7;
  auto next = [&] { return seed = seed * 1103515245u + 12345u; };
  std::string scratch;
  for (int round = 0; round < 2000; round++) {
    pb::Tuple row;
    for (int c = 0; c < 4; c++) {
      const unsigned pick = next() % (pool.size() + 1);
      row.mutable_kinds()->push_back(pick == pool.size() ? 'n' : 't');
      row.add_values(pick == pool.size() ? "" : pool[pick]);
    }
    std::string rowkey;
    ASSERT_TRUE(AppendTupleRowKey(&rowkey, rel, row).ok());
    pb::Tuple decoded;
    ASSERT_TRUE(RowKeyValues(rel, rowkey, &decoded).ok());
    std::string want = "prefix|";
    AppendCopyTextRow(&want, decoded);
    std::string got = "prefix|";
    ASSERT_TRUE(AppendCopyTextFromRowKey(&got, rel, rowkey, &scratch).ok());
    ASSERT_EQ(got, want) << "round " << round;
  }
  std::string rowkey;
  ASSERT_TRUE(AppendTupleRowKey(&rowkey, rel, Row({"1", "2", "3", "4"})).ok());
  std::string out = "kept";
  EXPECT_EQ(AppendCopyTextFromRowKey(&out, rel, rowkey.substr(0, rowkey.size() - 1), &scratch).code(),
            Status::kCorruption);
  EXPECT_EQ(AppendCopyTextFromRowKey(&out, rel, rowkey + rowkey, &scratch).code(),
            Status::kCorruption);
  EXPECT_EQ(AppendCopyTextFromRowKey(&out, Layout(1, 0, /*keyed=*/true, 4), rowkey, &scratch).code(),
            Status::kInternal);
  EXPECT_EQ(out, "kept");
}

// The parts of a stored change read without protobuf are the ones protobuf
// reads, whatever else the change holds; bytes that are not a message fail.
TEST(ParseChangeImage, ReadsWhatProtobufReads) {
  std::vector<pb::Change> changes(4);
  changes[0].set_op(pb::Change::INSERT);
  changes[0].set_relid(16384);
  changes[0].set_relation_lsn(0x1234567890ull);
  changes[0].set_relation_seq(77);
  *changes[0].mutable_new_tuple() = Row({"1", "", std::string("a\0b", 3)});
  changes[0].mutable_new_tuple()->mutable_kinds()->at(1) = 'n';
  changes[1] = changes[0];
  changes[1].set_op(pb::Change::UPDATE);
  changes[1].set_old_kind('O');
  *changes[1].mutable_old_tuple() = Row({"old", "x"});  // not read
  changes[1].set_prefix("p");
  changes[1].add_truncate_relids(5);
  changes[2].set_op(pb::Change::DELETE);  // no new tuple at all
  changes[2].set_relid(1);
  changes[3].set_op(pb::Change::INSERT);
  *changes[3].mutable_new_tuple() = Row({std::string(100000, 'v')});
  ChangeImage image;
  for (const pb::Change& c : changes) {
    const std::string bytes = c.SerializeAsString();
    ASSERT_TRUE(ParseChangeImage(bytes, &image).ok());
    EXPECT_EQ(image.op, c.op());
    EXPECT_EQ(image.relid, c.relid());
    EXPECT_EQ(image.relation_lsn, c.relation_lsn());
    EXPECT_EQ(image.relation_seq, c.relation_seq());
    EXPECT_EQ(image.kinds, c.new_tuple().kinds());
    ASSERT_EQ(image.values.size(), static_cast<size_t>(c.new_tuple().values_size()));
    for (int i = 0; i < c.new_tuple().values_size(); i++) {
      EXPECT_EQ(image.values[static_cast<size_t>(i)], c.new_tuple().values(i));
    }
    std::string text;
    std::string want;
    AppendCopyTextRow(&text, image.kinds, image.values);
    AppendCopyTextRow(&want, c.new_tuple());
    EXPECT_EQ(text, want);
  }
  const std::string bytes = changes[0].SerializeAsString();
  for (size_t cut = 1; cut < bytes.size(); cut++) {
    pb::Change probe;
    if (probe.ParseFromString(bytes.substr(0, cut))) continue;  // a valid prefix
    EXPECT_EQ(ParseChangeImage(bytes.substr(0, cut), &image).code(), Status::kCorruption)
        << "cut at " << cut;
  }
  EXPECT_EQ(ParseChangeImage(std::string("\xff\xff\xff", 3), &image).code(), Status::kCorruption);
}

// Lookups in every order, also past both ends and between neighbours, give
// what a set gives.
TEST(AscendingLookup, AnswersAsASetDoesInEveryOrder) {
  std::vector<std::string> keys;
  for (int i = 0; i < 200; i += 3) keys.push_back(std::to_string(1000 + i));  // sorted as text
  const std::set<std::string> set(keys.begin(), keys.end());
  std::vector<std::string> probes = {"", "0", "999", "zzz"};
  for (int i = 0; i < 210; i++) probes.push_back(std::to_string(1000 + i));
  std::vector<std::string> ascending = probes;
  std::sort(ascending.begin(), ascending.end());
  std::vector<std::string> descending(ascending.rbegin(), ascending.rend());
  std::vector<std::string> shuffled = probes;
  std::shuffle(shuffled.begin(), shuffled.end(), std::mt19937(7));
  std::vector<std::string> sawtooth;  // ascending runs that jump back
  for (int run = 0; run < 5; run++) {
    for (int i = run; i < 210; i += 20) sawtooth.push_back(std::to_string(1000 + i));
  }
  size_t found = 0, expected = 0;
  for (const auto* order : {&ascending, &descending, &shuffled, &sawtooth}) {
    AscendingLookup lookup(keys);
    for (const std::string& k : *order) {
      SCOPED_TRACE(k);
      EXPECT_EQ(lookup.Contains(k), set.count(k) != 0);
      found += lookup.Contains(k) ? 1 : 0;  // asking twice changes nothing
      expected += set.count(k);
    }
  }
  EXPECT_EQ(found, expected);
  EXPECT_GT(expected, 3 * keys.size());
  const std::vector<std::string> none;
  AscendingLookup empty_lookup(none);
  EXPECT_FALSE(empty_lookup.Contains("1000"));
}

}  // namespace
}  // namespace pgtrail
