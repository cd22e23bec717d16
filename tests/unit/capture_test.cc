// Capture on decoded messages with a real store in a temporary directory:
// transactions, TOAST resolution, row index and exactly-once skipping.
#include "agent/capture.h"

#include <gtest/gtest.h>
#include <rocksdb/db.h>
#include <rocksdb/write_batch.h>

#include <filesystem>
#include <iterator>
#include <map>
#include <random>
#include <string>

#include "storage/keys.h"
#include "storage/pg_time.h"
#include "tests/unit/pgoutput_encoder.h"
#include "tests/unit/temp_dir.h"

namespace pgtrail {
namespace {

using pgoutput::testing::Null;
using pgoutput::testing::Text;
using pgoutput::testing::Tuple;
using pgoutput::testing::UnchangedToast;

constexpr uint32_t kRelid = 16384;

class CaptureTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_FALSE(dir_.path().empty()) << "cannot make a directory in /tmp";
    auto store = Store::OpenForWrite(dir_.path() + "/store", /*create=*/true);
    ASSERT_TRUE(store.ok()) << store.status().message();
    store_ = std::move(store).value();
    capture_ = std::make_unique<Capture>(store_.get());
    ASSERT_TRUE(capture_->Init().ok());
  }
  void TearDown() override {
    capture_.reset();
    store_.reset();
  }

  void Feed(const pgoutput::Message& m) {
    Status st = capture_->OnMessage(m);
    ASSERT_TRUE(st.ok()) << st.message();
  }
  void Begin(uint64_t lsn, uint32_t xid) {
    pgoutput::Message m;
    m.type = pgoutput::MessageType::kBegin;
    m.begin = {lsn, 0, xid};
    Feed(m);
  }
  void Commit(uint64_t lsn) {
    pgoutput::Message m;
    m.type = pgoutput::MessageType::kCommit;
    m.commit = {0, lsn, lsn + 8, 0};
    Feed(m);
  }
  // accounts(id int primary key, note text)
  void Relation() {
    pgoutput::Message m;
    m.type = pgoutput::MessageType::kRelation;
    m.relation.relid = kRelid;
    m.relation.nspname = "public";
    m.relation.relname = "accounts";
    m.relation.replica_identity = 'd';
    m.relation.columns = {{1, "id", 23, -1}, {0, "note", 25, -1}};
    Feed(m);
  }
  void Insert(pgoutput::TupleData row) {
    pgoutput::Message m;
    m.type = pgoutput::MessageType::kInsert;
    m.insert = {kRelid, std::move(row)};
    Feed(m);
  }
  void Update(pgoutput::TupleData row) {
    pgoutput::Message m;
    m.type = pgoutput::MessageType::kUpdate;
    m.update.relid = kRelid;
    m.update.new_tuple = std::move(row);
    Feed(m);
  }
  // An UPDATE that changes the key: the old key comes along ('K').
  void UpdateKey(pgoutput::TupleData old_key, pgoutput::TupleData row) {
    pgoutput::Message m;
    m.type = pgoutput::MessageType::kUpdate;
    m.update.relid = kRelid;
    m.update.old_kind = 'K';
    m.update.old_tuple = std::move(old_key);
    m.update.new_tuple = std::move(row);
    Feed(m);
  }
  // The header of the transaction at lsn lists one table, kRelid, with its
  // first and last position and its row-index entries.
  void ExpectListsOneTable(uint64_t lsn, uint32_t first_seq, uint32_t last_seq,
                           uint32_t entries) {
    auto header = store_->GetTxn(lsn);
    ASSERT_TRUE(header.ok() && header->has_value());
    EXPECT_TRUE((*header)->tables_listed());
    ASSERT_EQ((*header)->tables_size(), 1);
    EXPECT_EQ((*header)->tables(0).relid(), kRelid);
    EXPECT_EQ((*header)->tables(0).first_seq(), first_seq);
    EXPECT_EQ((*header)->tables(0).last_seq(), last_seq);
    EXPECT_EQ((*header)->tables(0).entries(), entries);
  }
  // Bytes in the store's RocksDB write-ahead log files.
  uint64_t WriteAheadLogBytes() {
    uint64_t bytes = 0;
    for (const auto& entry : std::filesystem::directory_iterator(dir_.path() + "/store")) {
      if (entry.path().extension() == ".log") bytes += entry.file_size();
    }
    return bytes;
  }
  pb::Change StoredChange(uint64_t lsn, uint32_t seq) {
    auto change = store_->GetChange(lsn, seq);
    EXPECT_TRUE(change.ok()) << change.status().message();
    return change.ok() ? change.value() : pb::Change();
  }

