#include "tools/row_images.h"

#include <rocksdb/db.h>

#include <algorithm>

#include "storage/coding.h"
#include "storage/keys.h"
#include "tools/restore.h"

namespace pgtrail {
namespace {

std::string DescribePosition(Position pos) {
  return "change " + std::to_string(pos.seq) + " of transaction at " + FormatLsn(pos.lsn);
}

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
  size_t columns = 0;
  const bool multiset = IsMultiset(rel);
  for (const pb::Column& c : rel.columns()) columns += multiset || c.key() ? 1 : 0;
  std::vector<std::string> texts;
  std::vector<bool> nulls;
  size_t used = 0;
  RETURN_IF_ERROR(keys::ParseRowKey(rowkey, columns, &texts, &nulls, &used));
  if (used != rowkey.size()) {
    return Status::Corruption("store: a row key of " + TableName(rel) + " holds more than its " +
                              std::to_string(columns) + " columns (written under another layout)");
  }
  out->mutable_kinds()->clear();
  out->mutable_values()->Clear();  // keeps the strings for reuse
  for (size_t i = 0; i < texts.size(); i++) {
    out->mutable_kinds()->push_back(nulls[i] ? 'n' : 't');
    out->add_values()->swap(texts[i]);
  }
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

bool SameRowLayout(const pb::Relation& a, const pb::Relation& b) {
  if (a.relid() != b.relid() || a.nspname() != b.nspname() || a.relname() != b.relname() ||
      a.replica_identity() != b.replica_identity() || a.columns_size() != b.columns_size()) {
    return false;
  }
  for (int i = 0; i < a.columns_size(); i++) {
    const pb::Column& x = a.columns(i);
    const pb::Column& y = b.columns(i);
    if (x.name() != y.name() || x.type_oid() != y.type_oid() || x.type_mod() != y.type_mod() ||
        x.key() != y.key()) {
      return false;
    }
  }
  return true;
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
    if (first < pos && pos <= last && (base == nullptr || !SameRowLayout(*base, rel))) {
      return false;
    }
  }
  return true;
}

Status ForEachFinalImage(Store* store, const pb::Relation& layout, const LayoutHistory& history,
                         std::vector<Position> positions,
                         const std::function<Status(const pb::Tuple&)>& emit) {
  std::sort(positions.begin(), positions.end());
  ChangeReader reader(store);
  // The layout check per change: the version its (relation_lsn, relation_seq)
  // names, compared once per version.
  const pb::Relation* checked = nullptr;
  bool checked_same = false;
  pb::Change change;
  for (size_t i = 0; i < positions.size(); i++) {
    const Position pos = positions[i];
    if (i > 0 && positions[i - 1] == pos) {
      return Status::Corruption("store: two rows of " + TableName(layout) + " end at " +
                                DescribePosition(pos));
    }
    bool found = false;
    RETURN_IF_ERROR(reader.Get(pos.lsn, pos.seq, &change, &found));
    if (!found) return Status::Corruption("store: " + DescribePosition(pos) + " is missing");
    if ((change.op() != pb::Change::INSERT && change.op() != pb::Change::UPDATE) ||
        change.relid() != layout.relid()) {
      return Status::Corruption("store: the row index of " + TableName(layout) + " points at " +
                                DescribePosition(pos) + ", which is not an INSERT or UPDATE of it");
    }
    const pb::Relation* written =
        history.At(Position{change.relation_lsn(), change.relation_seq()});
    if (written != checked || checked == nullptr) {
      checked = written;
      checked_same = written != nullptr && SameRowLayout(*written, layout);
    }
    if (!checked_same) {
      return Status::Corruption("store: " + DescribePosition(pos) + " of " + TableName(layout) +
                                " was written under the layout version at LSN " +
                                FormatLsn(change.relation_lsn()) + " seq " +
                                std::to_string(change.relation_seq()) +
                                ", not the one its rows are restored with");
    }
    RETURN_IF_ERROR(emit(change.new_tuple()));
  }
  return Status::OK();
}

}  // namespace pgtrail
