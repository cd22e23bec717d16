#include "tools/restore_epochs.h"

#include <rocksdb/db.h>

#include <algorithm>
#include <map>
#include <mutex>
#include <memory>
#include <optional>
#include <tuple>
#include <vector>

#include "storage/coding.h"
#include "storage/keys.h"
#include "tools/copy_in.h"
#include "tools/load_jobs.h"
#include "tools/row_images.h"
#include "tools/sql_statements.h"

// An epoch's rows are streamed from the row index, not folded from its
// changes: one keys-only pass over the whole row index finds which tables
// each epoch touched; then, per (epoch, table), the table's entries in the
// window give every key's last operation (keyed tables) or net count
// (multisets, whose rowkey is the row). Final images of keyed rows are read
// from their changes in LSN order. Nothing is held per row but a 16-byte
// position.
//
// A rowkey can only be read with the layout it was written under, so this
// holds only while every entry of the table in the window was written under
// one layout; when a layout change falls among them (rare: a schema change
// not captured as DDL), that table's epoch is folded from its changes as
// before.

namespace pgtrail {
namespace {

// The changes of one epoch: positions in [from, to).
struct Window {
  Position from;
  Position to;
  bool Contains(Position pos) const { return from <= pos && pos < to; }
};

// What one epoch did to one table, found from keys alone.
struct TableActivity {
  bool truncated = false;
  Position last_truncate;  // if truncated: entries at or before it do not count
  uint64_t entries = 0;    // row-index entries after it
  Position first;          // of those entries
  Position last;
  // Entries at pos count (they are after the table's last truncate).
  bool Counts(Position pos) const { return !truncated || last_truncate < pos; }
};

struct EpochActivity {
  // TRUNCATE statements in order, each with its chosen tables.
  std::map<Position, std::vector<uint32_t>> truncates;
  std::map<uint32_t, TableActivity> tables;  // tables truncated or with entries
};

// The epoch of a position, if any.
std::optional<size_t> EpochOf(const std::vector<Window>& windows, Position pos) {
  auto after = std::upper_bound(windows.begin(), windows.end(), pos,
                                [](Position p, const Window& w) { return p < w.from; });
  if (after == windows.begin()) return std::nullopt;
  const size_t k = static_cast<size_t>(after - windows.begin()) - 1;
  if (!windows[k].Contains(pos)) return std::nullopt;
  return k;
}

// Adds entries of a table at positions first..last to its activity.
void Note(TableActivity* t, Position first, Position last, uint64_t entries) {
  if (t->entries == 0 || first < t->first) t->first = first;
  if (t->entries == 0 || t->last < last) t->last = last;
  t->entries += entries;
}

// TRUNCATEs of the chosen tables (all when `chosen` is empty), by epoch.
Status ScanTruncates(Store* store, const std::vector<Window>& windows,
                     const std::function<bool(uint32_t)>& wanted,
                     std::vector<EpochActivity>* out) {
  std::unique_ptr<rocksdb::Iterator> it(
      store->db()->NewIterator(rocksdb::ReadOptions(), store->cf(Family::kTruncate)));
  for (it->SeekToFirst(); it->Valid(); it->Next()) {
    uint32_t relid;
    Position pos;
    RETURN_IF_ERROR(keys::ParseTruncateKey(ToView(it->key()), &relid, &pos.lsn, &pos.seq));
    if (!wanted(relid)) continue;
    const std::optional<size_t> k = EpochOf(windows, pos);
    if (!k) continue;
    (*out)[*k].truncates[pos].push_back(relid);
    TableActivity& t = (*out)[*k].tables[relid];
    if (!t.truncated || t.last_truncate < pos) t.last_truncate = pos;
    t.truncated = true;
  }
  return it->status().ok() ? Status::OK() : Status::IOError(it->status().ToString());
}

// The row changes from the transaction headers, which list the tables each
// changed with the first and last position (one entry per transaction and
// table, where the row index holds one per row). A transaction whose
// changes of a table fall on both sides of a schema change or of that
// table's TRUNCATE is read change by change. *listed is false (and nothing
// is counted) if a header in the windows does not list its tables: a store
// written by an older agent.
Status ScanTxnActivity(Store* store, const std::vector<Window>& windows,
                       const std::function<bool(uint32_t)>& wanted,
                       std::vector<EpochActivity>* out, bool* listed) {
  *listed = true;
  std::map<uint64_t, std::set<uint32_t>> exact;  // commit LSN -> tables to read change by change
  std::vector<std::tuple<size_t, uint32_t, Position, Position, uint64_t>> notes;
  RETURN_IF_ERROR(store->ForEachTxn(
      windows.front().from.lsn, windows.back().to.lsn, [&](const pb::TxnHeader& h) {
        if (!h.tables_listed() && h.change_count() > 0) {
          *listed = false;
          return false;
        }
        for (const pb::TxnTable& t : h.tables()) {
          if (!wanted(t.relid())) continue;
          const Position first{h.commit_lsn(), t.first_seq()};
          const Position last{h.commit_lsn(), t.last_seq()};
          const std::optional<size_t> k = EpochOf(windows, first);
          if (!k && !EpochOf(windows, last) && (last < windows.front().from ||
                                                 windows.back().to <= first)) {
            continue;  // before the first schema change or after the last
          }
          if (k && EpochOf(windows, last) == k) {
            auto a = (*out)[*k].tables.find(t.relid());
            const bool truncated = a != (*out)[*k].tables.end() && a->second.truncated;
            if (!truncated || a->second.last_truncate < first) {
              notes.emplace_back(*k, t.relid(), first, last, t.entries());
              continue;
            }
            if (last < a->second.last_truncate) continue;  // all before the TRUNCATE
          }
          exact[h.commit_lsn()].insert(t.relid());
        }
        return true;
      }));
  if (!*listed) return Status::OK();
  for (const auto& [k, relid, first, last, entries] : notes) {
    Note(&(*out)[k].tables[relid], first, last, entries);
  }
  for (const auto& [lsn, relids] : exact) {
    RETURN_IF_ERROR(store->ForEachChange(lsn, [&](uint32_t seq, const pb::Change& c) {
      if ((c.op() != pb::Change::INSERT && c.op() != pb::Change::UPDATE &&
           c.op() != pb::Change::DELETE) ||
          relids.count(c.relid()) == 0) {
        return true;
      }
      const Position pos{lsn, seq};
      const std::optional<size_t> k = EpochOf(windows, pos);
      if (!k) return true;
      TableActivity& t = (*out)[*k].tables[c.relid()];
      if (t.Counts(pos)) Note(&t, pos, pos, 1);
      return true;
    }));
  }
  return Status::OK();
}

// The row changes from the row index: one pass over its keys counting
// entries per (epoch, table). For stores whose headers do not list tables.
Status ScanRowIndexActivity(Store* store, const std::vector<Window>& windows,
                            const std::function<bool(uint32_t)>& wanted,
                            std::vector<EpochActivity>* out) {
  std::unique_ptr<rocksdb::Iterator> it(
      store->db()->NewIterator(rocksdb::ReadOptions(), store->cf(Family::kRowIdx)));
  uint32_t current_relid = 0;
  bool have_relid = false;
  std::vector<TableActivity*> slots;  // the current table's activity per epoch
  it->SeekToFirst();
  while (it->Valid()) {
    uint32_t relid;
    std::string_view rowkey;
    Position pos;
    RETURN_IF_ERROR(keys::ParseRowIdxKey(ToView(it->key()), &relid, &rowkey, &pos.lsn, &pos.seq));
    if (!wanted(relid)) {  // --tables: skip the whole table
      const std::string next = keys::PrefixSuccessor(keys::RowIdxPrefix(relid));
      if (next.empty()) break;  // the last possible relid
      it->Seek(next);
      continue;
    }
    if (!have_relid || relid != current_relid) {
      current_relid = relid;
      have_relid = true;
      slots.assign(windows.size(), nullptr);
    }
    if (const std::optional<size_t> k = EpochOf(windows, pos)) {
      TableActivity*& t = slots[*k];
      if (t == nullptr) t = &(*out)[*k].tables[relid];
      if (t->Counts(pos)) Note(t, pos, pos, 1);
    }
    it->Next();
  }
  return it->status().ok() ? Status::OK() : Status::IOError(it->status().ToString());
}

// Finds what every epoch did to the chosen tables (all when `chosen` is
// empty): TRUNCATEs, then which tables had rows changed, how many and
// between which positions (after the table's last TRUNCATE in the epoch).
Status ScanActivity(Store* store, const std::vector<Window>& windows,
                    const std::set<uint32_t>& chosen, std::vector<EpochActivity>* out) {
  out->assign(windows.size(), EpochActivity());
  const std::function<bool(uint32_t)> wanted = [&](uint32_t relid) {
    return chosen.empty() || chosen.count(relid) != 0;
  };
  RETURN_IF_ERROR(ScanTruncates(store, windows, wanted, out));
  bool listed = false;
  RETURN_IF_ERROR(ScanTxnActivity(store, windows, wanted, out, &listed));
  if (listed) return Status::OK();
  return ScanRowIndexActivity(store, windows, wanted, out);
}

using KeyFn = std::function<Status(std::string_view rowkey)>;
using RowFn = std::function<Status(const pb::Tuple&)>;
using CountFn = std::function<Status(const pb::Tuple&, uint64_t)>;
// Where rows go without being built as tuples (COPY text is written from
// what is stored): n copies of the row a multiset rowkey holds under layout;
// a final image.
struct RowSink {
  std::function<Status(const pb::Relation& layout, std::string_view rowkey, uint64_t n)> rowkey;
  std::function<Status(const ChangeImage&)> image;
};

// The final image at pos, to sink->image if there is a sink, else to fn.
Status ReadFinalImage(FinalImageReader* reader, Position pos, const RowSink* sink,
                      const CountFn& fn) {
  if (sink != nullptr) return reader->ReadImage(pos, sink->image);
  return reader->Read(pos, [&](const pb::Tuple& row) { return fn(row, 1); });
}

// A row read from its change (an added row), to sink->image if there is a
// sink, else to fn(row, 1); *row is scratch.
Status EmitImage(const ChangeImage& image, const RowSink* sink, const CountFn& fn,
                 pb::Tuple* row) {
  if (sink != nullptr) return sink->image(image);
  ImageTuple(image, row);
  return fn(*row, 1);
}

// Where one epoch's rows of one table come from.
class EpochRows {
 public:
  virtual ~EpochRows() = default;
  virtual const pb::Relation& layout() const = 0;
  // Keyed tables: one pass over the keys the epoch changed, calling
  // gone(rowkey) for each it deleted (unless gone is null); readies
  // ForEachUpsert.
  virtual Status ScanKeys(const KeyFn* gone) = 0;
  // REQUIRES: ScanKeys ran. up(row) for the final image of every key upserted.
  virtual Status ForEachUpsert(const RowFn& up) = 0;
  // Multisets: fn(row, n) for every row the epoch added n copies of
  // (additions) or removed n copies of (!additions).
  virtual Status ForEachCount(bool additions, const CountFn& fn) = 0;
  // Rows (keys) changed, for the report; known after the first pass.
  virtual uint64_t changed() const = 0;
  // For a table that was empty: fn(row, n) for every row there is after
  // the epoch, n copies of it; to *sink instead where it can, if given
  // (here it never can: rows folded from changes are tuples already).
  virtual Status ForEachRow(const CountFn& fn, const RowSink* /*sink*/ = nullptr) {
    if (IsMultiset(layout())) return ForEachCount(/*additions=*/true, fn);
    RETURN_IF_ERROR(ScanKeys(nullptr));
    return ForEachUpsert([&](const pb::Tuple& row) { return fn(row, 1); });
  }
};

// The rows of a table whose entries in the window share one layout, read
// from the row index as they are needed.
class StreamedRows : public EpochRows {
 public:
  StreamedRows(Store* store, const pb::Relation& layout, const LayoutHistory& history,
               const Window& window, const TableActivity& activity)
      : store_(store), layout_(layout), history_(history), window_(window), activity_(activity) {}