  testing::TempDir dir_{"capture-test"};
  std::unique_ptr<Store> store_;
  std::unique_ptr<Capture> capture_;
};

TEST_F(CaptureTest, UpdateWithUnchangedToastKeepsOldValue) {
  Begin(100, 1);
  Relation();
  Insert(Tuple({Text("1"), Text("a long TOASTed note")}));
  Commit(100);
  Begin(200, 2);
  Relation();
  Update(Tuple({Text("1"), UnchangedToast()}));
  Commit(200);
  ASSERT_TRUE(capture_->Flush().ok());

  pb::Change update = StoredChange(200, 0);
  EXPECT_EQ(update.new_tuple().kinds(), "tt");
  EXPECT_EQ(update.new_tuple().values(1), "a long TOASTed note");
}

// The capture reuses one Change and its tuples for every row change: each
// stored change has exactly its own tuples, however the one before was made.
TEST_F(CaptureTest, EachStoredChangeHasOnlyItsOwnTuples) {
  Begin(100, 1);
  Relation();
  Insert(Tuple({Text("1"), Text("first")}));
  UpdateKey(Tuple({Text("1"), Null()}), Tuple({Text("2"), Text("second, a longer value")}));
  Insert(Tuple({Text("3"), Null()}));
  pgoutput::Message del;
  del.type = pgoutput::MessageType::kDelete;
  del.del.relid = kRelid;
  del.del.old_kind = 'K';
  del.del.old_tuple = Tuple({Text("3"), Null()});
  Feed(del);
  Update(Tuple({Text("2"), Text("x")}));
  Insert(Tuple({Text("4"), Text("")}));
  Commit(100);
  ASSERT_TRUE(capture_->Flush().ok());

  pb::Change insert = StoredChange(100, 0);
  EXPECT_FALSE(insert.has_old_tuple());
  EXPECT_EQ(insert.new_tuple().kinds(), "tt");
  EXPECT_EQ(insert.new_tuple().values(1), "first");
  pb::Change update = StoredChange(100, 1);
  EXPECT_EQ(update.old_kind(), static_cast<uint32_t>('K'));
  EXPECT_EQ(update.old_tuple().kinds(), "tn");
  EXPECT_EQ(update.new_tuple().values(1), "second, a longer value");
  pb::Change null_insert = StoredChange(100, 2);
  EXPECT_FALSE(null_insert.has_old_tuple());
  EXPECT_EQ(null_insert.new_tuple().kinds(), "tn");
  EXPECT_EQ(null_insert.new_tuple().values(0), "3");
  EXPECT_EQ(null_insert.new_tuple().values(1), "");
  pb::Change deleted = StoredChange(100, 3);
  EXPECT_FALSE(deleted.has_new_tuple());
  EXPECT_EQ(deleted.old_tuple().kinds(), "tn");
  EXPECT_EQ(deleted.old_tuple().values(0), "3");
  pb::Change update_without_old = StoredChange(100, 4);
  EXPECT_FALSE(update_without_old.has_old_tuple());
  EXPECT_EQ(update_without_old.old_kind(), 0u);
  EXPECT_EQ(update_without_old.new_tuple().values(1), "x");
  pb::Change last = StoredChange(100, 5);
  EXPECT_FALSE(last.has_old_tuple());
  EXPECT_EQ(last.new_tuple().kinds(), "tt");
  EXPECT_EQ(last.new_tuple().values(1), "");
  EXPECT_EQ(last.new_tuple().values_size(), 2);
}

TEST_F(CaptureTest, UnchangedToastResolvesFromTheSameTransaction) {
  Begin(100, 1);
  Relation();
  Insert(Tuple({Text("1"), Text("first")}));
  Update(Tuple({Text("1"), UnchangedToast()}));
  Commit(100);
  ASSERT_TRUE(capture_->Flush().ok());
  EXPECT_EQ(StoredChange(100, 1).new_tuple().values(1), "first");
}

