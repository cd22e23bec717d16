// Every key layout of the store, as Append/Parse pairs. One header owns them
// all; tests/unit/keys_test.cc pins the exact bytes of each.
//
// All integers are big-endian so that RocksDB's bytewise order is numeric
// order (LSN order for LSN-keyed families).
//
//   family    key                                              value
//   default   "meta"                                           pb::StoreMeta
//   txn       u64 commit_lsn                                   pb::TxnHeader
//   change    u64 commit_lsn, u32 seq                          pb::Change
//   relation  u32 relid, u64 lsn, u32 seq                      pb::Relation
//   time      u64 biased(max_commit_time_us), u64 commit_lsn   (empty)
//   snapshot  u64 snapshot_id                                  pb::Snapshot
//   snaprow   u64 snapshot_id, u32 relid, rowkey [, u64 ordinal]   pb::Tuple
//   rowidx    u32 relid, rowkey, u64 commit_lsn, u32 seq       one RowOp byte
//   truncate  u32 relid, u64 commit_lsn, u32 seq               u8 flags
//   mark      name, 0x00, u64 commit_lsn, u32 seq              the mark's message content
//   ddl       u64 commit_lsn, u32 seq (as change)              the DDL message's content
//
// rowkey is the encoding of the replica-identity columns of a row (every
// column for a table kept as a multiset: REPLICA IDENTITY FULL or no key).
// It is prefix-free, so (rowkey, lsn) pairs sort by rowkey first:
//   per column: 0x01 for NULL, or 0x02 then the text bytes with every 0x00
//   written as 0x00 0xFF, closed by 0x00 0x01.
// snaprow keys of multiset tables end in a u64 ordinal so duplicate rows are
// kept apart. rowidx has no entries for the changes of tables that are not
// RowIndexed (store.h: no key, not REPLICA IDENTITY FULL, so INSERTs only);
// earlier agents wrote them, and restores do not read them.
//
// The time family indexes the running maximum of commit times in LSN order.
// That maximum never decreases, so "the first transaction, in LSN order, whose
// commit time is later than T" is the first time key greater than T.
#ifndef PGTRAIL_STORAGE_KEYS_H_
#define PGTRAIL_STORAGE_KEYS_H_

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "storage/status.h"

namespace pgtrail::keys {

inline constexpr char kMetaKey[] = "meta";

// Row operations recorded in the row index. Stored: never renumber.
enum class RowOp : char {
  kUpsert = 'U',      // keyed table: the key's row is the change's new tuple
  kDelete = 'D',      // keyed table: the key is gone
  kAddOne = '+',      // multiset table: one more copy of this row
  kRemoveOne = '-',   // multiset table: one copy fewer
};

std::string TxnKey(uint64_t commit_lsn);
Status ParseTxnKey(std::string_view key, uint64_t* commit_lsn);

std::string ChangeKey(uint64_t commit_lsn, uint32_t seq);
Status ParseChangeKey(std::string_view key, uint64_t* commit_lsn, uint32_t* seq);

// A layout version takes effect at (lsn, seq): the commit LSN of the
// transaction that carried its Relation message and the sequence number of
// the first change decoded with it (0 for a snapshot's layouts).
std::string RelationKey(uint32_t relid, uint64_t lsn, uint32_t seq);
Status ParseRelationKey(std::string_view key, uint32_t* relid, uint64_t* lsn, uint32_t* seq);

// Maps a signed µs time onto an unsigned value with the same order.
uint64_t BiasTime(int64_t time_us);
int64_t UnbiasTime(uint64_t biased);
std::string TimeKey(int64_t max_commit_time_us, uint64_t commit_lsn);
Status ParseTimeKey(std::string_view key, int64_t* max_commit_time_us, uint64_t* commit_lsn);

std::string SnapshotKey(uint64_t snapshot_id);
Status ParseSnapshotKey(std::string_view key, uint64_t* snapshot_id);

// A column value as it takes part in a row key: is_null, or text bytes.
struct KeyValue {
  bool is_null = false;
  std::string_view text;
};
void AppendRowKey(std::string* dst, const std::vector<KeyValue>& values);
// Appends one column of a row key (AppendRowKey is a sequence of these).
void AppendRowKeyValue(std::string* dst, const KeyValue& value);
// Decodes the one column of a row key that starts at in[*pos] and moves *pos
// past it: *is_null, or the text into *text (replacing its contents but
// keeping its storage, so a reused string does not allocate).
Status ParseRowKeyValue(std::string_view in, size_t* pos, bool* is_null, std::string* text);
// The same without copying where it can: *value points into `in`, or into
// *scratch when the value holds a zero byte; valid while both are.
Status ParseRowKeyValueView(std::string_view in, size_t* pos, bool* is_null,
                            std::string_view* value, std::string* scratch);
// Splits an encoded rowkey at the start of `in`; consumes exactly the rowkey of
// `column_count` columns and reports how many bytes it used. The strings of
// *texts are reused.
Status ParseRowKey(std::string_view in, size_t column_count, std::vector<std::string>* texts,
                   std::vector<bool>* nulls, size_t* consumed);

std::string SnapRowPrefix(uint64_t snapshot_id, uint32_t relid);
// ordinal < 0: keyed table (no ordinal suffix).
std::string SnapRowKey(uint64_t snapshot_id, uint32_t relid, std::string_view rowkey,
                       int64_t ordinal);

std::string RowIdxPrefix(uint32_t relid);
void AppendRowIdxKey(std::string* dst, uint32_t relid, std::string_view rowkey,
                     uint64_t commit_lsn, uint32_t seq);
std::string RowIdxKey(uint32_t relid, std::string_view rowkey, uint64_t commit_lsn,
                      uint32_t seq);
// Splits a rowidx key into its rowkey and position (the rowkey is everything
// between the relid and the trailing 12 bytes).
Status ParseRowIdxKey(std::string_view key, uint32_t* relid, std::string_view* rowkey,
                      uint64_t* commit_lsn, uint32_t* seq);

std::string TruncatePrefix(uint32_t relid);
std::string TruncateKey(uint32_t relid, uint64_t commit_lsn, uint32_t seq);
Status ParseTruncateKey(std::string_view key, uint32_t* relid, uint64_t* commit_lsn,
                        uint32_t* seq);

// Mark names: 1-63 characters of A-Z a-z 0-9 _ . : - (no NUL, so the key
// layout stays unambiguous).
bool IsValidMarkName(std::string_view name);
std::string MarkKey(std::string_view name, uint64_t commit_lsn, uint32_t seq);
Status ParseMarkKey(std::string_view key, std::string* name, uint64_t* commit_lsn, uint32_t* seq);

// The smallest key greater than every key starting with prefix ("" if none).
std::string PrefixSuccessor(std::string prefix);

}  // namespace pgtrail::keys

#endif  // PGTRAIL_STORAGE_KEYS_H_
