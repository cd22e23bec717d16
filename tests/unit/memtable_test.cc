// The finger skip list (storage/memtable.h) inside a real RocksDB: every read
// path against an ordered model, in memtables, after a flush and after a
// reopen, with a reader running alongside the writer; and the comparison
// counts that are its reason to exist.
#include "storage/memtable.h"

#include <gtest/gtest.h>
#include <rocksdb/comparator.h>
#include <rocksdb/db.h>
#include <rocksdb/write_batch.h>

#include <algorithm>
#include <atomic>
#include <map>
#include <memory>
#include <optional>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "tests/unit/temp_dir.h"

namespace pgtrail {
namespace {

// Bytewise order, counting the comparisons made.
class CountingComparator : public rocksdb::Comparator {
 public:
  const char* Name() const override { return "pgtrail.test.CountingBytewise"; }
  int Compare(const rocksdb::Slice& a, const rocksdb::Slice& b) const override {
    count.fetch_add(1, std::memory_order_relaxed);
    return a.compare(b);
  }
  void FindShortestSeparator(std::string*, const rocksdb::Slice&) const override {}
  void FindShortSuccessor(std::string*) const override {}
  mutable std::atomic<uint64_t> count{0};
};

class MemtableTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_FALSE(dir_.path().empty()) << "cannot make a directory in /tmp";
    Open();
  }
  void TearDown() override {
    db_.reset();
  }

  void Open() {
    rocksdb::Options options;
    options.create_if_missing = true;
    options.comparator = &comparator_;
    options.memtable_factory = NewFingerSkipListFactory();
    options.allow_concurrent_memtable_write = false;
    options.write_buffer_size = 256u << 20;  // everything stays in the memtable
    rocksdb::DB* db = nullptr;
    rocksdb::Status s = rocksdb::DB::Open(options, dir_.path(), &db);
    ASSERT_TRUE(s.ok()) << s.ToString();
    db_.reset(db);
  }

  void Put(rocksdb::WriteBatch* batch, const std::string& key, const std::string& value) {
    batch->Put(key, value);
    model_[key] = value;
  }
  void Write(rocksdb::WriteBatch* batch) {
    rocksdb::Status s = db_->Write(rocksdb::WriteOptions(), batch);
    ASSERT_TRUE(s.ok()) << s.ToString();
    batch->Clear();
  }

  // Every read path of the database against model_.
  void ExpectMatchesModel(std::mt19937* rng) {
    std::unique_ptr<rocksdb::Iterator> it(db_->NewIterator(rocksdb::ReadOptions()));
    std::vector<std::pair<std::string, std::string>> forward;
    for (it->SeekToFirst(); it->Valid(); it->Next()) {
      forward.emplace_back(it->key().ToString(), it->value().ToString());
    }
    ASSERT_TRUE(it->status().ok());
    const std::vector<std::pair<std::string, std::string>> expected(model_.begin(), model_.end());
    EXPECT_TRUE(forward == expected)
        << forward.size() << " keys read forward, " << expected.size() << " expected";

    size_t backward = 0;
    auto m = model_.rbegin();
    for (it->SeekToLast(); it->Valid(); it->Prev(), ++m, ++backward) {
      ASSERT_NE(m, model_.rend());
      ASSERT_EQ(it->key().ToString(), m->first);
    }
    EXPECT_EQ(backward, model_.size());

    for (int i = 0; i < 2000; i++) {
      const std::string target = RandomKey(rng);
      auto ge = model_.lower_bound(target);
      it->Seek(target);
      if (ge == model_.end()) {
        EXPECT_FALSE(it->Valid()) << "Seek past the end: " << target;
      } else {
        ASSERT_TRUE(it->Valid()) << "Seek " << target;
        EXPECT_EQ(it->key().ToString(), ge->first);
      }
      auto le = model_.upper_bound(target);
      it->SeekForPrev(target);
      if (le == model_.begin()) {
        EXPECT_FALSE(it->Valid()) << "SeekForPrev before the start: " << target;
      } else {
        --le;
        ASSERT_TRUE(it->Valid()) << "SeekForPrev " << target;
        EXPECT_EQ(it->key().ToString(), le->first);
      }
      std::string value;
      rocksdb::Status s = db_->Get(rocksdb::ReadOptions(), target, &value);
      auto exact = model_.find(target);
      if (exact == model_.end()) {
        EXPECT_TRUE(s.IsNotFound()) << target << ": " << s.ToString();
      } else {
        ASSERT_TRUE(s.ok()) << s.ToString();
        EXPECT_EQ(value, exact->second);
      }
    }
    // Present keys, looked up directly.
    for (const auto& [key, expected] : model_) {
      if ((*rng)() % 16 != 0) continue;
      std::string value;
      ASSERT_TRUE(db_->Get(rocksdb::ReadOptions(), key, &value).ok()) << key;
      EXPECT_EQ(value, expected);
    }
  }

  static std::string Key(uint32_t n) {
    std::string k = "k";
    for (int i = 3; i >= 0; i--) k.push_back(static_cast<char>(n >> (8 * i)));
    return k;
  }
  static std::string RandomKey(std::mt19937* rng) { return Key((*rng)() % 50000); }