// The row's last image is still in the unwritten group: the lookup writes
// the group ahead without a sync, and only Flush makes it durable.
TEST_F(CaptureTest, UnchangedToastResolvesFromAnEarlierTransactionOfTheGroup) {
  Begin(100, 1);
  Relation();
  Insert(Tuple({Text("1"), Text("from the first transaction")}));
  Commit(100);
  Begin(200, 2);
  Relation();
  Update(Tuple({Text("1"), UnchangedToast()}));
  Commit(200);
  EXPECT_EQ(capture_->durable_lsn(), 0u);
  EXPECT_EQ(capture_->pending_txns(), 2u);
  ASSERT_TRUE(capture_->Flush().ok());
  EXPECT_EQ(capture_->durable_lsn(), 208u);
  EXPECT_EQ(StoredChange(200, 0).new_tuple().values(1), "from the first transaction");
  auto meta = store_->ReadMeta();
  ASSERT_TRUE(meta.ok());
  EXPECT_EQ(meta.value().resume_lsn(), 208u);
  EXPECT_EQ(meta.value().txn_count(), 2u);
}

TEST_F(CaptureTest, TruncateInTheGroupHidesEarlierImages) {
  Begin(100, 1);
  Relation();
  Insert(Tuple({Text("1"), Text("before the truncate")}));
  Insert(Tuple({Text("2"), Text("also before")}));
  Commit(100);
  Begin(200, 2);
  Relation();
  pgoutput::Message t;
  t.type = pgoutput::MessageType::kTruncate;
  t.truncate.relids = {kRelid};
  Feed(t);
  Insert(Tuple({Text("1"), Text("after the truncate")}));
  Update(Tuple({Text("1"), UnchangedToast()}));
  Update(Tuple({Text("2"), UnchangedToast()}));  // gone with the truncate
  Commit(200);
  ASSERT_TRUE(capture_->Flush().ok());
  EXPECT_EQ(StoredChange(200, 2).new_tuple().values(1), "after the truncate");
  EXPECT_EQ(StoredChange(200, 3).new_tuple().kinds(), "t?");
  EXPECT_EQ(capture_->stats().unresolved_toast, 1u);
}

// A group written ahead for a lookup and then dropped with the stream is
// resent by the server and rewritten identically: same ordinals, same count.
TEST_F(CaptureTest, StreamResetAfterALookupRewritesTheGroupIdentically) {
  auto feed_group = [&] {
    Begin(100, 1);
    Relation();
    Insert(Tuple({Text("1"), Text("v1")}));
    Commit(100);
    Begin(200, 2);
    Relation();
    Update(Tuple({Text("1"), UnchangedToast()}));
  };
  feed_group();
  capture_->ResetStream();  // broke inside transaction 200
  EXPECT_EQ(capture_->durable_lsn(), 0u);
  EXPECT_EQ(capture_->received_lsn(), 0u);
  feed_group();
  Commit(200);
  ASSERT_TRUE(capture_->Flush().ok());
  auto first = store_->GetTxn(100);
  auto second = store_->GetTxn(200);
  ASSERT_TRUE(first.ok() && first.value().has_value());
  ASSERT_TRUE(second.ok() && second.value().has_value());
  EXPECT_EQ(first.value()->ordinal(), 1u);
  EXPECT_EQ(second.value()->ordinal(), 2u);
  EXPECT_EQ(StoredChange(200, 0).new_tuple().values(1), "v1");
  auto meta = store_->ReadMeta();
  ASSERT_TRUE(meta.ok());
  EXPECT_EQ(meta.value().txn_count(), 2u);
}

