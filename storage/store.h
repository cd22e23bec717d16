// The store: a RocksDB database holding a source database's history.
// Key layouts: storage/keys.h. Stored messages: proto/pgtrail.proto.
//
// One writer (the agent) opens it with OpenForWrite; any number of readers
// (pitr-restore, changelog) open it with OpenForRead while the agent runs:
// readers are RocksDB secondary instances and see what the agent has written
// up to their last CatchUp().
//
// Durability contract: a transaction is visible to readers only once its
// TxnHeader is in the txn family, and headers are written in the same synced
// WriteBatch as the StoreMeta carrying the new resume LSN. Change and row
// index entries of a transaction may be written earlier (without sync) by a
// large transaction; they are keyed by the transaction's commit LSN and are
// rewritten identically if the transaction is received again, and readers
// never look at entries of a commit LSN that has no header.
//
// Thread safety: a Store may be used from one thread at a time.
#ifndef PGTRAIL_STORAGE_STORE_H_
#define PGTRAIL_STORAGE_STORE_H_

#include <rocksdb/slice.h>

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "proto/pgtrail.pb.h"
#include "storage/keys.h"
#include "storage/status.h"

namespace rocksdb {
class DB;
class ColumnFamilyHandle;
class Iterator;
class WriteBatch;
}  // namespace rocksdb

namespace pgtrail {

inline constexpr char kStoreMagic[] = "pgtrail-store";
// 2: the change family holds chunks of changes (see AppendToChunk).
inline constexpr uint32_t kStoreFormatVersion = 2;

// Column families. The order is the open order; names are stored on disk.
enum class Family {
  kMeta = 0,  // RocksDB's "default" family
  kTxn,
  kChange,
  kRelation,
  kTime,
  kSnapshot,
  kSnapRow,
  kRowIdx,
  kTruncate,
  kMark,
  kDdl,
  kCount,
};

class Store {
 public:
  // Opens the store at `path` for the agent. With create, a missing or empty
  // directory becomes a new store (mode 0700, files 0600) with a fresh
  // StoreMeta. Errors: kNotFound (missing and !create), kFailedPrecondition
  // (a directory that is not a pgtrail store, or one held by another agent).
  static Result<std::unique_ptr<Store>> OpenForWrite(const std::string& path, bool create);

  // Opens the store for reading while an agent may be writing it.
  // Errors: kNotFound "no pgtrail store at PATH", kFailedPrecondition
  // "PATH is not a pgtrail store", kCorruption for unreadable meta.
  static Result<std::unique_ptr<Store>> OpenForRead(const std::string& path);

  ~Store();
  Store(const Store&) = delete;
  Store& operator=(const Store&) = delete;

  const std::string& path() const { return path_; }
  bool read_only() const { return read_only_; }

  // Readers: catch up with what the agent has written since open.
  Status CatchUp();

  Result<pb::StoreMeta> ReadMeta();

  // --- Transactions -------------------------------------------------------
  Result<std::optional<pb::TxnHeader>> GetTxn(uint64_t commit_lsn);
  // Calls fn for each transaction with from <= commit_lsn <= to, in LSN
  // order, until fn returns false.
  Status ForEachTxn(uint64_t from, uint64_t to,
                    const std::function<bool(const pb::TxnHeader&)>& fn);
  // Calls fn(seq, change) for each change of one transaction in order.
  Status ForEachChange(uint64_t commit_lsn,
                       const std::function<bool(uint32_t, const pb::Change&)>& fn);
  // The change at (commit_lsn, seq); kCorruption if it is missing. For many
  // changes in ascending order, a ChangeReader is much faster.
  Result<pb::Change> GetChange(uint64_t commit_lsn, uint32_t seq);
  // Calls fn(header, seq, change) for every change of every transaction with
  // from <= commit_lsn <= to, in LSN order, reading the transactions that
  // want(header) accepts with one forward cursor; stops when fn returns false.
  // If any_of is not empty, a change whose stored bytes contain none of its
  // strings is skipped without being parsed: a prefilter for a search, since
  // the values (and a message's prefix and content) are stored as they are.
  Status ForEachChangeInRange(
      uint64_t from, uint64_t to, const std::function<bool(const pb::TxnHeader&)>& want,
      const std::function<bool(const pb::TxnHeader&, uint32_t, const pb::Change&)>& fn,
      const std::vector<std::string_view>& any_of = {});
  // Commit LSN of the first transaction, in LSN order, whose commit time is
  // later than t_us (Unix µs); nullopt if there is none.
  Result<std::optional<uint64_t>> FirstCommitLaterThan(int64_t t_us);
  // The last transaction with commit_lsn < lsn (or <= lsn when inclusive).
  Result<std::optional<pb::TxnHeader>> LastTxnBefore(uint64_t lsn, bool inclusive);