  const pb::Relation& layout() const override { return layout_; }
  uint64_t changed() const override { return changed_; }
  // True if the row-index entry at pos belongs to these rows.
  bool Counts(Position pos) const { return window_.Contains(pos) && activity_.Counts(pos); }
  Store* store() const { return store_; }
  const LayoutHistory& history() const { return history_; }

  Status ScanKeys(const KeyFn* gone) override { return ScanKeys(gone, nullptr); }

  // Also calls each(rowkey) for every key the epoch changed (unless null).
  Status ScanKeys(const KeyFn* gone, const KeyFn* each) {
    upserts_.clear();
    upserts_.reserve(activity_.entries);
    return ForEachKey([&](std::string_view rowkey, char last_op, Position last, int64_t) {
      if (each != nullptr) RETURN_IF_ERROR((*each)(rowkey));
      if (last_op == static_cast<char>(keys::RowOp::kUpsert)) {
        upserts_.push_back(last);
      } else if (gone != nullptr) {
        return (*gone)(rowkey);
      }
      return Status::OK();
    });
  }

  Status ForEachUpsert(const RowFn& up) override {
    return ForEachFinalImage(store_, layout_, history_, std::move(upserts_), up);
  }

  // The same, to sink->image if there is a sink, else to fn(row, 1).
  Status ForEachUpsert(const CountFn& fn, const RowSink* sink) {
    FinalImageReader reader(store_, layout_, history_);
    return reader.ForEachOnce(std::move(upserts_), [&](Position pos) {
      return ReadFinalImage(&reader, pos, sink, fn);
    });
  }
  // REQUIRES: ScanKeys ran. The keys ForEachUpsert will give.
  size_t upserts() const { return upserts_.size(); }

  // A layout that is not RowIndexed: fn(image) for every row the window
  // added, read from its changes.
  Status ForEachAdded(const std::function<Status(const ChangeImage&)>& fn) {
    if (activity_.entries == 0) return Status::OK();
    const bool count = !counted_;
    RETURN_IF_ERROR(ForEachAddedRow(
        store_, layout_, history_, activity_.first, activity_.last,
        [&](Position pos) { return Counts(pos); },
        [&](Position, const ChangeImage& image) {
          if (count) changed_++;
          return fn(image);
        }));
    counted_ = true;
    return Status::OK();
  }