// Changes are stored in chunks of kChunkChanges: every one is found by its
// position, scans see each once and in order, and a previous image is found
// in a chunk still in the group as well as in the open one.
TEST_F(CaptureTest, ChangesAreChunkedAndEachIsReadableByPosition) {
  const int n = static_cast<int>(kChunkChanges) * 2 + 22;
  Begin(100, 1);
  Relation();
  for (int i = 0; i < n; i++) Insert(Tuple({Text(std::to_string(i)), Text("v" + std::to_string(i))}));
  Update(Tuple({Text("0"), UnchangedToast()}));      // image in the first chunk
  Update(Tuple({Text("149"), UnchangedToast()}));    // image in the open chunk
  Commit(100);
  ASSERT_TRUE(capture_->Flush().ok());

  std::vector<uint32_t> seqs;
  ASSERT_TRUE(store_->ForEachChange(100, [&](uint32_t seq, const pb::Change& c) {
                      seqs.push_back(seq);
                      if (seq < static_cast<uint32_t>(n)) {
                        EXPECT_EQ(c.new_tuple().values(1), "v" + std::to_string(seq));
                      }
                      return true;
                    }).ok());
  ASSERT_EQ(seqs.size(), static_cast<size_t>(n + 2));
  for (size_t i = 0; i < seqs.size(); i++) EXPECT_EQ(seqs[i], i);
  EXPECT_EQ(StoredChange(100, n).new_tuple().values(1), "v0");
  EXPECT_EQ(StoredChange(100, n + 1).new_tuple().values(1), "v149");
  EXPECT_EQ(capture_->stats().unresolved_toast, 0u);

  // Ascending, repeated and backward reads through one ChangeReader.
  ChangeReader reader(store_.get());
  for (uint32_t seq : {0u, 1u, 63u, 64u, 64u, 130u, 5u, 149u, 150u, 151u}) {
    pb::Change c;
    bool found = false;
    ASSERT_TRUE(reader.Get(100, seq, &c, &found).ok());
    ASSERT_TRUE(found) << seq;
    const int row = seq == 150 ? 0 : seq == 151 ? 149 : static_cast<int>(seq);
    EXPECT_EQ(c.new_tuple().values(1), "v" + std::to_string(row)) << seq;
  }
  for (auto [lsn, seq] : {std::pair<uint64_t, uint32_t>{100, static_cast<uint32_t>(n + 2)},
                          {99, 0}, {101, 0}}) {
    pb::Change c;
    bool found = true;
    ASSERT_TRUE(reader.Get(lsn, seq, &c, &found).ok());
    EXPECT_FALSE(found) << lsn << "/" << seq;
  }
}

// A transaction spilled ahead and then resent after a stream reset is
// rewritten into the same chunk keys: each change once.
TEST_F(CaptureTest, SpilledTransactionResentIsStoredOnce) {
  const int n = 40000;  // > kSpillBytes of batch
  const std::string filler(200, 'x');
  auto feed = [&](bool commit) {
    Begin(100, 1);
    Relation();
    for (int i = 0; i < n; i++) Insert(Tuple({Text(std::to_string(i)), Text(filler)}));
    if (commit) Commit(100);
  };
  feed(false);
  ASSERT_GT(capture_->stats().flushes, 0u) << "nothing was spilled; the test proves nothing";
  capture_->ResetStream();
  feed(true);
  ASSERT_TRUE(capture_->Flush().ok());
  uint32_t next = 0;
  ASSERT_TRUE(store_->ForEachChange(100, [&](uint32_t seq, const pb::Change&) {
                      EXPECT_EQ(seq, next);
                      next++;
                      return true;
                    }).ok());
  EXPECT_EQ(next, static_cast<uint32_t>(n));
  // Its header lists the table once, over every spill and the resend.
  ExpectListsOneTable(100, 0, static_cast<uint32_t>(n - 1), static_cast<uint32_t>(n));
}

// A transaction's header lists the tables whose rows it changed, with the
// first and last position and the row-index entries (a key change makes
// two); a transaction without row changes lists none.
TEST_F(CaptureTest, TxnHeaderListsTheTablesItChanged) {
  Begin(100, 1);
  Relation();
  Insert(Tuple({Text("1"), Text("a")}));
  pgoutput::Message message;
  message.type = pgoutput::MessageType::kMessage;
  message.message = {1, 0, "note", "x"};
  Feed(message);
  UpdateKey(Tuple({Text("1"), Null()}), Tuple({Text("2"), Text("b")}));
  Commit(100);
  Begin(200, 2);
  Feed(message);
  Commit(200);
  ASSERT_TRUE(capture_->Flush().ok());
  ExpectListsOneTable(100, 0, 2, 3);
  auto second = store_->GetTxn(200);
  ASSERT_TRUE(second.ok() && second->has_value());
  EXPECT_TRUE((*second)->tables_listed());
  EXPECT_EQ((*second)->tables_size(), 0);
}