  // --- Relations ----------------------------------------------------------
  // The version of relid in force at position (lsn, seq): the newest version
  // whose (lsn, seq) is at or before it.
  Result<std::optional<pb::Relation>> GetRelation(uint32_t relid, uint64_t lsn,
                                                  uint32_t seq = UINT32_MAX);
  // The latest version <= lsn of every relation known at lsn.
  Result<std::vector<pb::Relation>> RelationsAt(uint64_t lsn);
  // Every version of relid, oldest first, each with its (lsn, seq).
  struct RelationVersion {
    uint64_t lsn;
    uint32_t seq;
    pb::Relation rel;
  };
  Result<std::vector<RelationVersion>> RelationVersions(uint32_t relid);

  // --- Snapshots ----------------------------------------------------------
  // Snapshots in id order; only complete ones unless include_incomplete.
  Result<std::vector<pb::Snapshot>> ListSnapshots(bool include_incomplete = false);

  // --- Named restore points ---------------------------------------------
  struct Mark {
    std::string name;
    uint64_t commit_lsn = 0;
    uint32_t seq = 0;
    pb::TxnHeader txn;  // the transaction that recorded it
  };
  // Every durable mark, in LSN order.
  Result<std::vector<Mark>> ListMarks();

  // --- Row history --------------------------------------------------------
  // The last image of the keyed row (relid, rowkey) strictly before position
  // (lsn, seq): the new tuple of its last change if that was an upsert, the
  // snapshot row if no change since the latest snapshot at or before lsn and
  // no TRUNCATE in between, else nullopt (deleted, truncated or never seen).
  // `pending` answers first for changes not yet written (the capture's open
  // chunk): it sets *found when it holds the change at (lsn, seq).
  using PendingChanges =
      std::function<Status(uint64_t lsn, uint32_t seq, pb::Change* out, bool* found)>;
  Result<std::optional<pb::Tuple>> PreviousImage(uint32_t relid, std::string_view rowkey,
                                                 uint64_t lsn, uint32_t seq,
                                                 const PendingChanges& pending = nullptr);

  // --- Raw access for writers and scanners ---------------------------------
  rocksdb::DB* db() const { return db_; }
  rocksdb::ColumnFamilyHandle* cf(Family family) const;
  // Moves memtables into table files (compressed), so the next open does not
  // replay a long write-ahead log. For after a snapshot and a clean stop.
  Status FlushMemtables();
  // Writes a batch atomically; with sync it is durable on return.
  Status Write(rocksdb::WriteBatch* batch, bool sync);
  // Writes a batch atomically without the write-ahead log: it becomes
  // durable only when the memtables holding it are flushed, which the store
  // does for all families at once (atomic_flush), so what survives a crash
  // is always a prefix of the writes. Sets *last_seqno to the sequence
  // number of the batch's last entry. A writer that mixes both kinds must
  // call FlushMemtables before its next logged write.
  Status WriteUnlogged(rocksdb::WriteBatch* batch, uint64_t* last_seqno);
  // Sequence number of the newest meta-family entry in a flushed table
  // file: every write up to it is durable (atomic flush). 0 before any flush.
  uint64_t FlushedMetaSeqno() const;
  // Reads one value; nullopt if absent.
  Result<std::optional<std::string>> Get(Family family, std::string_view key);

 private:
  Store() = default;
  static Result<std::unique_ptr<Store>> Open(const std::string& path, bool read_only,
                                             bool create);

  class FlushTracker;

  std::string path_;
  std::string secondary_path_;  // readers only: scratch dir, removed on close
  std::shared_ptr<FlushTracker> flushes_;  // writers only
  bool read_only_ = false;
  rocksdb::DB* db_ = nullptr;
  std::vector<rocksdb::ColumnFamilyHandle*> handles_;
};

// The change family stores the changes of a transaction in chunks of up to
// kChunkChanges changes or about kChunkBytes: key ChangeKey(commit_lsn, seq
// of the chunk's first change), value one AppendToChunk entry per change in
// seq order (u32 BE length, serialized pb::Change). One RocksDB entry per
// chunk instead of per change halves the entries a capture writes, flushes
// and compacts. Chunks are cut by the transaction's own changes only, so a
// transaction the server resends is rewritten into the same keys.
inline constexpr size_t kChunkChanges = 64;
inline constexpr size_t kChunkBytes = 32u << 10;
// Serializes `change` straight onto the end of `chunk`, without a copy.
void AppendToChunk(std::string* chunk, const pb::Change& change);
// Appends the framing of a chunk entry of `size` bytes and returns where the
// caller writes them (valid until `chunk` changes again).
char* AppendChunkEntry(std::string* chunk, size_t size);
// The serialized changes of one chunk value, in order (views into `chunk`).
Status SplitChunk(std::string_view chunk, std::vector<std::string_view>* changes);

// What a restore reads of a stored change for a row's final image, as views
// into its serialized bytes (no message is built): 2.1 of the 14.4 G
// instructions of the benchmark's restore went to parsing whole changes.
struct ChangeImage {
  int op = 0;  // pb::Change::Op
  uint32_t relid = 0;
  uint64_t relation_lsn = 0;
  uint32_t relation_seq = 0;
  std::string_view kinds;                // of new_tuple
  std::vector<std::string_view> values;  // of new_tuple
};

// Parses those fields of a serialized pb::Change (the others are skipped,
// as protobuf would); kCorruption if the bytes are not a message.
Status ParseChangeImage(std::string_view bytes, ChangeImage* out);

// Reads changes by position with one cursor: cheapest for ascending
// positions (the rest of a chunk comes without another lookup).
class ChangeReader {
 public:
  explicit ChangeReader(Store* store);
  ~ChangeReader();
  ChangeReader(const ChangeReader&) = delete;
  ChangeReader& operator=(const ChangeReader&) = delete;