  // Keyed: the final images stream out during the pass over the keys. One
  // whose change comes after every change read so far is read at once (the
  // changes are read forward, so a table filled in key order goes straight
  // through); the others are read sorted after the pass.
  Status ForEachRow(const CountFn& fn, const RowSink* sink = nullptr) override {
    if (!RowIndexed(layout_)) {
      pb::Tuple row;
      return ForEachAdded(
          [&](const ChangeImage& image) { return EmitImage(image, sink, fn, &row); });
    }
    if (IsMultiset(layout_) && sink != nullptr) {
      return ForEachKey([&](std::string_view rowkey, char, Position, int64_t net) {
        return net > 0 ? sink->rowkey(layout_, rowkey, static_cast<uint64_t>(net)) : Status::OK();
      });
    }
    if (IsMultiset(layout_)) return EpochRows::ForEachRow(fn);
    FinalImageReader reader(store_, layout_, history_);
    auto read = [&](Position pos) { return ReadFinalImage(&reader, pos, sink, fn); };
    std::vector<Position> behind;
    bool have_read = false;
    Position last_read;
    RETURN_IF_ERROR(ForEachKey([&](std::string_view, char last_op, Position last, int64_t) {
      if (last_op != static_cast<char>(keys::RowOp::kUpsert)) return Status::OK();
      if (have_read && last <= last_read) {
        behind.push_back(last);
        return Status::OK();
      }
      have_read = true;
      last_read = last;
      return read(last);
    }));
    return reader.ForEachOnce(std::move(behind), read);
  }

  Status ForEachCount(bool additions, const CountFn& fn) override {
    pb::Tuple row;
    if (!RowIndexed(layout_)) {  // only additions
      if (!additions) return Status::OK();
      return ForEachAdded(
          [&](const ChangeImage& image) { return EmitImage(image, nullptr, fn, &row); });
    }
    return ForEachKey([&](std::string_view rowkey, char, Position, int64_t net) {
      if (additions ? net <= 0 : net >= 0) return Status::OK();
      RETURN_IF_ERROR(RowKeyValues(layout_, rowkey, &row));
      return fn(row, static_cast<uint64_t>(additions ? net : -net));
    });
  }

 private:
  // Calls key(rowkey, last op, its position, additions minus removals) for
  // every rowkey with entries in the window (after the table's last truncate).
  template <typename KeyVisitor>
  Status ForEachKey(const KeyVisitor& key) {
    const bool count = !counted_;
    RowIdxCursor idx(store_, layout_.relid());
    std::string current;
    while (!idx.done()) {
      current.assign(idx.rowkey());
      bool have_entry = false;
      char last_op = 0;
      Position last;
      int64_t net = 0;
      for (; !idx.done() && idx.rowkey() == current; idx.Next()) {
        const Position pos = idx.position();
        if (!window_.Contains(pos) || !activity_.Counts(pos)) continue;
        RETURN_IF_ERROR(CheckRowOp(layout_, idx.op()));
        have_entry = true;
        last_op = idx.op();
        last = pos;
        if (idx.op() == static_cast<char>(keys::RowOp::kAddOne)) net++;
        if (idx.op() == static_cast<char>(keys::RowOp::kRemoveOne)) net--;
      }
      if (!have_entry) continue;
      if (count) changed_++;
      RETURN_IF_ERROR(key(std::string_view(current), last_op, last, net));
    }
    RETURN_IF_ERROR(idx.status());
    counted_ = true;
    return Status::OK();
  }

  Store* store_;
  const pb::Relation& layout_;
  const LayoutHistory& history_;
  const Window window_;
  const TableActivity activity_;
  std::vector<Position> upserts_;
  uint64_t changed_ = 0;
  bool counted_ = false;
};

// The rows of a table that was empty before epoch k, through epoch m: epoch
// k's rows, less those whose key a later epoch changed, then the final
// images of the later epochs, which are keyed under one layout with the same
// columns as epoch k's (the key came with ALTER TABLE ... ADD PRIMARY KEY).
// Loaded at epoch k, in its layout; the schema changes in between leave the
// rows alone (LeavesRowsAlone), so they see the same rows as on the source
// at the end of epoch m.
class MergedRows : public EpochRows {
 public:
  MergedRows(std::unique_ptr<StreamedRows> first, std::unique_ptr<StreamedRows> later)
      : first_(std::move(first)), later_(std::move(later)) {}

  const pb::Relation& layout() const override { return first_->layout(); }
  uint64_t changed() const override { return rows_; }
  Status ScanKeys(const KeyFn*) override { return Unsupported(); }
  Status ForEachUpsert(const RowFn&) override { return Unsupported(); }
  Status ForEachCount(bool, const CountFn&) override { return Unsupported(); }

  Status ForEachRow(const CountFn& fn, const RowSink* sink = nullptr) override {
    const bool added = !RowIndexed(first_->layout());
    if (!added && IsMultiset(first_->layout()) && KeyLeads(later_->layout())) {
      return OnePass(fn, sink);
    }
    // Keys under the later layout, ascending (the row index's order).
    std::vector<std::string> changed;
    const KeyFn each = [&](std::string_view rowkey) {
      changed.emplace_back(rowkey);
      return Status::OK();
    };
    RETURN_IF_ERROR(later_->ScanKeys(nullptr, &each));
    const pb::Relation& keyed = later_->layout();
    AscendingLookup replaced(changed);
    std::string key;
    if (added) {  // rows from the first epoch's changes, each as it is read
      pb::Tuple row;
      RETURN_IF_ERROR(first_->ForEachAdded([&](const ChangeImage& image) {
        key.clear();
        RETURN_IF_ERROR(AppendImageRowKey(&key, keyed, image));
        if (replaced.Contains(key)) return Status::OK();
        rows_++;
        return EmitImage(image, sink, fn, &row);
      }));
    } else {
      RETURN_IF_ERROR(first_->ForEachRow([&](const pb::Tuple& row, uint64_t n) {
        key.clear();
        RETURN_IF_ERROR(AppendTupleRowKey(&key, keyed, row));
        if (replaced.Contains(key)) return Status::OK();
        rows_ += n;
        return fn(row, n);
      }));
    }
    rows_ += later_->upserts();
    return later_->ForEachUpsert(fn, sink);
  }

 private:
  // True if the key columns are the leading columns, in order.
  static bool KeyLeads(const pb::Relation& rel) {
    bool in_key = true;
    for (const pb::Column& c : rel.columns()) {
      if (c.key() && !in_key) return false;
      in_key = c.key();
    }
    return rel.columns_size() > 0 && rel.columns(0).key();
  }

