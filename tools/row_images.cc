#include "tools/row_images.h"

#include <google/protobuf/arena.h>
#include <rocksdb/db.h>

#include <algorithm>

#include "storage/coding.h"
#include "storage/copy_text.h"
#include "storage/keys.h"
#include "tools/restore.h"

namespace pgtrail {
namespace {

std::string DescribePosition(Position pos) {
  return "change " + std::to_string(pos.seq) + " of transaction at " + FormatLsn(pos.lsn);
}

// Parsing a Change frees and reallocates its tuples and their strings
// (protobuf's Clear() deletes singular submessages). On an arena those are
// bump allocations instead, released together every kArenaChanges changes;
// the arena keeps its first block, so a restore's steady state allocates
// nothing.
constexpr size_t kArenaChanges = 1024;
constexpr size_t kArenaFirstBlock = 1u << 20;

}  // namespace

RowIdxCursor::RowIdxCursor(Store* store, uint32_t relid) : prefix_(keys::RowIdxPrefix(relid)) {
  it_.reset(store->db()->NewIterator(rocksdb::ReadOptions(), store->cf(Family::kRowIdx)));
  it_->Seek(prefix_);
  Settle();
}

RowIdxCursor::~RowIdxCursor() = default;

void RowIdxCursor::Next() {
  it_->Next();
  Settle();
}

void RowIdxCursor::Settle() {
  if (!it_->Valid() || !it_->key().starts_with(prefix_)) {
    done_ = true;
    if (!it_->status().ok()) status_ = Status::IOError(it_->status().ToString());
    return;
  }
  uint32_t relid;
  status_ = keys::ParseRowIdxKey(ToView(it_->key()), &relid, &rowkey_, &lsn_, &seq_);
  if (!status_.ok() || it_->value().size() != 1) {
    if (status_.ok()) status_ = Status::Corruption("store: bad row index entry");
    done_ = true;
    return;
  }
  op_ = it_->value()[0];
}

Status RowKeyValues(const pb::Relation& rel, std::string_view rowkey, pb::Tuple* out) {
  int columns = 0;
  const bool multiset = IsMultiset(rel);
  for (const pb::Column& c : rel.columns()) columns += multiset || c.key() ? 1 : 0;
  // Decoded straight into out's strings: one row per rowkey, millions of
  // them in a restore, so nothing is allocated once the strings are grown.
  std::string* kinds = out->mutable_kinds();
  kinds->resize(static_cast<size_t>(columns));
  auto* values = out->mutable_values();
  while (values->size() > columns) values->RemoveLast();  // kept for reuse
  while (values->size() < columns) values->Add();
  size_t used = 0;
  for (int i = 0; i < columns; i++) {
    bool is_null = false;
    RETURN_IF_ERROR(keys::ParseRowKeyValue(rowkey, &used, &is_null, values->Mutable(i)));
    (*kinds)[static_cast<size_t>(i)] = is_null ? 'n' : 't';
  }
  if (used != rowkey.size()) {
    return Status::Corruption("store: a row key of " + TableName(rel) + " holds more than its " +
                              std::to_string(columns) + " columns (written under another layout)");
  }
  return Status::OK();
}

Status AppendCopyTextFromRowKey(std::string* dst, const pb::Relation& rel, std::string_view rowkey,
                                std::string* scratch) {
  if (!IsMultiset(rel)) return Status::Internal("a keyed row key holds only the key");
  const size_t start = dst->size();
  size_t used = 0;
  for (int i = 0; i < rel.columns_size(); i++) {
    if (i > 0) dst->push_back('\t');
    bool is_null = false;
    std::string_view value;
    Status st = keys::ParseRowKeyValueView(rowkey, &used, &is_null, &value, scratch);
    if (!st.ok()) {
      dst->resize(start);
      return st;
    }
    if (is_null) {
      dst->append("\\N");
    } else {
      AppendCopyTextValue(dst, value);
    }
  }
  if (used != rowkey.size()) {
    dst->resize(start);
    return Status::Corruption("store: a row key of " + TableName(rel) + " holds more than its " +
                              std::to_string(rel.columns_size()) +
                              " columns (written under another layout)");
  }
  dst->push_back('\n');
  return Status::OK();
}

Status CheckRowOp(const pb::Relation& layout, char op) {
  const bool keyed_op = op == static_cast<char>(keys::RowOp::kUpsert) ||
                        op == static_cast<char>(keys::RowOp::kDelete);
  const bool multiset_op = op == static_cast<char>(keys::RowOp::kAddOne) ||
                           op == static_cast<char>(keys::RowOp::kRemoveOne);
  if (IsMultiset(layout) ? multiset_op : keyed_op) return Status::OK();
  return Status::Corruption("store: a row index entry of " + TableName(layout) +
                            (keyed_op || multiset_op ? " was written under another layout"
                                                     : " has an unknown operation"));
}

Result<LayoutHistory> LayoutHistory::Load(Store* store, uint32_t relid) {
  LayoutHistory history;
  history.relid_ = relid;
  std::unique_ptr<rocksdb::Iterator> it(
      store->db()->NewIterator(rocksdb::ReadOptions(), store->cf(Family::kRelation)));
  for (it->Seek(keys::RelationKey(relid, 0, 0)); it->Valid(); it->Next()) {
    uint32_t found;
    Position pos;
    RETURN_IF_ERROR(keys::ParseRelationKey(ToView(it->key()), &found, &pos.lsn, &pos.seq));
    if (found != relid) break;
    pb::Relation rel;
    RETURN_IF_ERROR(ParseStored(ToView(it->value()), "relation", &rel));
    history.versions_.emplace_back(pos, std::move(rel));
  }
  if (!it->status().ok()) return Status::IOError(it->status().ToString());
  return history;
}

const pb::Relation* LayoutHistory::At(Position pos) const {
  auto after = std::upper_bound(versions_.begin(), versions_.end(), pos,
                                [](Position p, const auto& v) { return p < v.first; });
  return after == versions_.begin() ? nullptr : &std::prev(after)->second;
}

bool LayoutHistory::OneLayoutBetween(Position first, Position last) const {
  const pb::Relation* base = At(first);
  for (const auto& [pos, rel] : versions_) {
    if (first < pos && pos <= last && (base == nullptr || !SameLayout(*base, rel))) {
      return false;
    }
  }
  return true;
}

void LayoutHistory::Indexing(Position first, Position last, bool* indexed,
                             bool* unindexed) const {
  *indexed = false;
  *unindexed = false;
  auto note = [&](const pb::Relation& rel) { *(RowIndexed(rel) ? indexed : unindexed) = true; };
  if (const pb::Relation* base = At(first)) note(*base);
  for (const auto& [pos, rel] : versions_) {
    if (first < pos && pos <= last) note(rel);
  }
}

struct FinalImageReader::ArenaState {
  ArenaState() : first_block(new char[kArenaFirstBlock]), arena(Options(first_block.get())) {}
  static google::protobuf::ArenaOptions Options(char* block) {
    google::protobuf::ArenaOptions options;
    options.initial_block = block;
    options.initial_block_size = kArenaFirstBlock;
    return options;
  }
  std::unique_ptr<char[]> first_block;
  google::protobuf::Arena arena;
  pb::Change* parsed = nullptr;
};

FinalImageReader::FinalImageReader(Store* store, const pb::Relation& layout,
                                   const LayoutHistory& history)
    : layout_(layout), history_(history), reader_(store),
      arena_(std::make_unique<ArenaState>()) {}

FinalImageReader::~FinalImageReader() = default;

Status FinalImageReader::Check(Position pos, int op, uint32_t relid, uint64_t relation_lsn,
                               uint32_t relation_seq) {
  if ((op != pb::Change::INSERT && op != pb::Change::UPDATE) || relid != layout_.relid()) {
    return Status::Corruption("store: the row index of " + TableName(layout_) + " points at " +
                              DescribePosition(pos) + ", which is not an INSERT or UPDATE of it");
  }
  // The layout check per change: the version its (relation_lsn,
  // relation_seq) names, compared once per version.
  const pb::Relation* written = history_.At(Position{relation_lsn, relation_seq});
  if (written != checked_ || checked_ == nullptr) {
    checked_ = written;
    checked_same_ = written != nullptr && SameLayout(*written, layout_);
  }
  if (!checked_same_) {
    return Status::Corruption("store: " + DescribePosition(pos) + " of " + TableName(layout_) +
                              " was written under the layout version at LSN " +
                              FormatLsn(relation_lsn) + " seq " + std::to_string(relation_seq) +
                              ", not the one its rows are restored with");
  }
  return Status::OK();
}

Status FinalImageReader::Read(Position pos, const std::function<Status(const pb::Tuple&)>& emit) {
  if (reads_++ % kArenaChanges == 0) {
    arena_->arena.Reset();
    arena_->parsed = google::protobuf::Arena::CreateMessage<pb::Change>(&arena_->arena);
  }
  const pb::Change& change = *arena_->parsed;
  bool found = false;
  RETURN_IF_ERROR(reader_.Get(pos.lsn, pos.seq, arena_->parsed, &found));
  if (!found) return Status::Corruption("store: " + DescribePosition(pos) + " is missing");
  RETURN_IF_ERROR(
      Check(pos, change.op(), change.relid(), change.relation_lsn(), change.relation_seq()));
  return emit(change.new_tuple());
}

Status FinalImageReader::ReadImage(Position pos,
                                   const std::function<Status(const ChangeImage&)>& emit) {
  std::string_view bytes;
  bool found = false;
  RETURN_IF_ERROR(reader_.GetBytes(pos.lsn, pos.seq, &bytes, &found));
  if (!found) return Status::Corruption("store: " + DescribePosition(pos) + " is missing");
  RETURN_IF_ERROR(ParseChangeImage(bytes, &image_));
  RETURN_IF_ERROR(Check(pos, image_.op, image_.relid, image_.relation_lsn, image_.relation_seq));
  return emit(image_);
}

Status FinalImageReader::ForEachOnce(std::vector<Position> positions,
                                     const std::function<Status(Position)>& read) const {
  std::sort(positions.begin(), positions.end());
  for (size_t i = 0; i < positions.size(); i++) {
    if (i > 0 && positions[i - 1] == positions[i]) {
      return Status::Corruption("store: two rows of " + TableName(layout_) + " end at " +
                                DescribePosition(positions[i]));
    }
    RETURN_IF_ERROR(read(positions[i]));
  }
  return Status::OK();
}

Status ForEachFinalImage(Store* store, const pb::Relation& layout, const LayoutHistory& history,
                         std::vector<Position> positions,
                         const std::function<Status(const pb::Tuple&)>& emit) {
  FinalImageReader reader(store, layout, history);
  return reader.ForEachOnce(std::move(positions),
                            [&](Position pos) { return reader.Read(pos, emit); });
}

Status ForEachAddedRow(Store* store, const pb::Relation& layout, const LayoutHistory& history,
                       Position first, Position last,
                       const std::function<bool(Position)>& counts,
                       const std::function<Status(Position, const ChangeImage&)>& fn) {
  const uint32_t relid = layout.relid();
  ChangeReader reader(store);
  ChangeImage image;
  const pb::Relation* checked = nullptr;  // the version last looked at
  bool checked_added = false;             // its changes add rows here
  Status inner;
  RETURN_IF_ERROR(store->ForEachTxn(first.lsn, last.lsn, [&](const pb::TxnHeader& h) {
    uint32_t from = 0, to = 0;  // seqs, inclusive
    if (h.tables_listed()) {
      auto t = std::find_if(h.tables().begin(), h.tables().end(),
                            [&](const pb::TxnTable& t) { return t.relid() == relid; });
      if (t == h.tables().end()) return true;
      from = t->first_seq();
      to = t->last_seq();
    } else {
      if (h.change_count() == 0) return true;
      to = h.change_count() - 1;
    }
    for (uint32_t seq = from;; seq++) {
      const Position pos{h.commit_lsn(), seq};
      if (last < pos) return false;
      if (first <= pos && counts(pos)) {
        std::string_view bytes;
        bool found = false;
        inner = reader.GetBytes(pos.lsn, pos.seq, &bytes, &found);
        if (inner.ok() && !found) {
          inner = Status::Corruption("store: " + DescribePosition(pos) + " is missing");
        }
        if (inner.ok()) inner = ParseChangeImage(bytes, &image);
        if (inner.ok() && image.values.size() < image.kinds.size()) {
          inner = Status::Corruption("store: " + DescribePosition(pos) +
                                     " has fewer values than columns");
        }
        if (!inner.ok()) return false;
        if (image.relid == relid &&
            (image.op == pb::Change::INSERT || image.op == pb::Change::UPDATE)) {
          const pb::Relation* written =
              history.At(Position{image.relation_lsn, image.relation_seq});
          if (written != checked || checked == nullptr) {
            checked = written;
            checked_added = written == nullptr || !RowIndexed(*written);
            if (checked_added && (written == nullptr || !SameColumns(*written, layout))) {
              inner = Status::Corruption(
                  "store: " + DescribePosition(pos) + " of " + TableName(layout) +
                  " was written under the layout version at LSN " +
                  FormatLsn(image.relation_lsn) + " seq " + std::to_string(image.relation_seq) +
                  ", whose columns are not the ones its rows are restored with");
              return false;
            }
          }
          if (checked_added) {
            inner = fn(pos, image);
            if (!inner.ok()) return false;
          }
        }
      }
      if (seq == to) break;
    }
    return true;
  }));
  return inner;
}

void ImageTuple(const ChangeImage& image, pb::Tuple* out) {
  out->set_kinds(image.kinds.data(), image.kinds.size());
  const int n = static_cast<int>(image.values.size());
  while (out->values_size() > n) out->mutable_values()->RemoveLast();
  for (int i = 0; i < n; i++) {
    const std::string_view v = image.values[static_cast<size_t>(i)];
    if (i < out->values_size()) {
      out->set_values(i, v.data(), v.size());
    } else {
      out->add_values(v.data(), v.size());
    }
  }
}

Status AppendImageRowKey(std::string* dst, const pb::Relation& rel, const ChangeImage& image) {
  return AppendRowKeyOf(
      dst, rel, static_cast<int>(image.kinds.size()),
      [&](int i) { return image.kinds[static_cast<size_t>(i)]; },
      [&](int i) { return image.values[static_cast<size_t>(i)]; });
}

bool AscendingLookup::Contains(std::string_view key) {
  const auto less = [](const std::string& k, std::string_view v) { return k < v; };
  const auto begin = keys_.begin();
  if (at_ > 0 && !(keys_[at_ - 1] < key)) {  // behind: search what lies before
    at_ = static_cast<size_t>(
        std::lower_bound(begin, begin + static_cast<ptrdiff_t>(at_), key, less) - begin);
  } else {
    // Ahead: a few steps in order, then a search of the rest.
    for (int steps = 0; at_ < keys_.size() && keys_[at_] < key; steps++, at_++) {
      if (steps == 8) {
        at_ = static_cast<size_t>(
            std::lower_bound(begin + static_cast<ptrdiff_t>(at_), keys_.end(), key, less) -
            begin);
        break;
      }
    }
  }
  return at_ < keys_.size() && keys_[at_] == key;
}

}  // namespace pgtrail
