// Reading rows for a restore without materialising them: a cursor over one
// table's row-index entries, the layout versions of one table, and the final
// images of keyed rows fetched in LSN order.
//
// The row index says which change holds each key's final image; fetching
// those changes one point lookup at a time in rowkey order costs a seek each,
// so callers collect the positions (16 bytes each) and read them sorted with
// one forward iterator over the change family.
#ifndef PGTRAIL_TOOLS_ROW_IMAGES_H_
#define PGTRAIL_TOOLS_ROW_IMAGES_H_

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "proto/pgtrail.pb.h"
#include "storage/status.h"
#include "storage/store.h"

namespace rocksdb {
class Iterator;
}  // namespace rocksdb

namespace pgtrail {

// A place in the stream: (commit LSN, seq), the key of a change.
struct Position {
  uint64_t lsn = 0;
  uint32_t seq = 0;
  bool operator<(const Position& o) const { return lsn != o.lsn ? lsn < o.lsn : seq < o.seq; }
  bool operator==(const Position& o) const { return lsn == o.lsn && seq == o.seq; }
  bool operator<=(const Position& o) const { return !(o < *this); }
};

// A cursor over one table's row-index entries: by rowkey, then position.
class RowIdxCursor {
 public:
  // REQUIRES: store outlives the cursor.
  RowIdxCursor(Store* store, uint32_t relid);
  ~RowIdxCursor();
  RowIdxCursor(const RowIdxCursor&) = delete;
  RowIdxCursor& operator=(const RowIdxCursor&) = delete;

  bool done() const { return done_; }
  // Valid until Next().
  std::string_view rowkey() const { return rowkey_; }
  Position position() const { return {lsn_, seq_}; }
  uint64_t lsn() const { return lsn_; }
  uint32_t seq() const { return seq_; }
  char op() const { return op_; }
  void Next();
  // Check after done(): a read error or a malformed entry ends the cursor.
  Status status() const { return status_; }

 private:
  void Settle();

  std::unique_ptr<rocksdb::Iterator> it_;
  std::string prefix_;
  bool done_ = false;
  std::string_view rowkey_;
  uint64_t lsn_ = 0;
  uint32_t seq_ = 0;
  char op_ = 0;
  Status status_;
};

// The values a rowkey holds under rel, as a tuple (text or NULL), into *out
// (its storage is reused): every column of a multiset (the whole row), the
// key columns of a keyed table, in column order. Fails with kCorruption
// unless the rowkey holds exactly those columns: a rowkey written under
// another layout is never read as if it were this one.
Status RowKeyValues(const pb::Relation& rel, std::string_view rowkey, pb::Tuple* out);

// Appends the COPY text line of the row a multiset rowkey holds under rel:
// the same bytes as AppendCopyTextRow of RowKeyValues(rel, rowkey), without
// building the row. Fails as RowKeyValues does; *scratch is reused.
Status AppendCopyTextFromRowKey(std::string* dst, const pb::Relation& rel, std::string_view rowkey,
                                std::string* scratch);

// Keyed tables have upserts and deletes in the row index, multisets
// additions and removals: an entry of the other kind was written under
// another layout (kCorruption), and its rowkey cannot be read with this one.
Status CheckRowOp(const pb::Relation& layout, char op);

// Every layout version of one table, in position order.
class LayoutHistory {
 public:
  static Result<LayoutHistory> Load(Store* store, uint32_t relid);

  uint32_t relid() const { return relid_; }
  // The version in force at pos (the newest taking effect at or before it);
  // nullptr if none.
  const pb::Relation* At(Position pos) const;
  // True if every version taking effect in (first, last] has the same row
  // layout as the one in force at first: every row-index entry between
  // them was then written under that one layout.
  bool OneLayoutBetween(Position first, Position last) const;
  // Of the versions in force between first and last: *indexed if any is
  // RowIndexed, *unindexed if any is not.
  void Indexing(Position first, Position last, bool* indexed, bool* unindexed) const;