  // An indexed multiset first epoch and a key of leading columns: one pass
  // over the row index. A key's encoding is then a prefix of the encoding of every
  // whole row with that key (each value's encoding is prefix-free), so a
  // later epoch's key sorts just before the first epoch's rows it replaces,
  // with nothing but those rows in between.
  Status OnePass(const CountFn& fn, const RowSink* sink) {
    RowIdxCursor idx(first_->store(), first_->layout().relid());
    std::vector<Position> upserts;
    std::string current, shadow;  // shadow: the last key a later epoch changed
    bool have_shadow = false;
    pb::Tuple row;
    while (!idx.done()) {
      current.assign(idx.rowkey());
      bool later = false, first = false;
      char later_op = 0;
      Position later_pos;
      int64_t net = 0;
      for (; !idx.done() && idx.rowkey() == current; idx.Next()) {
        const Position pos = idx.position();
        if (later_->Counts(pos)) {
          RETURN_IF_ERROR(CheckRowOp(later_->layout(), idx.op()));
          later = true;
          later_op = idx.op();
          later_pos = pos;
        } else if (first_->Counts(pos)) {
          RETURN_IF_ERROR(CheckRowOp(first_->layout(), idx.op()));
          first = true;
          if (idx.op() == static_cast<char>(keys::RowOp::kAddOne)) net++;
          if (idx.op() == static_cast<char>(keys::RowOp::kRemoveOne)) net--;
        }
      }
      if (later) {
        shadow = current;
        have_shadow = true;
        if (later_op == static_cast<char>(keys::RowOp::kUpsert)) upserts.push_back(later_pos);
      }
      if (!first || net <= 0) continue;
      if (have_shadow && current.compare(0, shadow.size(), shadow) == 0) continue;  // replaced
      rows_ += static_cast<uint64_t>(net);
      if (sink != nullptr) {
        RETURN_IF_ERROR(sink->rowkey(first_->layout(), current, static_cast<uint64_t>(net)));
        continue;
      }
      RETURN_IF_ERROR(RowKeyValues(first_->layout(), current, &row));
      RETURN_IF_ERROR(fn(row, static_cast<uint64_t>(net)));
    }
    RETURN_IF_ERROR(idx.status());
    FinalImageReader reader(later_->store(), later_->layout(), later_->history());
    return reader.ForEachOnce(std::move(upserts), [&](Position pos) {
      rows_++;
      return ReadFinalImage(&reader, pos, sink, fn);
    });
  }

  static Status Unsupported() {
    return Status::Internal("merged epochs are only loaded into an empty table");
  }

  std::unique_ptr<StreamedRows> first_;
  std::unique_ptr<StreamedRows> later_;
  uint64_t rows_ = 0;
};

// The net effect of a run of one epoch's changes on one table under one row
// layout, folded from the changes themselves.
struct TableDelta {
  const pb::Relation* layout = nullptr;  // of its last change (or TRUNCATE)
  // Keyed tables: rowkey -> final image (nullopt: deleted).
  std::map<std::string, std::optional<pb::Tuple>> keyed;
  // Multiset tables: row encoding -> (copies added minus removed, the row).
  std::map<std::string, std::pair<int64_t, pb::Tuple>> counts;
};

// One table's changes in an epoch whose row layout changed inside it: one
// delta per layout, applied in order. (Folding them into one delta would
// read keyed changes as a multiset or the other way round, and lose rows.)
using TableDeltas = std::vector<TableDelta>;

class FoldedRows : public EpochRows {
 public:
  explicit FoldedRows(const TableDelta& delta) : t_(delta) {}

  const pb::Relation& layout() const override { return *t_.layout; }
  uint64_t changed() const override { return t_.keyed.size() + t_.counts.size(); }

  Status ScanKeys(const KeyFn* gone) override {
    if (gone == nullptr) return Status::OK();
    for (const auto& [rowkey, image] : t_.keyed) {
      if (!image) RETURN_IF_ERROR((*gone)(rowkey));
    }
    return Status::OK();
  }

  Status ForEachUpsert(const RowFn& up) override {
    for (const auto& [rowkey, image] : t_.keyed) {
      if (image) RETURN_IF_ERROR(up(*image));
    }
    return Status::OK();
  }

  Status ForEachCount(bool additions, const CountFn& fn) override {
    for (const auto& [enc, entry] : t_.counts) {
      const int64_t n = additions ? entry.first : -entry.first;
      if (n > 0) RETURN_IF_ERROR(fn(entry.second, static_cast<uint64_t>(n)));
    }
    return Status::OK();
  }

 private:
  const TableDelta& t_;
};

// Folds an epoch's changes of some tables into deltas, reading every change
// of the epoch.
class EpochBuilder {
 public:
  explicit EpochBuilder(Store* store) : store_(store) {}

  Result<const pb::Relation*> Layout(uint32_t relid, uint64_t lsn, uint32_t seq) {
    auto key = std::make_tuple(relid, lsn, seq);
    auto it = layouts_.find(key);
    if (it == layouts_.end()) {
      ASSIGN_OR_RETURN(auto rel, store_->GetRelation(relid, lsn, seq));
      if (!rel) {
        return Status::Corruption("store: no layout for relation OID " + std::to_string(relid));
      }
      it = layouts_.emplace(key, std::move(*rel)).first;
    }
    return &it->second;
  }

  // Folds the changes of `relids` at positions in the window into *deltas.
  Status Build(const Window& window, const std::set<uint32_t>& relids,
               std::map<uint32_t, TableDeltas>* deltas) {
    Status inner;
    RETURN_IF_ERROR(store_->ForEachChangeInRange(
        window.from.lsn, window.to.lsn, [](const pb::TxnHeader&) { return true; },
        [&](const pb::TxnHeader& h, uint32_t seq, const pb::Change& c) {
          const Position pos{h.commit_lsn(), seq};
          if (pos < window.from) return true;
          if (!(pos < window.to)) return false;
          inner = Fold(pos, c, relids, deltas);
          return inner.ok();
        }));
    return inner;
  }

 private:
  Status Fold(Position pos, const pb::Change& c, const std::set<uint32_t>& relids,
              std::map<uint32_t, TableDeltas>* deltas) {
    if (c.op() == pb::Change::TRUNCATE) {
      for (uint32_t relid : c.truncate_relids()) {
        if (relids.count(relid) == 0) continue;
        ASSIGN_OR_RETURN(const pb::Relation* rel, Layout(relid, pos.lsn, pos.seq));
        TableDeltas& runs = (*deltas)[relid];
        runs.assign(1, TableDelta());
        runs.back().layout = rel;
      }
      return Status::OK();
    }
    if (c.op() != pb::Change::INSERT && c.op() != pb::Change::UPDATE &&
        c.op() != pb::Change::DELETE) {
      return Status::OK();
    }
    if (relids.count(c.relid()) == 0) return Status::OK();
    ASSIGN_OR_RETURN(const pb::Relation* rel,
                     Layout(c.relid(), c.relation_lsn(), c.relation_seq()));
    TableDeltas& runs = (*deltas)[c.relid()];
    if (runs.empty() ||
        (runs.back().layout != rel && !SameLayout(*runs.back().layout, *rel))) {
      runs.emplace_back();
    }
    TableDelta& t = runs.back();
    t.layout = rel;
    const bool has_old = c.op() == pb::Change::DELETE ||
                         (c.op() == pb::Change::UPDATE && c.old_kind() != 0);
    const bool has_new = c.op() != pb::Change::DELETE;
    if (IsMultiset(*rel)) {
      if (has_old && (c.old_kind() == 'O')) {
        std::string enc;
        RETURN_IF_ERROR(AppendTupleRowKey(&enc, *rel, c.old_tuple()));
        auto& entry = t.counts[enc];
        entry.first--;
        entry.second = c.old_tuple();
      }
      if (has_new) {
        std::string enc;
        RETURN_IF_ERROR(AppendTupleRowKey(&enc, *rel, c.new_tuple()));
        auto& entry = t.counts[enc];
        entry.first++;
        entry.second = c.new_tuple();
      }
      return Status::OK();
    }
    std::string old_key, new_key;
    if (has_new) RETURN_IF_ERROR(AppendTupleRowKey(&new_key, *rel, c.new_tuple()));
    if (has_old) {
      RETURN_IF_ERROR(AppendTupleRowKey(&old_key, *rel, c.old_tuple()));
    } else {
      old_key = new_key;
    }
    if (!has_new || old_key != new_key) t.keyed[old_key] = std::nullopt;
    if (has_new) t.keyed[new_key] = c.new_tuple();
    return Status::OK();
  }