// Row-index entries per relid.
std::map<uint32_t, int> RowIndexEntries(Store* store) {
  std::map<uint32_t, int> entries;
  std::unique_ptr<rocksdb::Iterator> it(
      store->db()->NewIterator(rocksdb::ReadOptions(), store->cf(Family::kRowIdx)));
  for (it->SeekToFirst(); it->Valid(); it->Next()) {
    uint32_t relid, seq;
    uint64_t lsn;
    std::string_view rowkey;
    EXPECT_TRUE(
        keys::ParseRowIdxKey(ToView(it->key()), &relid, &rowkey, &lsn, &seq).ok());
    entries[relid]++;
  }
  EXPECT_TRUE(it->status().ok());
  return entries;
}

// A table without a key that is not REPLICA IDENTITY FULL gets only INSERTs:
// its rows are whole in its changes and get no row-index entries, while the
// header lists them as for any table (restores find them there). Keyed and
// REPLICA IDENTITY FULL tables are indexed.
TEST_F(CaptureTest, RowIndexHoldsTheRowsOfTablesThatCanBeUpdated) {
  struct Table {
    uint32_t relid;
    char identity;
    bool keyed;
    int entries;  // expected row-index entries for two INSERTs
  };
  const std::vector<Table> tables = {{kRelid + 1, 'd', true, 2},   // primary key
                                     {kRelid + 2, 'f', false, 2},  // REPLICA IDENTITY FULL
                                     {kRelid + 3, 'd', false, 0},  // no key
                                     {kRelid + 4, 'n', false, 0},  // REPLICA IDENTITY NOTHING
                                     {kRelid + 5, 'i', true, 2}};  // USING INDEX
  Begin(100, 1);
  for (const Table& t : tables) {
    pgoutput::Message rel;
    rel.type = pgoutput::MessageType::kRelation;
    rel.relation.relid = t.relid;
    rel.relation.nspname = "public";
    rel.relation.relname = "t" + std::to_string(t.relid);
    rel.relation.replica_identity = t.identity;
    rel.relation.columns = {{t.keyed ? uint8_t{1} : uint8_t{0}, "id", 23, -1},
                            {0, "note", 25, -1}};
    Feed(rel);
    for (const char* id : {"1", "2"}) {
      pgoutput::Message ins;
      ins.type = pgoutput::MessageType::kInsert;
      ins.insert = {t.relid, Tuple({Text(id), Text("x")})};
      Feed(ins);
    }
  }
  Commit(100);
  ASSERT_TRUE(capture_->Flush().ok());
  const std::map<uint32_t, int> entries = RowIndexEntries(store_.get());
  auto header = store_->GetTxn(100);
  ASSERT_TRUE(header.ok() && header->has_value());
  ASSERT_EQ((*header)->tables_size(), static_cast<int>(tables.size()));
  for (size_t i = 0; i < tables.size(); i++) {
    SCOPED_TRACE("relid " + std::to_string(tables[i].relid));
    auto found = entries.find(tables[i].relid);
    EXPECT_EQ(found == entries.end() ? 0 : found->second, tables[i].entries);
    const pb::TxnTable& listed = (*header)->tables(static_cast<int>(i));
    EXPECT_EQ(listed.relid(), tables[i].relid);
    EXPECT_EQ(listed.first_seq(), 2 * i);
    EXPECT_EQ(listed.last_seq(), 2 * i + 1);
    EXPECT_EQ(listed.entries(), 2u);
    const pb::Change second = StoredChange(100, static_cast<uint32_t>(2 * i + 1));
    EXPECT_EQ(second.op(), pb::Change::INSERT);
    EXPECT_EQ(second.relid(), tables[i].relid);
    EXPECT_EQ(second.new_tuple().values(0), "2");
  }
}

// A store of format 1 (one entry per change) is refused, not misread.
TEST_F(CaptureTest, StoreOfAnEarlierFormatIsRefused) {
  auto meta = store_->ReadMeta();
  ASSERT_TRUE(meta.ok());
  pb::StoreMeta old = meta.value();
  old.set_format_version(1);
  rocksdb::WriteBatch batch;
  batch.Put(store_->cf(Family::kMeta), keys::kMetaKey, old.SerializeAsString());
  ASSERT_TRUE(store_->Write(&batch, /*sync=*/true).ok());
  capture_.reset();
  store_.reset();
  auto reopened = Store::OpenForWrite(dir_.path() + "/store", /*create=*/false);
  ASSERT_FALSE(reopened.ok());
  EXPECT_EQ(reopened.status().code(), Status::kFailedPrecondition);
  EXPECT_NE(reopened.status().message().find("has format version 1, written by an earlier "
                                             "pgtrail; this one reads format 2"),
            std::string::npos)
      << reopened.status().message();
}