 private:
  uint32_t relid_ = 0;
  std::vector<std::pair<Position, pb::Relation>> versions_;
};

// Reads final images of keyed rows of one table by position: the change at
// each position must be an INSERT or UPDATE of that table written under
// `layout` (else kCorruption: its rows would go in the wrong columns). Reads
// in ascending position order go forward with one iterator; others seek.
class FinalImageReader {
 public:
  // REQUIRES: store, layout and history outlive the reader.
  FinalImageReader(Store* store, const pb::Relation& layout, const LayoutHistory& history);
  ~FinalImageReader();
  FinalImageReader(const FinalImageReader&) = delete;
  FinalImageReader& operator=(const FinalImageReader&) = delete;

  // Calls emit(new_tuple) for the change at pos.
  Status Read(Position pos, const std::function<Status(const pb::Tuple&)>& emit);
  // The same without building the change: emit(its new tuple's parts).
  Status ReadImage(Position pos, const std::function<Status(const ChangeImage&)>& emit);
  // Calls read(pos) for each of `positions` in ascending order (sorted here,
  // so one iterator goes forward); kCorruption if a position appears twice:
  // two rows cannot end at one change.
  Status ForEachOnce(std::vector<Position> positions,
                     const std::function<Status(Position)>& read) const;

 private:
  // The checks of Read on the parts of the change at pos.
  Status Check(Position pos, int op, uint32_t relid, uint64_t relation_lsn,
               uint32_t relation_seq);

  const pb::Relation& layout_;
  const LayoutHistory& history_;
  ChangeReader reader_;
  const pb::Relation* checked_ = nullptr;  // the version last compared with layout_
  bool checked_same_ = false;
  uint64_t reads_ = 0;
  struct ArenaState;
  std::unique_ptr<ArenaState> arena_;
  ChangeImage image_;
};

// Calls emit(new_tuple) for the change at each of `positions` (sorted here;
// the final images of keyed rows of `layout`'s table), reading them in LSN
// order with one iterator. Fails with kCorruption if a change is missing,
// is not an INSERT or UPDATE of that table, appears twice, or was written
// under a layout other than `layout`.
Status ForEachFinalImage(Store* store, const pb::Relation& layout, const LayoutHistory& history,
                         std::vector<Position> positions,
                         const std::function<Status(const pb::Tuple&)>& emit);

// The rows added to layout's table, while it was not RowIndexed, by the
// changes at positions in [first, last] that counts(pos) accepts: fn(pos,
// the new row) for each INSERT and each UPDATE without an old row (the row
// index would have counted both as one more copy of the new row), in
// position order. Read from the changes, which the transaction headers say
// where to find (every change of a header written before they listed
// tables). Changes written under an indexed layout are skipped: their rows
// are in the row index. kCorruption if one was written under a layout whose
// columns differ from layout's.
Status ForEachAddedRow(Store* store, const pb::Relation& layout, const LayoutHistory& history,
                       Position first, Position last,
                       const std::function<bool(Position)>& counts,
                       const std::function<Status(Position, const ChangeImage&)>& fn);

// Membership in keys sorted ascending, for lookups that mostly ascend too
// (rows loaded in key order, as pgbench -i and pg_restore load them): each
// goes on from where the last one stopped, reading the keys in order,
// instead of hashing into a set (a cache miss per row: a quarter of the
// benchmark's restore CPU). Others find their place by binary search.
class AscendingLookup {
 public:
  // REQUIRES: keys sorted ascending; it outlives the lookup.
  explicit AscendingLookup(const std::vector<std::string>& keys) : keys_(keys) {}
  bool Contains(std::string_view key);

 private:
  const std::vector<std::string>& keys_;
  size_t at_ = 0;  // the first key not below the last one looked up
};

// The tuple a ChangeImage holds, into *out (its storage is reused).
void ImageTuple(const ChangeImage& image, pb::Tuple* out);
// Appends the rowkey under rel of the row a ChangeImage holds, as
// AppendTupleRowKey of ImageTuple(image). REQUIRES: as many values as kinds.
Status AppendImageRowKey(std::string* dst, const pb::Relation& rel, const ChangeImage& image);

}  // namespace pgtrail

#endif  // PGTRAIL_TOOLS_ROW_IMAGES_H_