  Store* store_;
  std::map<std::tuple<uint32_t, uint64_t, uint32_t>, pb::Relation> layouts_;
};

std::string TableSql(const pb::Relation& rel) { return QualifiedName(rel.nspname(), rel.relname()); }

std::string Join(const std::vector<std::string>& parts, const std::string& sep,
                 const std::string& prefix = "") {
  std::string out;
  for (size_t i = 0; i < parts.size(); i++) out += (i ? sep : "") + prefix + parts[i];
  return out;
}

// A scratch table with the published columns of `rel` (no constraints).
Status CreateScratch(PgConn* conn, const std::string& name, const pb::Relation& rel,
                     const std::vector<std::string>& columns) {
  return conn->Exec("CREATE TEMP TABLE " + name + " ON COMMIT DROP AS SELECT " +
                    Join(columns, ", ") + " FROM " + TableSql(rel) + " WITH NO DATA");
}

// True if the target table has no rows (just created or truncated): the
// epoch's rows then go straight in with COPY.
Result<bool> IsEmpty(PgConn* conn, const pb::Relation& rel) {
  ASSIGN_OR_RETURN(PgResult r,
                   conn->Query("SELECT NOT EXISTS (SELECT FROM ONLY " + TableSql(rel) + ")"));
  return r.Get(0, 0) == "t";
}

Status CopyStraightIn(PgConn* conn, EpochRows* rows) {
  const pb::Relation& rel = rows->layout();
  CopyIn copy(conn, TableName(rel));
  RETURN_IF_ERROR(copy.Begin(TableSql(rel), ColumnNames(rel)));
  RowSink sink;
  sink.rowkey = [&](const pb::Relation& layout, std::string_view rowkey, uint64_t n) {
    return copy.AddRowKey(layout, rowkey, n);
  };
  sink.image = [&](const ChangeImage& image) { return copy.AddImage(image); };
  return copy.End(
      rows->ForEachRow([&](const pb::Tuple& row, uint64_t n) { return copy.Add(row, n); }, &sink));
}

// A catalog query about one table ($1, its name) that yields one boolean.
Result<bool> TableCheck(PgConn* conn, const pb::Relation& rel, const std::string& sql) {
  ASSIGN_OR_RETURN(PgResult r, conn->QueryParams(sql, {TableSql(rel)}));
  return r.rows() == 1 && r.Get(0, 0) == "t";
}

// An empty table gets its epoch's rows with its indexes dropped and built
// again afterwards, as pg_restore loads data before indexes: one build over
// 1,000,000 rows took 0.42 s against 0.88 s more for the COPY that kept the
// primary key up to date row by row (bench_bulk in docs/BENCHMARKS.md).
// Only for a plain table whose indexes nothing else refers to and whose
// definitions SQL rebuilds exactly (no tablespace, CLUSTER mark, comment or
// statistics target of their own); otherwise the indexes stay.
Result<std::vector<std::string>> DropIndexesForLoad(PgConn* conn, const pb::Relation& rel) {
  std::vector<std::string> rebuild;
  ASSIGN_OR_RETURN(
      bool eligible,
      TableCheck(
          conn, rel,
          "SELECT c.relkind = 'r' AND NOT c.relispartition AND c.relreplident <> 'i'"
          " AND NOT EXISTS (SELECT FROM pg_catalog.pg_inherits h"
          "                 WHERE h.inhrelid = c.oid OR h.inhparent = c.oid)"
          " AND NOT EXISTS (SELECT FROM pg_catalog.pg_constraint f"
          "                 WHERE f.confrelid = c.oid AND f.contype = 'f')"
          " AND NOT EXISTS (SELECT FROM pg_catalog.pg_index i"
          "                 JOIN pg_catalog.pg_class ic ON ic.oid = i.indexrelid"
          "                 WHERE i.indrelid = c.oid AND (ic.reltablespace <> 0 OR i.indisclustered"
          "                   OR pg_catalog.obj_description(i.indexrelid, 'pg_class') IS NOT NULL"
          "                   OR EXISTS (SELECT FROM pg_catalog.pg_attribute a"
          "                              WHERE a.attrelid = i.indexrelid AND a.attstattarget > 0)))"
          " AND NOT EXISTS (SELECT FROM pg_catalog.pg_constraint k"
          "                 WHERE k.conrelid = c.oid AND k.conindid <> 0"
          "                 AND pg_catalog.obj_description(k.oid, 'pg_constraint') IS NOT NULL)"
          " FROM pg_catalog.pg_class c WHERE c.oid = $1::regclass"));
  if (!eligible) return rebuild;
  ASSIGN_OR_RETURN(
      PgResult indexes,
      conn->QueryParams(
          "SELECT i.indexrelid::regclass::text, k.conname, pg_catalog.pg_get_indexdef(i.indexrelid),"
          " pg_catalog.pg_get_constraintdef(k.oid)"
          " FROM pg_catalog.pg_index i LEFT JOIN pg_catalog.pg_constraint k"
          "   ON k.conindid = i.indexrelid AND k.conrelid = i.indrelid AND k.contype IN ('p', 'u', 'x')"
          " WHERE i.indrelid = $1::regclass ORDER BY i.indexrelid",
          {TableSql(rel)}));
  for (int r = 0; r < indexes.rows(); r++) {
    if (indexes.IsNull(r, 1)) {
      RETURN_IF_ERROR(conn->Exec("DROP INDEX " + indexes.GetString(r, 0)));  // regclass text: quoted
      rebuild.push_back(indexes.GetString(r, 2));
    } else {
      const std::string name = QuoteIdent(indexes.GetString(r, 1));
      RETURN_IF_ERROR(conn->Exec("ALTER TABLE " + TableSql(rel) + " DROP CONSTRAINT " + name));
      rebuild.push_back("ALTER TABLE " + TableSql(rel) + " ADD CONSTRAINT " + name + " " +
                        indexes.GetString(r, 3));
    }
  }
  return rebuild;
}

// COPY into an empty table, indexes built after the rows are in.
Status LoadIntoEmpty(PgConn* conn, EpochRows* rows) {
  ASSIGN_OR_RETURN(std::vector<std::string> rebuild, DropIndexesForLoad(conn, rows->layout()));
  RETURN_IF_ERROR(CopyStraightIn(conn, rows));
  for (const std::string& sql : rebuild) RETURN_IF_ERROR(conn->Exec(sql));
  return Status::OK();
}

// True if an epoch's new images of a keyed table may update rows in place
// (0.65 s against 1.03 s to delete and insert again 100,000 of 1,000,000
// rows). Not when the table has no column besides its key, nor when a
// non-key column is GENERATED ALWAYS AS IDENTITY (UPDATE cannot set it),
// nor when a unique or exclusion index other than the key's could see a
// duplicate in mid-statement (two rows swapping unique values): deleting
// every changed row first never can.
Result<bool> CanUpdateInPlace(PgConn* conn, const pb::Relation& rel) {
  bool non_key = false;
  for (const pb::Column& c : rel.columns()) non_key = non_key || !c.key();
  if (!non_key) return false;
  ASSIGN_OR_RETURN(
      bool no_other_unique,
      TableCheck(conn, rel,
                 "SELECT NOT EXISTS (SELECT FROM pg_catalog.pg_index i"
                 "   WHERE i.indrelid = c.oid AND (i.indisunique OR i.indisexclusion)"
                 "   AND NOT i.indisreplident AND NOT (i.indisprimary AND c.relreplident = 'd'))"
                 " FROM pg_catalog.pg_class c WHERE c.oid = $1::regclass"));
  if (!no_other_unique) return false;
  // An identity column that is part of the key is never set by the UPDATE.
  ASSIGN_OR_RETURN(
      PgResult ids,
      conn->QueryParams("SELECT a.attname FROM pg_catalog.pg_attribute a"
                        " WHERE a.attrelid = $1::regclass AND a.attnum > 0"
                        " AND NOT a.attisdropped AND a.attidentity = 'a'",
                        {TableSql(rel)}));
  for (int i = 0; i < ids.rows(); i++) {
    for (const pb::Column& c : rel.columns()) {
      if (!c.key() && c.name() == ids.GetString(i, 0)) return false;
    }
  }
  return true;
}

Status ApplyKeyed(PgConn* conn, EpochRows* rows) {
  const pb::Relation& rel = rows->layout();
  const std::vector<std::string> columns = ColumnNames(rel);
  ASSIGN_OR_RETURN(bool empty, IsEmpty(conn, rel));
  if (empty) return LoadIntoEmpty(conn, rows);
  std::vector<std::string> key_columns;
  for (const pb::Column& c : rel.columns()) {
    if (c.key()) key_columns.push_back(QuoteIdent(c.name()));
  }
  RETURN_IF_ERROR(CreateScratch(conn, "pgtrail_up", rel, columns));
  RETURN_IF_ERROR(conn->Exec("CREATE TEMP TABLE pgtrail_gone ON COMMIT DROP AS SELECT " +
                             Join(key_columns, ", ") + " FROM " + TableSql(rel) +
                             " WITH NO DATA"));
  // One COPY at a time on a connection: the deleted keys stream in while the
  // keys are scanned, the final images after.
  CopyIn gone(conn, TableName(rel));
  RETURN_IF_ERROR(gone.Begin("pgtrail_gone", key_columns));
  pb::Tuple key;
  const KeyFn add_gone = [&](std::string_view rowkey) {
    RETURN_IF_ERROR(RowKeyValues(rel, rowkey, &key));
    return gone.Add(key);
  };
  RETURN_IF_ERROR(gone.End(rows->ScanKeys(&add_gone)));
  CopyIn up(conn, TableName(rel));
  RETURN_IF_ERROR(up.Begin("pgtrail_up", columns));
  RETURN_IF_ERROR(up.End(rows->ForEachUpsert([&](const pb::Tuple& row) { return up.Add(row); })));
  std::vector<std::string> match;
  for (const std::string& k : key_columns) match.push_back("t." + k + " = s." + k);
  const std::string on = Join(match, " AND ");
  if (gone.rows() > 0) {
    RETURN_IF_ERROR(
        conn->Exec("DELETE FROM ONLY " + TableSql(rel) + " t USING pgtrail_gone s WHERE " + on));
  }
  ASSIGN_OR_RETURN(bool in_place, CanUpdateInPlace(conn, rel));
  if (in_place) {
    // Rows whose key is there are updated, the others inserted, in one
    // statement: the INSERT skips the keys the UPDATE returned.
    std::vector<std::string> sets, returned, s_columns;
    for (const pb::Column& c : rel.columns()) {
      const std::string name = QuoteIdent(c.name());
      if (!c.key()) sets.push_back(name + " = s." + name);
      s_columns.push_back("s." + name);
    }
    for (const std::string& k : key_columns) returned.push_back("u." + k + " = s." + k);
    RETURN_IF_ERROR(conn->Exec(
        "WITH u AS (UPDATE ONLY " + TableSql(rel) + " t SET " + Join(sets, ", ") +
        " FROM pgtrail_up s WHERE " + on + " RETURNING " + Join(key_columns, ", ", "t.") +
        ") INSERT INTO " + TableSql(rel) + " (" + Join(columns, ", ") +
        ") OVERRIDING SYSTEM VALUE SELECT " + Join(s_columns, ", ") +
        " FROM pgtrail_up s WHERE NOT EXISTS (SELECT FROM u WHERE " + Join(returned, " AND ") +
        ")"));
    return conn->Exec("DROP TABLE pgtrail_up, pgtrail_gone");
  }
  RETURN_IF_ERROR(conn->Exec("DELETE FROM ONLY " + TableSql(rel) + " t USING pgtrail_up s WHERE " + on));
  RETURN_IF_ERROR(conn->Exec("INSERT INTO " + TableSql(rel) + " (" + Join(columns, ", ") +
                             ") OVERRIDING SYSTEM VALUE SELECT " + Join(columns, ", ") +
                             " FROM pgtrail_up"));
  return conn->Exec("DROP TABLE pgtrail_up, pgtrail_gone");
}

Status ApplyMultiset(PgConn* conn, EpochRows* rows) {
  const pb::Relation& rel = rows->layout();
  const std::vector<std::string> columns = ColumnNames(rel);
  ASSIGN_OR_RETURN(bool empty, IsEmpty(conn, rel));
  if (empty) return LoadIntoEmpty(conn, rows);
  RETURN_IF_ERROR(CreateScratch(conn, "pgtrail_add", rel, columns));
  RETURN_IF_ERROR(CreateScratch(conn, "pgtrail_remove", rel, columns));
  CopyIn add(conn, TableName(rel));
  RETURN_IF_ERROR(add.Begin("pgtrail_add", columns));
  RETURN_IF_ERROR(add.End(rows->ForEachCount(
      /*additions=*/true, [&](const pb::Tuple& row, uint64_t n) { return add.Add(row, n); })));
  CopyIn remove(conn, TableName(rel));
  RETURN_IF_ERROR(remove.Begin("pgtrail_remove", columns));
  RETURN_IF_ERROR(remove.End(rows->ForEachCount(
      /*additions=*/false, [&](const pb::Tuple& row, uint64_t n) { return remove.Add(row, n); })));
  // Remove n copies of each row: number the target's copies of every row
  // (compared by their text form) and delete the first n.
  const std::string row_t = "ROW(" + Join(columns, ", ", "t.") + ")::text";
  const std::string row_r = "ROW(" + Join(columns, ", ", "r.") + ")::text";
  if (remove.rows() > 0) RETURN_IF_ERROR(conn->Exec(
      "DELETE FROM ONLY " + TableSql(rel) + " WHERE ctid IN (SELECT a.ctid FROM (SELECT t.ctid, " +
      row_t + " AS k, row_number() OVER (PARTITION BY " + row_t + ") AS n FROM ONLY " +
      TableSql(rel) + " t) a JOIN (SELECT " + row_r +
      " AS k, count(*) AS n FROM pgtrail_remove r GROUP BY 1) b ON a.k = b.k AND a.n <= b.n)"));
  RETURN_IF_ERROR(conn->Exec("INSERT INTO " + TableSql(rel) + " (" + Join(columns, ", ") +
                             ") OVERRIDING SYSTEM VALUE SELECT " + Join(columns, ", ") +
                             " FROM pgtrail_add"));
  return conn->Exec("DROP TABLE pgtrail_add, pgtrail_remove");
}

// True if replaying the schema change leaves the rows of table `relname`
// alone, so that rows from before and after it may be loaded together.
bool DdlLeavesRowsAlone(const SchemaChange& d, const std::string& relname) {
  if (d.replay_sql.empty()) return true;  // replayed with an earlier command
  if (!d.filled_tables.empty()) return false;
  for (const std::string& statement : SplitSqlStatements(d.replay_sql)) {
    if (!LeavesRowsAlone(statement, relname)) return false;
  }
  return true;
}

// Where the rows of one table come from when its epochs k..m are applied
// at once, if they can be (m > k): the schema changes after k through m
// leave its rows alone, none of those epochs truncates it, and their rows
// share the columns of epoch k's. With the same layout throughout, the
// epochs are one wider window, applied to a non-empty table as well; with a
// key added after epoch k, only into an empty table (MergedRows).
struct MergedEpochs {
  size_t through = 0;  // m
  std::unique_ptr<EpochRows> rows;
};

Result<MergedEpochs> MergeLaterEpochs(Store* store, const RestorePlan& plan,
                                      const std::vector<Window>& windows,
                                      const std::vector<EpochActivity>& activity,
                                      const LayoutHistory& history, size_t k,
                                      const pb::Relation& layout, PgConn* conn) {
  const uint32_t relid = layout.relid();
  const TableActivity& first = activity[k].tables.at(relid);
  MergedEpochs merged;
  merged.through = k;
  TableActivity later;  // epochs k+1..m
  for (size_t j = k + 1; j < windows.size(); j++) {
    if (!DdlLeavesRowsAlone(plan.ddl[j], layout.relname())) break;
    auto t = activity[j].tables.find(relid);
    if (t == activity[j].tables.end()) continue;
    if (t->second.truncated || t->second.entries == 0) break;
    if (later.entries == 0) later.first = t->second.first;
    later.last = t->second.last;
    later.entries += t->second.entries;
    merged.through = j;
  }
  if (merged.through == k) return merged;
  const pb::Relation* later_layout = history.At(later.first);
  if (later_layout == nullptr || !history.OneLayoutBetween(later.first, later.last) ||
      !SameColumns(layout, *later_layout)) {
    merged.through = k;
    return merged;
  }
  if (SameLayout(layout, *later_layout) && history.OneLayoutBetween(first.first, later.last)) {
    TableActivity all = first;
    all.entries += later.entries;
    all.last = later.last;
    merged.rows = std::make_unique<StreamedRows>(
        store, layout, history, Window{windows[k].from, windows[merged.through].to}, all);
    return merged;
  }
  if (IsMultiset(*later_layout)) {
    merged.through = k;
    return merged;
  }
  ASSIGN_OR_RETURN(bool empty, IsEmpty(conn, layout));
  if (!empty) {
    merged.through = k;
    return merged;
  }
  merged.rows = std::make_unique<MergedRows>(
      std::make_unique<StreamedRows>(store, layout, history, windows[k], first),
      std::make_unique<StreamedRows>(store, *later_layout, history,
                                     Window{windows[k + 1].from, windows[merged.through].to},
                                     later));
  return merged;
}

// How one table's rows of one epoch are applied.
struct TablePlan {
  const pb::Relation* layout = nullptr;  // its name and columns in this epoch
  bool streamed = false;                 // rows from the row index
  bool folded = false;                   // rows from the fold (mixed layouts)
};

}  // namespace

Status ApplyEpochs(Store* store, const RestorePlan& plan, LoadJobs* jobs,
                   const EpochOptions& options, std::set<std::string>* loaded_oids,
                   std::ostream& out) {
  if (plan.ddl.empty()) return Status::OK();
  PgConn* conn = jobs->main();
  // With --jobs the main connection commits each schema change on its own
  // (the workers see it) and the session settings are the caller's.
  const bool parallel = jobs->parallel();
  if (!parallel) {
    // Rows go in as they were; the target's triggers and foreign keys must
    // not act on them (as pg_restore --disable-triggers). Needs a superuser.
    RETURN_IF_ERROR(conn->Exec("SAVEPOINT pgtrail_role"));
    if (!conn->Exec("SET LOCAL session_replication_role = replica").ok()) {
      RETURN_IF_ERROR(conn->Exec("ROLLBACK TO SAVEPOINT pgtrail_role"));
      out << "  note: not a superuser, so triggers of the target fire while epochs are applied\n";
    }
    RETURN_IF_ERROR(conn->Exec("RELEASE SAVEPOINT pgtrail_role"));
  }
  std::map<uint32_t, std::string> relnames;  // of tables with jobs, by relid
  std::set<uint32_t> deferred;               // tables with an index build queued

  std::vector<Window> windows;
  const Position last{plan.last_txn->commit_lsn(), UINT32_MAX};
  for (size_t k = 0; k < plan.ddl.size(); k++) {
    // The rows changed after each schema change until the next one.
    windows.push_back({Position{plan.ddl[k].lsn, plan.ddl[k].seq + 1},
                       k + 1 < plan.ddl.size()
                           ? Position{plan.ddl[k + 1].lsn, plan.ddl[k + 1].seq}
                           : last});
  }
  std::vector<EpochActivity> activity;
  RETURN_IF_ERROR(ScanActivity(store, windows, plan.chosen_relids, &activity));

  std::map<uint32_t, LayoutHistory> histories;
  // Tables whose rows were applied through a later epoch: that epoch's index.
  std::map<uint32_t, size_t> merged_through;
  EpochBuilder builder(store);
  // Jobs refer to the histories, the builder's layouts and the rows above:
  // they end before those do, also when this returns early.
  struct WaitOnExit {
    LoadJobs* jobs;
    ~WaitOnExit() { (void)jobs->WaitAll(); }
  } wait_on_exit{jobs};
  for (size_t k = 0; k < plan.ddl.size(); k++) {
    const SchemaChange& d = plan.ddl[k];
    // 1. The schema change, in the session state it ran with, once the loads
    // it might see or change are done: a change that leaves a table's rows
    // alone and reads none (LeavesRowsAlone) goes on meanwhile (one that
    // builds an index on it waits for the load's lock).
    // With --jobs, an index built on a table still being loaded is built
    // after the load on that table's worker, as pg_restore -j builds indexes
    // after the data, while this goes on; later schema changes then wait for
    // it unless they are CREATE TABLEs that do not name that table.
    const std::string where = d.tag + " of xid " + std::to_string(d.xid) + " at LSN " +
                              FormatLsn(d.lsn);
    bool built_later = false;
    if (parallel && !options.tolerate_ddl_failures && d.filled_tables.empty() &&
        SplitSqlStatements(d.replay_sql).size() == 1) {
      const std::string table = IndexBuildTable(d.replay_sql);
      std::vector<uint32_t> loading;
      for (uint32_t relid : jobs->Busy()) {
        if (!table.empty() && relnames[relid] == table) loading.push_back(relid);
      }
      if (loading.size() == 1) {
        built_later = true;
        deferred.insert(loading[0]);
        RETURN_IF_ERROR(jobs->Run(loading[0], [&d, where, jobs, &out](PgConn* c) {
          RETURN_IF_ERROR(c->QueryParams("SELECT pg_catalog.set_config('search_path', $1, true)",
                                         {d.search_path})
                              .status());
          Status st = c->Exec(d.replay_sql);
          if (!st.ok()) {
            return Status::FailedPrecondition("replaying " + where + " failed: " + st.message());
          }
          std::lock_guard<std::mutex> lock(jobs->output_mutex());
          out << "  replayed " << where << " after the load of its table\n";
          return Status::OK();
        }));
      }
    }
    for (uint32_t relid : built_later ? std::vector<uint32_t>() : jobs->Busy()) {
      const bool wait =
          !DdlLeavesRowsAlone(d, relnames[relid]) ||
          (deferred.count(relid) != 0 &&
           (!IsCreateTable(d.replay_sql) || MentionsName(d.replay_sql, relnames[relid])));
      if (wait) {
        RETURN_IF_ERROR(jobs->WaitFor(relid));
        deferred.erase(relid);
      }
    }
    if (!built_later) {
      if (parallel) RETURN_IF_ERROR(conn->Exec("BEGIN"));
      RETURN_IF_ERROR(conn->Exec("SAVEPOINT pgtrail_ddl"));
      RETURN_IF_ERROR(conn->QueryParams("SELECT pg_catalog.set_config('search_path', $1, true)",
                                        {d.search_path})
                          .status());
      Status st = d.replay_sql.empty() ? Status::OK() : conn->Exec(d.replay_sql);
      for (const std::string& table : d.filled_tables) {
        if (st.ok()) st = conn->Exec("TRUNCATE ONLY " + table);  // identity: quoted as needed
      }
      if (!st.ok()) {
        if (!options.tolerate_ddl_failures) {
          return Status::FailedPrecondition("replaying " + where + " failed: " + st.message());
        }
        RETURN_IF_ERROR(conn->Exec("ROLLBACK TO SAVEPOINT pgtrail_ddl"));
        std::lock_guard<std::mutex> lock(jobs->output_mutex());
        out << "  skipped " << where << " (it needs a table left out: " << st.message() << ")\n";
      } else if (!d.replay_sql.empty()) {
        std::lock_guard<std::mutex> lock(jobs->output_mutex());
        out << "  replayed " << where << "\n";
      }
      RETURN_IF_ERROR(conn->Exec("RELEASE SAVEPOINT pgtrail_ddl"));
      RETURN_IF_ERROR(conn->Exec(parallel ? "COMMIT" : "SET LOCAL search_path = pg_catalog"));
    }

    // 2. The rows changed until the next schema change, table by table.
    const Window& window = windows[k];
    const EpochActivity& epoch = activity[k];
    std::map<uint32_t, TablePlan> tables;
    std::set<uint32_t> to_fold;
    for (const auto& [relid, t] : epoch.tables) {
      auto h = histories.find(relid);
      if (h == histories.end()) {
        ASSIGN_OR_RETURN(LayoutHistory history, LayoutHistory::Load(store, relid));
        h = histories.emplace(relid, std::move(history)).first;
      }
      TablePlan& p = tables[relid];
      if (t.entries > 0 && !h->second.OneLayoutBetween(t.first, t.last)) {
        p.folded = true;
        to_fold.insert(relid);
        continue;
      }
      p.streamed = t.entries > 0;
      p.layout = h->second.At(t.entries > 0 ? t.first : t.last_truncate);
      if (p.layout == nullptr) {
        return Status::Corruption("store: no layout for relation OID " + std::to_string(relid));
      }
    }
    std::map<uint32_t, TableDeltas> deltas;
    if (!to_fold.empty()) {
      RETURN_IF_ERROR(builder.Build(window, to_fold, &deltas));
      for (uint32_t relid : to_fold) {
        auto runs = deltas.find(relid);
        if (runs == deltas.end() || runs->second.empty()) {
          return Status::Corruption("store: the row index of relation OID " +
                                    std::to_string(relid) + " names changes that are missing");
        }
        tables[relid].layout = runs->second.back().layout;
      }
    }
    auto chosen = [&](const pb::Relation& rel) { return !options.chosen || options.chosen(rel); };
    for (const auto& [pos, relids] : epoch.truncates) {
      std::vector<std::string> names;
      for (uint32_t relid : relids) {
        const pb::Relation& rel = *tables.at(relid).layout;
        if (chosen(rel)) names.push_back(TableSql(rel));
      }
      for (uint32_t relid : relids) RETURN_IF_ERROR(jobs->WaitFor(relid));
      if (!names.empty()) RETURN_IF_ERROR(conn->Exec("TRUNCATE ONLY " + Join(names, ", ")));
    }
    for (const auto& [relid, p] : tables) {
      const pb::Relation& rel = *p.layout;
      if (!chosen(rel)) continue;
      auto through = merged_through.find(relid);
      if (through != merged_through.end() && k <= through->second) continue;  // loaded before
      // Decided on what the table holds: its earlier loads must be done.
      RETURN_IF_ERROR(jobs->WaitFor(relid));
      auto runs = std::make_shared<std::vector<std::unique_ptr<EpochRows>>>();
      size_t last_epoch = k;
      if (p.folded) {
        for (const TableDelta& delta : deltas.at(relid)) {
          runs->push_back(std::make_unique<FoldedRows>(delta));
        }
      } else if (p.streamed) {
        ASSIGN_OR_RETURN(MergedEpochs merged,
                         MergeLaterEpochs(store, plan, windows, activity, histories.at(relid), k,
                                          rel, conn));
        if (merged.through > k) {
          last_epoch = merged.through;
          merged_through[relid] = merged.through;
          runs->push_back(std::move(merged.rows));
        } else {
          runs->push_back(std::make_unique<StreamedRows>(store, rel, histories.at(relid), window,
                                                         epoch.tables.at(relid)));
        }
      }  // else only truncated: nothing more to apply
      std::string through_text;
      if (last_epoch > k) {
        const SchemaChange& until = plan.ddl[last_epoch];
        through_text = " through the " + until.tag + " of xid " + std::to_string(until.xid) +
                       " (the schema changes in between leave its rows alone)";
      }
      relnames[relid] = rel.relname();
      RETURN_IF_ERROR(jobs->Run(relid, [runs, &rel, through_text, jobs, &out](PgConn* c) {
        uint64_t changed = 0;
        for (const std::unique_ptr<EpochRows>& rows : *runs) {
          RETURN_IF_ERROR(IsMultiset(rows->layout()) ? ApplyMultiset(c, rows.get())
                                                     : ApplyKeyed(c, rows.get()));
          changed += rows->changed();
        }
        std::lock_guard<std::mutex> lock(jobs->output_mutex());
        out << "    " << TableName(rel) << ": " << changed << " rows changed" << through_text
            << "\n";
        return Status::OK();
      }));
      // Folded rows refer to this epoch's deltas.
      if (p.folded) RETURN_IF_ERROR(jobs->WaitFor(relid));
      ASSIGN_OR_RETURN(PgResult oid, conn->QueryParams("SELECT to_regclass($1)::oid::text",
                                                       {TableSql(rel)}));
      if (oid.rows() == 1 && !oid.IsNull(0, 0)) loaded_oids->insert(oid.GetString(0, 0));
    }
  }
  return jobs->WaitAll();
}

}  // namespace pgtrail
