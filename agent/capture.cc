#include "agent/capture.h"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <chrono>
#include <cstring>

#include "agent/ddl_capture.h"
#include "agent/sort_runs.h"
#include "storage/coding.h"
#include "storage/pg_time.h"

namespace pgtrail {
namespace {

void ToTuple(const pgoutput::TupleData& wire, pb::Tuple* out) {
  out->Clear();
  std::string* kinds = out->mutable_kinds();
  kinds->reserve(wire.columns.size());
  for (const auto& col : wire.columns) {
    kinds->push_back(static_cast<char>(col.kind));
    out->add_values(col.data.data(), col.data.size());
  }
}

Status TupleWidthMismatch(const pb::Relation& rel, size_t columns) {
  return Status::Corruption("pgoutput: tuple of " + rel.nspname() + "." + rel.relname() +
                            " has " + std::to_string(columns) + " columns, its Relation message " +
                            std::to_string(rel.columns_size()));
}

// Protobuf's base-128 varints.
size_t VarintSize(uint64_t v) {
  size_t n = 1;
  for (; v >= 0x80; v >>= 7) n++;
  return n;
}
char* PutVarint(char* p, uint64_t v) {
  for (; v >= 0x80; v >>= 7) *p++ = static_cast<char>(v | 0x80);
  *p++ = static_cast<char>(v);
  return p;
}
// A field's key byte: (field number << 3) | wire type (0 varint, 2 bytes).
constexpr char Tag(int field, int wire_type) { return static_cast<char>(field << 3 | wire_type); }

bool HasValue(const pb::Tuple& t, int i) {
  return i < static_cast<int>(t.kinds().size()) && i < t.values_size() &&
         (t.kinds()[i] == 't' || t.kinds()[i] == 'b' || t.kinds()[i] == 'n');
}

}  // namespace

std::string MarkNameFromContent(std::string_view content) {
  // The content is {"name":"NAME",...} as written by pgtrail-agent mark;
  // names never need JSON escapes, so a plain scan is exact.
  const std::string_view key = "{\"name\":\"";
  if (content.substr(0, key.size()) != key) return "";
  const size_t end = content.find('"', key.size());
  if (end == std::string_view::npos) return "";
  return std::string(content.substr(key.size(), end - key.size()));
}

void AppendInsertToChunk(std::string* chunk, uint32_t relid, uint64_t relation_lsn,
                         uint32_t relation_seq, const pgoutput::TupleData& tuple) {
  // Field numbers and order as in pgtrail.proto (protobuf writes fields in
  // number order and leaves out zero scalars and empty bytes); a unit test
  // holds the result to SerializeToString's.
  const auto& cols = tuple.columns;
  size_t tuple_size = cols.empty() ? 0 : 1 + VarintSize(cols.size()) + cols.size();
  for (const auto& c : cols) tuple_size += 1 + VarintSize(c.data.size()) + c.data.size();
  const size_t size = 2 + (relid != 0 ? 1 + VarintSize(relid) : 0) +
                      (relation_lsn != 0 ? 1 + VarintSize(relation_lsn) : 0) + 1 +
                      VarintSize(tuple_size) + tuple_size +
                      (relation_seq != 0 ? 1 + VarintSize(relation_seq) : 0);
  char* p = AppendChunkEntry(chunk, size);
  *p++ = Tag(1, 0);  // op
  *p++ = static_cast<char>(pb::Change::INSERT);
  if (relid != 0) {
    *p++ = Tag(2, 0);
    p = PutVarint(p, relid);
  }
  if (relation_lsn != 0) {
    *p++ = Tag(3, 0);
    p = PutVarint(p, relation_lsn);
  }
  *p++ = Tag(6, 2);  // new_tuple
  p = PutVarint(p, tuple_size);
  if (!cols.empty()) {
    *p++ = Tag(1, 2);  // Tuple.kinds
    p = PutVarint(p, cols.size());
    for (const auto& c : cols) *p++ = static_cast<char>(c.kind);
  }
  for (const auto& c : cols) {
    *p++ = Tag(2, 2);  // Tuple.values
    p = PutVarint(p, c.data.size());
    if (!c.data.empty()) std::memcpy(p, c.data.data(), c.data.size());
    p += c.data.size();
  }
  if (relation_seq != 0) {
    *p++ = Tag(12, 0);
    PutVarint(p, relation_seq);
  }
}

Capture::Capture(Store* store) : store_(store) {}

Status Capture::Init() {
  ASSIGN_OR_RETURN(meta_, store_->ReadMeta());
  durable_meta_ = meta_;
  durable_lsn_ = meta_.resume_lsn();
  received_lsn_ = durable_lsn_;
  // The newest stored layout of each relation, to store only real changes.
  ASSIGN_OR_RETURN(auto rels, store_->RelationsAt(UINT64_MAX));
  for (auto& rel : rels) stored_layout_[rel.relid()] = std::move(rel);
  return Status::OK();
}

void Capture::ResetStream() {
  // Complete transactions stay in batch_ only if no partial transaction is
  // mixed in; a partial one would be resent, so start the batch over.
  if (txn_.has_value()) {
    batch_.Clear();
    rowidx_.clear();
    rowidx_entries_.clear();
    chunk_.clear();
    chunk_count_ = 0;
    stats_.txns_stored -= pending_txns_;  // they come again
    pending_txns_ = 0;
    // Back to the last batch written: durable, or unlogged and to become
    // durable with the next memtable flush. Counters in meta_ advanced by
    // the dropped transactions go back with it; transactions the server
    // resends from before that point are skipped (already written), the
    // others are written with the values they had.
    if (not_yet_durable_.empty()) {
      received_lsn_ = durable_lsn_;
      meta_ = durable_meta_;
    } else {
      received_lsn_ = not_yet_durable_.back().resume_lsn;
      meta_ = not_yet_durable_.back().meta;
    }
    auto rels = store_->RelationsAt(UINT64_MAX);
    if (rels.ok()) {
      stored_layout_.clear();
      for (auto& rel : rels.value()) stored_layout_[rel.relid()] = std::move(rel);
    }
  }
  txn_.reset();
  relcache_.clear();
}

Status Capture::OnMessage(const pgoutput::Message& msg) {
  using pgoutput::MessageType;
  switch (msg.type) {
    case MessageType::kBegin: return OnBegin(msg.begin);
    case MessageType::kCommit: return OnCommit(msg.commit);
    case MessageType::kOrigin:
      if (txn_) {
        txn_->origin = msg.origin.name;
        txn_->origin_lsn = msg.origin.commit_lsn;
      }
      return Status::OK();
    case MessageType::kRelation: return OnRelation(msg.relation);
    case MessageType::kType: return Status::OK();  // names come from the catalog
    case MessageType::kInsert: return OnInsert(msg.insert);
    case MessageType::kUpdate: return OnUpdate(msg.update);
    case MessageType::kDelete: return OnDelete(msg.del);
    case MessageType::kTruncate: return OnTruncate(msg.truncate);
    case MessageType::kMessage: return OnLogicalMessage(msg.message);
  }
  return Status::Corruption("pgoutput: unhandled message type");
}

Status Capture::OnBegin(const pgoutput::Begin& begin) {
  if (txn_) {
    return Status::Corruption("pgoutput: Begin of xid " + std::to_string(begin.xid) +
                              " inside transaction " + std::to_string(txn_->xid));
  }
  OpenTxn t;
  t.xid = begin.xid;
  t.commit_lsn = begin.final_lsn;
  t.commit_time_us = PgTimeToUnixUs(begin.commit_time);
  // Exactly once: everything that ends at or before the last received end
  // LSN is already stored (or pending); the server may send it again.
  t.skip = begin.final_lsn < received_lsn_;
  txn_ = t;
  return Status::OK();
}

Status Capture::OnCommit(const pgoutput::Commit& commit) {
  if (!txn_) return Status::Corruption("pgoutput: Commit outside a transaction");
  if (commit.commit_lsn != txn_->commit_lsn) {
    return Status::Corruption("pgoutput: Commit LSN " + FormatLsn(commit.commit_lsn) +
                              " does not match Begin's " + FormatLsn(txn_->commit_lsn));
  }
  if (txn_->skip) {
    stats_.txns_skipped++;
    txn_.reset();
    return Status::OK();
  }
  CloseChunk();
  pb::TxnHeader h;
  h.set_xid(txn_->xid);
  h.set_commit_lsn(commit.commit_lsn);
  h.set_end_lsn(commit.end_lsn);
  h.set_commit_time_us(PgTimeToUnixUs(commit.commit_time));
  h.set_origin(txn_->origin);
  h.set_origin_lsn(txn_->origin_lsn);
  h.set_change_count(txn_->next_seq);
  const int64_t max_time = std::max(meta_.max_commit_time_us(), h.commit_time_us());
  h.set_max_commit_time_us(max_time);
  h.set_ordinal(meta_.txn_count() + 1);
  for (pb::TxnTable& t : txn_->tables) h.add_tables()->Swap(&t);
  h.set_tables_listed(true);
  batch_.Put(store_->cf(Family::kTxn), keys::TxnKey(h.commit_lsn()), h.SerializeAsString());
  batch_.Put(store_->cf(Family::kTime), keys::TimeKey(max_time, h.commit_lsn()), "");

  meta_.set_max_commit_time_us(max_time);
  meta_.set_txn_count(h.ordinal());
  meta_.set_last_commit_lsn(h.commit_lsn());
  meta_.set_last_commit_time_us(h.commit_time_us());
  meta_.set_last_xid(h.xid());
  received_lsn_ = commit.end_lsn;
  pending_txns_++;
  stats_.txns_stored++;
  txn_.reset();
  return Status::OK();
}

Status Capture::OnRelation(const pgoutput::Relation& wire) {
  pb::Relation rel;
  rel.set_relid(wire.relid);
  rel.set_nspname(wire.nspname.empty() ? "pg_catalog" : wire.nspname);
  rel.set_relname(wire.relname);
  rel.set_replica_identity(static_cast<unsigned char>(wire.replica_identity));
  for (const auto& c : wire.columns) {
    pb::Column* col = rel.add_columns();
    col->set_name(c.name);
    col->set_type_oid(c.type_oid);
    col->set_type_mod(c.type_mod);
    col->set_key(c.is_key());
  }
  if (txn_ && !txn_->skip) {
    auto stored = stored_layout_.find(rel.relid());
    if (stored == stored_layout_.end() || !SameLayout(stored->second, rel)) {
      rel.set_lsn(txn_->commit_lsn);
      rel.set_seq(txn_->next_seq);
      batch_.Put(store_->cf(Family::kRelation),
                 keys::RelationKey(rel.relid(), rel.lsn(), rel.seq()), rel.SerializeAsString());
      stored_layout_[rel.relid()] = rel;
    } else {
      rel.set_lsn(stored->second.lsn());
      rel.set_seq(stored->second.seq());
    }
  } else {
    auto stored = stored_layout_.find(rel.relid());
    if (stored != stored_layout_.end()) {
      rel.set_lsn(stored->second.lsn());
      rel.set_seq(stored->second.seq());
    }
  }
  if (!RowIndexed(rel)) {
    WarnOnce(rel.relid(), "table " + rel.nspname() + "." + rel.relname() +
                              " has no replica identity: its UPDATEs and DELETEs cannot be "
                              "captured; HINT: ALTER TABLE ... REPLICA IDENTITY FULL, or add a "
                              "primary key");
  }
  relcache_[rel.relid()] = std::move(rel);
  return Status::OK();
}

Result<const pb::Relation*> Capture::RelationFor(uint32_t relid, const char* what) {
  auto it = relcache_.find(relid);
  if (it == relcache_.end()) {
    return Status::Corruption(std::string("pgoutput ") + what + " for relation OID " +
                              std::to_string(relid) + " without a preceding Relation message");
  }
  if (!txn_) return Status::Corruption(std::string("pgoutput ") + what + " outside a transaction");
  return &it->second;
}

Result<std::optional<pb::Tuple>> Capture::PreviousImage(uint32_t relid, const std::string& rowkey,
                                                        uint32_t seq) {
  // The row's last image may still be in batch_: write it ahead, unsynced,
  // so the store answers for everything received. This is rare (an UPDATE
  // that leaves a TOASTed value out) and costs one write call; keeping a
  // copy of every row image instead cost ~10% of the capture's time.
  // Written entries are safe without a sync: the resume LSN is not among
  // them, and a transaction the server resends is rewritten identically.
  if (batch_.Count() > 0 || !rowidx_entries_.empty()) {
    RETURN_IF_ERROR(WriteBatch(/*sync=*/false));
    if (!unlogged_mode_) unsynced_ = true;
  }
  return store_->PreviousImage(
      relid, rowkey, txn_->commit_lsn, seq,
      [this](uint64_t lsn, uint32_t at, pb::Change* out, bool* found) {
        return PendingChange(lsn, at, out, found);
      });
}

Status Capture::PendingChange(uint64_t lsn, uint32_t seq, pb::Change* out, bool* found) {
  *found = false;
  if (!txn_ || lsn != txn_->commit_lsn || chunk_count_ == 0 || seq < chunk_first_seq_ ||
      seq - chunk_first_seq_ >= chunk_count_) {
    return Status::OK();
  }
  std::vector<std::string_view> parts;
  RETURN_IF_ERROR(SplitChunk(chunk_, &parts));
  RETURN_IF_ERROR(ParseStored(parts[seq - chunk_first_seq_], "change", out));
  *found = true;
  return Status::OK();
}

Status Capture::ConvertNewTuple(const pb::Relation& rel, const pgoutput::TupleData& wire,
                                pb::Tuple* out) {
  ToTuple(wire, out);
  if (out->kinds().size() != static_cast<size_t>(rel.columns_size())) {
    return TupleWidthMismatch(rel, out->kinds().size());
  }
  return Status::OK();
}

Status Capture::ResolveUnchanged(const pb::Relation& rel, const pb::Tuple* old_tuple,
                                 char old_kind, const std::string* rowkey, pb::Tuple* out) {
  if (out->kinds().find('u') == std::string::npos) return Status::OK();

  std::optional<pb::Tuple> previous;
  bool looked_up = false;
  std::string& kinds = *out->mutable_kinds();
  for (int i = 0; i < rel.columns_size(); i++) {
    if (kinds[i] != 'u') continue;
    // 1. The old tuple of this very change: a full old row ('O'), or the key.
    if (old_tuple != nullptr && HasValue(*old_tuple, i) &&
        (old_kind == 'O' || rel.columns(i).key())) {
      kinds[i] = old_tuple->kinds()[i];
      *out->mutable_values(i) = old_tuple->values(i);
      continue;
    }
    // 2. The row's last stored image (earlier change or snapshot).
    if (!looked_up && rowkey != nullptr) {
      ASSIGN_OR_RETURN(previous, PreviousImage(rel.relid(), *rowkey, txn_->next_seq));
      looked_up = true;
    }
    if (previous && HasValue(*previous, i)) {
      kinds[i] = previous->kinds()[i];
      *out->mutable_values(i) = previous->values(i);
      continue;
    }
    // 3. Impossible: recorded as unknown and reported, never as NULL.
    kinds[i] = '?';
    out->mutable_values(i)->clear();
    stats_.unresolved_toast++;
    spdlog::warn(
        "unchanged TOAST value of {}.{} column \"{}\" in transaction {} could not be resolved "
        "(no earlier image of the row); stored as unknown",
        rel.nspname(), rel.relname(), rel.columns(i).name(), txn_->xid);
  }
  return Status::OK();
}

void Capture::PutRowIndex(const pb::Relation& rel, const std::string& rowkey, uint32_t seq,
                          keys::RowOp op) {
  const uint32_t relid = rel.relid();
  std::vector<pb::TxnTable>& tables = txn_->tables;
  if (txn_->last_table >= tables.size() || tables[txn_->last_table].relid() != relid) {
    txn_->last_table = 0;
    while (txn_->last_table < tables.size() && tables[txn_->last_table].relid() != relid) {
      txn_->last_table++;
    }
    if (txn_->last_table == tables.size()) {
      tables.emplace_back();
      tables.back().set_relid(relid);
      tables.back().set_first_seq(seq);
    }
  }
  pb::TxnTable& table = tables[txn_->last_table];
  table.set_last_seq(seq);
  table.set_entries(table.entries() + 1);
  // Its rows come from the changes (the header lists where, with entries
  // counting them as if indexed).
  if (!RowIndexed(rel)) return;
  const size_t offset = rowidx_.size();
  keys::AppendRowIdxKey(&rowidx_, relid, rowkey, txn_->commit_lsn, seq);
  rowidx_.push_back(static_cast<char>(op));
  rowidx_entries_.emplace_back(static_cast<uint32_t>(offset),
                               static_cast<uint32_t>(rowidx_.size() - offset));
}

void Capture::SortRowIndexIntoBatch() {
  if (rowidx_entries_.empty()) return;
  const char* base = rowidx_.data();
  auto key = [base](const std::pair<uint32_t, uint32_t>& e) {
    return std::string_view(base + e.first, e.second - 1);
  };
  // Keys are unique (they end in the change's position).
  SortRuns(&rowidx_entries_, [&](const auto& a, const auto& b) { return key(a) < key(b); },
           &rowidx_runs_);
  for (const auto& e : rowidx_entries_) {
    batch_.Put(store_->cf(Family::kRowIdx), rocksdb::Slice(base + e.first, e.second - 1),
               rocksdb::Slice(base + e.first + e.second - 1, 1));
  }
  rowidx_.clear();
  rowidx_entries_.clear();
}

Status Capture::WriteBatch(bool sync, uint64_t* last_seqno) {
  SortRowIndexIntoBatch();
  uint64_t last = 0;
  if (unlogged_mode_) {
    RETURN_IF_ERROR(store_->WriteUnlogged(&batch_, &last));
  } else {
    RETURN_IF_ERROR(store_->Write(&batch_, sync));
  }
  if (last_seqno != nullptr) *last_seqno = last;
  batch_.Clear();
  return Status::OK();
}

Status Capture::PutChange(uint32_t seq, const pb::Change& change) {
  StartChunkEntry(seq);
  AppendToChunk(&chunk_, change);
  return EndChunkEntry();
}

Status Capture::PutWireInsert(const pb::Relation& rel, const pgoutput::TupleData& tuple) {
  const auto& cols = tuple.columns;
  if (cols.size() != static_cast<size_t>(rel.columns_size())) {
    return TupleWidthMismatch(rel, cols.size());
  }
  const uint32_t seq = txn_->next_seq++;
  std::string& rowkey = new_rowkey_;
  rowkey.clear();
  if (RowIndexed(rel)) {
    RETURN_IF_ERROR(AppendRowKeyOf(
        &rowkey, rel, static_cast<int>(cols.size()),
        [&cols](int i) { return static_cast<char>(cols[i].kind); },
        [&cols](int i) { return cols[i].data; }));
  }
  PutRowIndex(rel, rowkey, seq,
              IsMultiset(rel) ? keys::RowOp::kAddOne : keys::RowOp::kUpsert);
  StartChunkEntry(seq);
  AppendInsertToChunk(&chunk_, rel.relid(), rel.lsn(), rel.seq(), tuple);
  return EndChunkEntry();
}

Status Capture::EndChunkEntry() {
  chunk_count_++;
  stats_.changes_stored++;
  if (chunk_count_ < kChunkChanges && chunk_.size() < kChunkBytes) return Status::OK();
  CloseChunk();
  return MaybeSpill();
}

void Capture::CloseChunk() {
  if (chunk_count_ == 0) return;
  batch_.Put(store_->cf(Family::kChange), keys::ChangeKey(txn_->commit_lsn, chunk_first_seq_),
             chunk_);
  chunk_.clear();
  chunk_count_ = 0;
}

Status Capture::MaybeSpill() {
  if (pending_bytes() < kSpillBytes) return Status::OK();
  // Complete transactions become durable with their resume LSN; the open
  // transaction's entries so far ride along, invisible without a header.
  // A transaction that committed over a second before the source's clock
  // (set_source_clock) is part of a backlog:
  // its spills go unlogged, like the groups of one (see Flush).
  const bool behind = txn_ && source_now_us_ - txn_->commit_time_us > kCatchUpAgeUs;
  return Flush(unlogged_mode_ || behind);
}

Status Capture::OnInsert(const pgoutput::Insert& ins) {
  ASSIGN_OR_RETURN(const pb::Relation* rel, RelationFor(ins.relid, "Insert"));
  if (txn_->skip) return Status::OK();
  // pgoutput sends every value of an inserted row, so this is every INSERT;
  // an unchanged TOAST value ('u') takes the general path, which resolves it.
  if (std::none_of(ins.new_tuple.columns.begin(), ins.new_tuple.columns.end(),
                   [](const pgoutput::TupleColumn& c) {
                     return c.kind == pgoutput::TupleKind::kUnchangedToast;
                   })) {
    return PutWireInsert(*rel, ins.new_tuple);
  }
  const uint32_t seq = txn_->next_seq++;
  pb::Change& change = Scratch();
  change.set_op(pb::Change::INSERT);
  change.set_relid(rel->relid());
  change.set_relation_lsn(rel->lsn());
  change.set_relation_seq(rel->seq());
  RETURN_IF_ERROR(ConvertNewTuple(*rel, ins.new_tuple, NewTuple(&change)));
  RETURN_IF_ERROR(ResolveUnchanged(*rel, nullptr, 0, nullptr, change.mutable_new_tuple()));
  std::string& rowkey = new_rowkey_;
  rowkey.clear();
  RETURN_IF_ERROR(AppendTupleRowKey(&rowkey, *rel, change.new_tuple()));
  PutRowIndex(*rel, rowkey, seq,
              IsMultiset(*rel) ? keys::RowOp::kAddOne : keys::RowOp::kUpsert);
  return PutChange(seq, change);
}

Status Capture::OnUpdate(const pgoutput::Update& upd) {
  ASSIGN_OR_RETURN(const pb::Relation* rel, RelationFor(upd.relid, "Update"));
  if (txn_->skip) return Status::OK();
  const uint32_t seq = txn_->next_seq++;
  pb::Change& change = Scratch();
  change.set_op(pb::Change::UPDATE);
  change.set_relid(rel->relid());
  change.set_relation_lsn(rel->lsn());
  change.set_relation_seq(rel->seq());
  const bool multiset = IsMultiset(*rel);
  const pb::Tuple* old_tuple = nullptr;
  if (upd.old_kind != 0) {
    ToTuple(upd.old_tuple, OldTuple(&change));
    change.set_old_kind(static_cast<unsigned char>(upd.old_kind));
    old_tuple = &change.old_tuple();
  }

  // The row's identity before the update: the old key if sent, else the new
  // tuple's key columns (the key did not change).
  RETURN_IF_ERROR(ConvertNewTuple(*rel, upd.new_tuple, NewTuple(&change)));
  std::string& old_rowkey = old_rowkey_;
  old_rowkey.clear();
  bool have_old_rowkey = false;
  if (old_tuple != nullptr && (!multiset || upd.old_kind == 'O')) {
    RETURN_IF_ERROR(AppendTupleRowKey(&old_rowkey, *rel, *old_tuple));
    have_old_rowkey = true;
  } else if (!multiset) {
    // Key columns of the new tuple are never 'u' without an old key tuple,
    // so its key is taken before the 'u' columns are resolved.
    RETURN_IF_ERROR(AppendTupleRowKey(&old_rowkey, *rel, change.new_tuple()));
    have_old_rowkey = true;
  }

  RETURN_IF_ERROR(ResolveUnchanged(*rel, old_tuple, upd.old_kind,
                                   have_old_rowkey ? &old_rowkey : nullptr,
                                   change.mutable_new_tuple()));
  std::string& new_rowkey = new_rowkey_;
  new_rowkey.clear();
  RETURN_IF_ERROR(AppendTupleRowKey(&new_rowkey, *rel, change.new_tuple()));

  if (multiset) {
    if (!have_old_rowkey) {
      WarnOnce(rel->relid(), "UPDATE of " + rel->nspname() + "." + rel->relname() +
                                 " arrived without the old row (replica identity is not FULL); "
                                 "its history is incomplete");
      PutRowIndex(*rel, new_rowkey, seq, keys::RowOp::kAddOne);
    } else if (old_rowkey != new_rowkey) {
      PutRowIndex(*rel, old_rowkey, seq, keys::RowOp::kRemoveOne);
      PutRowIndex(*rel, new_rowkey, seq, keys::RowOp::kAddOne);
    }
    // Same row before and after: the multiset does not change.
  } else {
    if (old_rowkey != new_rowkey) {
      PutRowIndex(*rel, old_rowkey, seq, keys::RowOp::kDelete);
    }
    PutRowIndex(*rel, new_rowkey, seq, keys::RowOp::kUpsert);
  }
  return PutChange(seq, change);
}

Status Capture::OnDelete(const pgoutput::Delete& del) {
  ASSIGN_OR_RETURN(const pb::Relation* rel, RelationFor(del.relid, "Delete"));
  if (txn_->skip) return Status::OK();
  const uint32_t seq = txn_->next_seq++;
  pb::Change& change = Scratch();
  change.set_op(pb::Change::DELETE);
  change.set_relid(rel->relid());
  change.set_relation_lsn(rel->lsn());
  change.set_relation_seq(rel->seq());
  ToTuple(del.old_tuple, OldTuple(&change));
  change.set_old_kind(static_cast<unsigned char>(del.old_kind));
  const bool multiset = IsMultiset(*rel);
  if (multiset && del.old_kind != 'O') {
    WarnOnce(rel->relid(), "DELETE of " + rel->nspname() + "." + rel->relname() +
                               " arrived without the old row; its history is incomplete");
  } else {
    std::string& rowkey = old_rowkey_;
    rowkey.clear();
    RETURN_IF_ERROR(AppendTupleRowKey(&rowkey, *rel, change.old_tuple()));
    PutRowIndex(*rel, rowkey, seq,
                multiset ? keys::RowOp::kRemoveOne : keys::RowOp::kDelete);
  }
  return PutChange(seq, change);
}

Status Capture::OnTruncate(const pgoutput::Truncate& trunc) {
  if (!txn_) return Status::Corruption("pgoutput Truncate outside a transaction");
  if (txn_->skip) return Status::OK();
  const uint32_t seq = txn_->next_seq++;
  pb::Change change;
  change.set_op(pb::Change::TRUNCATE);
  change.set_truncate_flags(trunc.flags);
  for (uint32_t relid : trunc.relids) {
    change.add_truncate_relids(relid);
    batch_.Put(store_->cf(Family::kTruncate), keys::TruncateKey(relid, txn_->commit_lsn, seq),
               std::string(1, static_cast<char>(trunc.flags)));
  }
  return PutChange(seq, change);
}

Status Capture::OnLogicalMessage(const pgoutput::LogicalMessage& msg) {
  if (!msg.transactional()) {
    spdlog::debug("non-transactional logical message with prefix \"{}\" ignored", msg.prefix);
    return Status::OK();
  }
  if (!txn_) return Status::Corruption("pgoutput: transactional Message outside a transaction");
  if (txn_->skip) return Status::OK();
  const uint32_t seq = txn_->next_seq++;
  pb::Change change;
  change.set_op(pb::Change::MESSAGE);
  change.set_prefix(msg.prefix);
  change.set_content(msg.content);
  change.set_message_lsn(msg.lsn);
  if (msg.prefix == kDdlPrefix) {
    // Schema changes, indexed so restore finds its epochs without a scan.
    batch_.Put(store_->cf(Family::kDdl), keys::ChangeKey(txn_->commit_lsn, seq), msg.content);
  }
  if (msg.prefix == kMarkPrefix) {
    // A named restore point (pgtrail-agent mark). Anyone may emit a logical
    // message, so the content is checked before it is indexed.
    std::string name = MarkNameFromContent(msg.content);
    if (keys::IsValidMarkName(name)) {
      batch_.Put(store_->cf(Family::kMark), keys::MarkKey(name, txn_->commit_lsn, seq),
                 msg.content);
    } else {
      spdlog::warn("ignoring a {} message without a valid name in transaction {}", kMarkPrefix,
                   txn_->xid);
    }
  }
  return PutChange(seq, change);
}

Status Capture::Flush(bool unlogged) {
  if (!unlogged && unlogged_mode_) {
    // The end of a catch-up: the last group goes unlogged too, and one
    // memtable flush makes all of it durable. Writing it through the
    // write-ahead log after the flush cost a sync of a fresh log file and
    // its directory, ~45 ms at the end of the lab's drain.
    RETURN_IF_ERROR(Flush(/*unlogged=*/true));
    return LeaveUnlogged();
  }
  if (batch_.Count() == 0 && rowidx_entries_.empty() && !unsynced_) return Status::OK();
  pb::StoreMeta meta = meta_;
  meta.set_resume_lsn(received_lsn_);
  const uint32_t meta_index = batch_.Count();
  batch_.Put(store_->cf(Family::kMeta), keys::kMetaKey, meta.SerializeAsString());
  if (unlogged) {
    if (!unlogged_mode_) {
      spdlog::info("catching up: batches go to the store unlogged and become durable as it "
                   "flushes them");
    }
    unlogged_mode_ = true;
    SortRowIndexIntoBatch();
    const uint32_t count = batch_.Count();
    uint64_t last = 0;
    RETURN_IF_ERROR(WriteBatch(/*sync=*/false, &last));
    not_yet_durable_.push_back({last - count + 1 + meta_index, received_lsn_, meta});
    meta_ = meta;
    pending_txns_ = 0;
    stats_.flushes++;
    PollDurable();
    return Status::OK();
  }
  // A synced write syncs the write-ahead log up to it, so earlier unsynced
  // writes become durable with it.
  RETURN_IF_ERROR(WriteBatch(/*sync=*/true));
  meta_ = meta;
  durable_meta_ = meta;
  durable_lsn_ = received_lsn_;
  unsynced_ = false;
  pending_txns_ = 0;
  stats_.flushes++;
  return Status::OK();
}

void Capture::PollDurable() {
  if (not_yet_durable_.empty()) return;
  const uint64_t flushed = store_->FlushedMetaSeqno();
  while (!not_yet_durable_.empty() && not_yet_durable_.front().meta_seqno <= flushed) {
    durable_lsn_ = not_yet_durable_.front().resume_lsn;
    durable_meta_ = std::move(not_yet_durable_.front().meta);
    not_yet_durable_.pop_front();
  }
}

Status Capture::LeaveUnlogged() {
  // Everything written so far goes to table files before the next logged
  // write, which a crash could otherwise keep without the unlogged ones
  // before it.
  const auto start = std::chrono::steady_clock::now();
  RETURN_IF_ERROR(store_->FlushMemtables());
  const std::chrono::duration<double> took = std::chrono::steady_clock::now() - start;
  spdlog::info("caught up: batches go to the store through its write-ahead log again "
               "(memtables flushed in {:.2f} s)",
               took.count());
  if (!not_yet_durable_.empty()) {
    durable_lsn_ = not_yet_durable_.back().resume_lsn;
    durable_meta_ = std::move(not_yet_durable_.back().meta);
    not_yet_durable_.clear();
  }
  unlogged_mode_ = false;
  unsynced_ = false;  // the flush covered the unsynced writes, too
  return Status::OK();
}

void Capture::WarnOnce(uint32_t relid, const std::string& message) {
  if (warned_.insert({relid, message.substr(0, 16)}).second) spdlog::warn("{}", message);
}

}  // namespace pgtrail