// Unlogged batches (catching up) become durable only once the store has
// flushed them to table files; a logged Flush writes its own group the same
// way and flushes them all.
TEST_F(CaptureTest, UnloggedBatchesBecomeDurableWhenFlushed) {
  Begin(100, 1);
  Relation();
  Insert(Tuple({Text("1"), Text("a")}));
  Commit(100);
  ASSERT_TRUE(capture_->Flush(/*unlogged=*/true).ok());
  EXPECT_TRUE(capture_->unlogged());
  capture_->PollDurable();
  EXPECT_EQ(capture_->durable_lsn(), 0u);
  EXPECT_EQ(StoredChange(100, 0).new_tuple().values(1), "a");  // readable meanwhile

  ASSERT_TRUE(store_->FlushMemtables().ok());
  capture_->PollDurable();
  EXPECT_EQ(capture_->durable_lsn(), 108u);

  Begin(200, 2);
  Relation();
  Insert(Tuple({Text("2"), Text("b")}));
  Commit(200);
  ASSERT_TRUE(capture_->Flush(/*unlogged=*/true).ok());
  EXPECT_EQ(capture_->durable_lsn(), 108u);
  // The stream runs dry with one more group pending: the logged Flush
  // writes it (unlogged, then flushed with the rest) and leaves unlogged
  // mode with all three transactions durable.
  Begin(300, 3);
  Relation();
  Insert(Tuple({Text("3"), Text("c")}));
  Commit(300);
  ASSERT_TRUE(capture_->Flush(/*unlogged=*/false).ok());  // leaves unlogged mode
  EXPECT_FALSE(capture_->unlogged());
  EXPECT_EQ(capture_->durable_lsn(), 308u);
  auto meta = store_->ReadMeta();
  ASSERT_TRUE(meta.ok());
  EXPECT_EQ(meta.value().resume_lsn(), 308u);
  EXPECT_EQ(meta.value().txn_count(), 3u);
  EXPECT_EQ(StoredChange(300, 0).new_tuple().values(1), "c");
  // It went to a table file, not through RocksDB's write-ahead log (whose
  // sync, on a log file new after the flush, cost ~45 ms).
  EXPECT_EQ(WriteAheadLogBytes(), 0u);
  // From here on, groups go through the write-ahead log, synced.
  Begin(400, 4);
  Relation();
  Insert(Tuple({Text("4"), Text("d")}));
  Commit(400);
  ASSERT_TRUE(capture_->Flush().ok());
  EXPECT_FALSE(capture_->unlogged());
  EXPECT_EQ(capture_->durable_lsn(), 408u);
  EXPECT_GT(WriteAheadLogBytes(), 0u);
}

// A stream that breaks inside a transaction while unlogged batches wait for
// a flush: the agent then flushes (a logged Flush) and resumes from the new
// durable LSN. The next transaction must continue the counters of the
// batches already written, not of the last durable state before them
// (duplicate ordinals and a running maximum of commit times that went back
// would break the time index).
TEST_F(CaptureTest, StreamResetInCatchUpContinuesFromTheWrittenBatches) {
  Begin(100, 1);
  Relation();
  Insert(Tuple({Text("1"), Text("a")}));
  Commit(100);
  ASSERT_TRUE(capture_->Flush(/*unlogged=*/true).ok());
  Begin(200, 2);
  Relation();
  Insert(Tuple({Text("2"), Text("b")}));
  capture_->ResetStream();                  // broke inside transaction 200
  ASSERT_TRUE(capture_->Flush().ok());      // as the agent does after a break
  EXPECT_EQ(capture_->durable_lsn(), 108u);
  EXPECT_EQ(capture_->received_lsn(), 108u);

  // The server resends from 108 on: transaction 100 is not resent.
  Begin(200, 2);
  Relation();
  Insert(Tuple({Text("2"), Text("b")}));
  Commit(200);
  ASSERT_TRUE(capture_->Flush().ok());
  auto second = store_->GetTxn(200);
  ASSERT_TRUE(second.ok() && second.value().has_value());
  EXPECT_EQ(second.value()->ordinal(), 2u);
  auto meta = store_->ReadMeta();
  ASSERT_TRUE(meta.ok());
  EXPECT_EQ(meta.value().txn_count(), 2u);
  EXPECT_EQ(meta.value().resume_lsn(), 208u);
}