  testing::TempDir dir_{"memtable"};
  CountingComparator comparator_;
  std::unique_ptr<rocksdb::DB> db_;
  std::map<std::string, std::string> model_;
};

TEST_F(MemtableTest, RandomOrderOverwritesAndSortedBatchesReadBackInOrder) {
  std::mt19937 rng(7);
  rocksdb::WriteBatch batch;
  // Single keys in random order, many overwritten (a newer sequence number
  // must hide the older entry of the same key).
  for (int i = 0; i < 20000; i++) {
    Put(&batch, RandomKey(&rng), "v" + std::to_string(i));
    if (i % 7 == 0) Write(&batch);
  }
  Write(&batch);
  // Batches sorted within themselves, scattered across the key space.
  for (int b = 0; b < 40; b++) {
    std::vector<std::string> keys;
    for (int i = 0; i < 500; i++) keys.push_back(RandomKey(&rng));
    std::sort(keys.begin(), keys.end());
    for (const std::string& k : keys) Put(&batch, k, "b" + std::to_string(b));
    Write(&batch);
  }
  // Descending runs: every insertion before the previous one.
  for (int i = 60000; i > 55000; i--) Put(&batch, Key(static_cast<uint32_t>(i)), "d");
  Write(&batch);
  ExpectMatchesModel(&rng);

  // The same contents read from the table file the memtable flushed into...
  ASSERT_TRUE(db_->Flush(rocksdb::FlushOptions()).ok());
  ExpectMatchesModel(&rng);
  // ... and from a memtable rebuilt by replaying the write-ahead log.
  for (int i = 0; i < 3000; i++) Put(&batch, RandomKey(&rng), "after flush " + std::to_string(i));
  Write(&batch);
  db_.reset();
  Open();
  ExpectMatchesModel(&rng);
}

TEST_F(MemtableTest, DeletesHideEarlierValues) {
  std::mt19937 rng(11);
  rocksdb::WriteBatch batch;
  for (uint32_t i = 0; i < 5000; i++) Put(&batch, Key(i * 3), "x");
  Write(&batch);
  for (uint32_t i = 0; i < 5000; i += 2) {
    batch.Delete(Key(i * 3));
    model_.erase(Key(i * 3));
  }
  Write(&batch);
  ExpectMatchesModel(&rng);
}

TEST_F(MemtableTest, AscendingInsertionsCostAboutTwoComparisons) {
  // RocksDB's skip list, as Debian builds it, makes ~25 comparisons per
  // insertion whatever the order; a finger search makes one or two when each
  // key follows the previous one, and a few more per level of distance.
  rocksdb::WriteBatch batch;
  const int n = 100000;
  for (int i = 0; i < n; i++) Put(&batch, Key(static_cast<uint32_t>(i)), "v");
  comparator_.count = 0;
  Write(&batch);
  const double ascending = static_cast<double>(comparator_.count.load()) / n;
  EXPECT_LT(ascending, 3.0);

  // Sorted batches of 5,000 random keys into 100,000-200,000: a few per
  // level of the distance between neighbours (~14 here), where a search from
  // the head makes ~2 log2(n), about 35.
  std::mt19937 rng(3);
  uint64_t compared = 0;
  for (int b = 0; b < 20; b++) {
    std::vector<std::string> keys;
    for (int i = 0; i < 5000; i++) keys.push_back(Key(static_cast<uint32_t>(rng() % (4 * n))) + "x");
    std::sort(keys.begin(), keys.end());
    for (const std::string& k : keys) Put(&batch, k, "w");
    comparator_.count = 0;
    Write(&batch);
    compared += comparator_.count.load();
  }
  EXPECT_LT(static_cast<double>(compared) / (20 * 5000), 20.0);
  std::mt19937 check(5);
  ExpectMatchesModel(&check);
}

TEST_F(MemtableTest, ReadersSeeOrderedPrefixesWhileTheWriterInserts) {
  std::atomic<bool> done{false};
  std::atomic<int> scans{0};
  std::atomic<bool> ordered{true};
  std::thread reader([&] {
    while (!done.load()) {
      std::unique_ptr<rocksdb::Iterator> it(db_->NewIterator(rocksdb::ReadOptions()));
      std::string previous;
      for (it->SeekToFirst(); it->Valid(); it->Next()) {
        std::string key = it->key().ToString();
        if (!previous.empty() && key <= previous) ordered = false;
        previous = std::move(key);
      }
      scans++;
    }
  });
  std::mt19937 rng(13);
  rocksdb::WriteBatch batch;
  for (int b = 0; b < 200; b++) {
    std::vector<std::string> keys;
    for (int i = 0; i < 200; i++) keys.push_back(RandomKey(&rng));
    std::sort(keys.begin(), keys.end());
    for (const std::string& k : keys) Put(&batch, k, "c");
    Write(&batch);
  }
  while (scans.load() < 3) std::this_thread::yield();
  done = true;
  reader.join();
  EXPECT_TRUE(ordered.load());
  ExpectMatchesModel(&rng);
}

}  // namespace
}  // namespace pgtrail