  // The change at (commit_lsn, seq): *found is false if there is none.
  Status Get(uint64_t commit_lsn, uint32_t seq, pb::Change* out, bool* found);
  // The same, its serialized bytes: valid until the next call.
  Status GetBytes(uint64_t commit_lsn, uint32_t seq, std::string_view* bytes, bool* found);

 private:
  Status Load();  // the chunk under it_

  Store* store_;
  std::unique_ptr<rocksdb::Iterator> it_;
  bool loaded_ = false;
  uint64_t chunk_lsn_ = 0;
  uint32_t chunk_first_ = 0;
  std::string chunk_;
  std::vector<std::string_view> parts_;
};

inline std::string_view ToView(const rocksdb::Slice& s) {
  return std::string_view(s.data(), s.size());
}

// Parses a stored protobuf value, turning failure into kCorruption naming `what`.
template <typename Message>
Status ParseStored(std::string_view bytes, const char* what, Message* out) {
  if (!out->ParseFromArray(bytes.data(), static_cast<int>(bytes.size()))) {
    return Status::Corruption(std::string("store: unreadable ") + what + " record");
  }
  return Status::OK();
}

// Row keys of a tuple under a relation version.
// Keyed relations (replica identity default/index with key columns) use the
// key columns; multiset relations (identity full, or no key columns) use
// every column.
bool IsMultiset(const pb::Relation& rel);
// The agent writes row-index entries for the row changes of rel: false for
// a table without a key that is not REPLICA IDENTITY FULL. PostgreSQL sends
// only INSERTs of such a table (it refuses UPDATE and DELETE on it while a
// publication publishes them), so every change adds one whole row, which the
// change itself holds; an entry would be the whole row again. Restores read
// those rows from the changes (tools/row_images.h, ForEachAddedRow).
bool RowIndexed(const pb::Relation& rel);
// Two versions of a relation decode and key rows the same way: same names,
// replica identity, and columns (name, type, typmod, key flag) in order.
bool SameLayout(const pb::Relation& a, const pb::Relation& b);
// The same, but for the key: same names and columns (name, type, typmod).
bool SameColumns(const pb::Relation& a, const pb::Relation& b);
// Appends the rowkey of `tuple` under `rel`. Fails with kCorruption if the
// tuple has fewer columns than the relation or a key column is unresolved.
Status AppendTupleRowKey(std::string* dst, const pb::Relation& rel, const pb::Tuple& tuple);
// The same for a tuple of `ncols` columns given by kind_at(i) (a pb::Tuple
// kind: 'n', 't', 'b', ...) and value_at(i), without building a pb::Tuple.
template <typename KindAt, typename ValueAt>
Status AppendRowKeyOf(std::string* dst, const pb::Relation& rel, int ncols, KindAt kind_at,
                      ValueAt value_at) {
  const int want = rel.columns_size();
  if (ncols < want) {
    return Status::Corruption("row of " + rel.nspname() + "." + rel.relname() + " has " +
                              std::to_string(ncols) + " columns, expected " +
                              std::to_string(want));
  }
  const bool all = IsMultiset(rel);
  for (int i = 0; i < want; i++) {
    if (!all && !rel.columns(i).key()) continue;
    const char kind = kind_at(i);
    if (kind == 'n') {
      keys::AppendRowKeyValue(dst, {true, {}});
    } else if (kind == 't' || kind == 'b') {
      keys::AppendRowKeyValue(dst, {false, value_at(i)});
    } else {
      return Status::Corruption("row key column \"" + rel.columns(i).name() + "\" of " +
                                rel.nspname() + "." + rel.relname() + " is unresolved");
    }
  }
  return Status::OK();
}

}  // namespace pgtrail

#endif  // PGTRAIL_STORAGE_STORE_H_