// Catching up is judged on the source's clock alone (the send time of its
// frames against its commit times), so a skewed agent clock cannot fake it.
TEST_F(CaptureTest, CatchingUpComparesTheSourceClockWithItsCommitTimes) {
  EXPECT_FALSE(capture_->CatchingUp());  // no frame yet
  Begin(100, 1);
  Relation();
  Insert(Tuple({Text("1"), Text("a")}));
  Commit(100);  // commit time 0: 2000-01-01 in PostgreSQL's epoch
  const int64_t committed = capture_->meta().last_commit_time_us();
  EXPECT_EQ(committed, PgTimeToUnixUs(0));
  capture_->set_source_clock(committed + Capture::kCatchUpAgeUs / 2);
  EXPECT_FALSE(capture_->CatchingUp());
  capture_->set_source_clock(committed + Capture::kCatchUpAgeUs + 1);
  EXPECT_TRUE(capture_->CatchingUp());
}

TEST_F(CaptureTest, UnresolvableToastIsUnknownNeverNull) {
  Begin(100, 1);
  Relation();
  Update(Tuple({Text("7"), UnchangedToast()}));  // a row never seen before
  Commit(100);
  ASSERT_TRUE(capture_->Flush().ok());
  pb::Change update = StoredChange(100, 0);
  EXPECT_EQ(update.new_tuple().kinds(), "t?");
  EXPECT_EQ(capture_->stats().unresolved_toast, 1u);
}

TEST_F(CaptureTest, NullStaysNull) {
  Begin(100, 1);
  Relation();
  Insert(Tuple({Text("1"), Null()}));
  Commit(100);
  ASSERT_TRUE(capture_->Flush().ok());
  EXPECT_EQ(StoredChange(100, 0).new_tuple().kinds(), "tn");
}

TEST_F(CaptureTest, FlushMakesTheEndLsnDurableAndResentTransactionsAreSkipped) {
  Begin(100, 1);
  Relation();
  Insert(Tuple({Text("1"), Text("x")}));
  Commit(100);
  EXPECT_EQ(capture_->durable_lsn(), 0u);
  ASSERT_TRUE(capture_->Flush().ok());
  EXPECT_EQ(capture_->durable_lsn(), 108u);
  ASSERT_EQ(store_->ReadMeta()->resume_lsn(), 108u);

  // After a reconnect the server sends the same transaction again.
  capture_->ResetStream();
  Begin(100, 1);
  Relation();
  Insert(Tuple({Text("1"), Text("x")}));
  Commit(100);
  EXPECT_EQ(capture_->stats().txns_skipped, 1u);
  EXPECT_EQ(capture_->pending_txns(), 0u);
  EXPECT_EQ(store_->ReadMeta()->txn_count(), 1u);
}

TEST_F(CaptureTest, ChangeForUnknownRelationIsCorruption) {
  Begin(100, 1);
  pgoutput::Message m;
  m.type = pgoutput::MessageType::kInsert;
  m.insert = {kRelid, Tuple({Text("1"), Text("x")})};
  Status st = capture_->OnMessage(m);
  EXPECT_EQ(st.code(), Status::kCorruption);
  EXPECT_NE(st.message().find("without a preceding Relation message"), std::string::npos);
}

// A row whose width differs from its Relation message is a protocol
// violation, on the INSERT path that encodes straight from the wire (with
// and without unchanged TOAST) and on the UPDATE path alike.
TEST_F(CaptureTest, RowOfTheWrongWidthIsCorruption) {
  const pgoutput::TupleData rows[] = {
      Tuple({Text("1"), Text("x"), Text("extra")}),
      Tuple({Text("1")}),
      Tuple({Text("1"), UnchangedToast(), Null()}),
  };
  for (const auto& row : rows) {
    for (auto type : {pgoutput::MessageType::kInsert, pgoutput::MessageType::kUpdate}) {
      Begin(100, 1);
      Relation();
      pgoutput::Message m;
      m.type = type;
      m.insert = {kRelid, row};
      m.update.relid = kRelid;
      m.update.new_tuple = row;
      Status st = capture_->OnMessage(m);
      EXPECT_EQ(st.code(), Status::kCorruption) << st.ToString();
      EXPECT_NE(st.message().find("accounts has " + std::to_string(row.columns.size()) +
                                  " columns, its Relation message 2"),
                std::string::npos)
          << st.message();
      capture_->ResetStream();
    }
  }
}

TEST_F(CaptureTest, BeginInsideATransactionIsCorruption) {
  Begin(100, 1);
  pgoutput::Message m;
  m.type = pgoutput::MessageType::kBegin;
  m.begin = {200, 0, 2};
  Status st = capture_->OnMessage(m);
  EXPECT_EQ(st.code(), Status::kCorruption);
  EXPECT_NE(st.message().find("inside transaction 1"), std::string::npos);
}

TEST_F(CaptureTest, MarkMessagesAreIndexedByName) {
  Begin(100, 1);
  pgoutput::Message m;
  m.type = pgoutput::MessageType::kMessage;
  m.message = {1, 90, kMarkPrefix, "{\"name\":\"before-v2\"}"};
  Feed(m);
  Commit(100);
  ASSERT_TRUE(capture_->Flush().ok());
  auto marks = store_->ListMarks();
  ASSERT_TRUE(marks.ok());
  ASSERT_EQ(marks->size(), 1u);
  EXPECT_EQ((*marks)[0].name, "before-v2");
  EXPECT_EQ((*marks)[0].commit_lsn, 100u);
}

TEST(MarkName, ComesFromTheContentsNameField) {
  EXPECT_EQ(MarkNameFromContent("{\"name\":\"pre-42\"}"), "pre-42");
  EXPECT_EQ(MarkNameFromContent("{\"other\":1}"), "");
  EXPECT_EQ(MarkNameFromContent("{\"name\":\"unterminated"), "");
}

// The INSERT encoder writes the bytes protobuf writes for the same Change:
// every column kind, empty and NULL values, values and field numbers whose
// varints take one to ten bytes, zero fields that protobuf leaves out.
TEST(AppendInsertToChunk, EqualsProtobufsSerialization) {
  std::mt19937_64 rng(20261121);
  const uint64_t scalars[] = {0, 1, 127, 128, 16383, 16384, 0xFFFFFFFFu};
  const uint64_t lsns[] = {0, 1, 0x16B3A648, 1ull << 35, ~0ull};
  const size_t lengths[] = {0, 1, 2, 31, 127, 128, 300, 16384, 70000};
  int tried = 0;
  for (uint64_t relid : scalars) {
    for (uint64_t lsn : lsns) {
      for (uint64_t seq : scalars) {
        pgoutput::TupleData tuple;
        const size_t ncols = rng() % 6 + (relid == 0 ? 0 : 1);  // relid 0: maybe no columns
        for (size_t i = 0; i < ncols; i++) {
          const size_t length = lengths[rng() % std::size(lengths)];
          std::string value(length, '\0');
          for (char& c : value) c = static_cast<char>(rng());
          switch (rng() % 3) {
            case 0: tuple.columns.push_back(Null()); break;
            case 1: tuple.columns.push_back(Text(value)); break;
            default: tuple.columns.push_back(pgoutput::testing::Binary(value)); break;
          }
        }
        pb::Change change;
        change.set_op(pb::Change::INSERT);
        change.set_relid(static_cast<uint32_t>(relid));
        change.set_relation_lsn(lsn);
        change.set_relation_seq(static_cast<uint32_t>(seq));
        pb::Tuple* t = change.mutable_new_tuple();
        for (const auto& c : tuple.columns) {
          t->mutable_kinds()->push_back(static_cast<char>(c.kind));
          t->add_values(std::string(c.data));
        }
        std::string expected = "prefix";
        AppendToChunk(&expected, change);
        std::string got = "prefix";
        AppendInsertToChunk(&got, static_cast<uint32_t>(relid), lsn, static_cast<uint32_t>(seq),
                            tuple);
        ASSERT_EQ(got, expected) << "relid " << relid << " lsn " << lsn << " seq " << seq
                                 << ", " << ncols << " columns";
        tried++;
      }
    }
  }
  EXPECT_EQ(tried, 7 * 5 * 7);
}

}  // namespace
}  // namespace pgtrail
