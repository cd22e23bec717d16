#include "tools/restore.h"

#include <nlohmann/json.hpp>
#include <rocksdb/db.h>

#include <algorithm>
#include <cinttypes>
#include <iostream>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <set>
#include <unistd.h>
#include <cstdio>
#include <sstream>

#include "storage/cli.h"
#include "storage/coding.h"
#include "storage/copy_text.h"
#include "tools/copy_in.h"
#include "tools/load_jobs.h"
#include "tools/restore_epochs.h"
#include "tools/row_images.h"
#include "tools/sql_statements.h"
#include "storage/dump_sql.h"
#include "storage/keys.h"
#include "storage/pg.h"
#include "storage/pg_time.h"
#include "tools/changelog.h"

namespace pgtrail {
namespace {


bool MatchesTable(const std::string& wanted, const pb::Relation& rel) {
  if (wanted == TableName(rel)) return true;
  return wanted.find('.') == std::string::npos && wanted == rel.relname();
}

// A cursor over one table's snapshot rows, grouped by rowkey.
class SnapshotCursor {
 public:
  SnapshotCursor(Store* store, uint64_t snapshot_id, const pb::Relation& rel, bool skip)
      : prefix_(keys::SnapRowPrefix(snapshot_id, rel.relid())), multiset_(IsMultiset(rel)) {
    it_.reset(store->db()->NewIterator(rocksdb::ReadOptions(), store->cf(Family::kSnapRow)));
    if (skip) {
      done_ = true;
      return;
    }
    it_->Seek(prefix_);
    Settle();
  }
  bool done() const { return done_; }
  std::string_view rowkey() const { return rowkey_; }
  const rocksdb::Slice value() const { return it_->value(); }
  void Next() {
    it_->Next();
    Settle();
  }
  Status status() const {
    return it_->status().ok() ? Status::OK() : Status::IOError(it_->status().ToString());
  }

 private:
  void Settle() {
    if (!it_->Valid() || !it_->key().starts_with(prefix_)) {
      done_ = true;
      return;
    }
    std::string_view key = ToView(it_->key());
    key.remove_prefix(prefix_.size());
    if (multiset_ && key.size() >= 8) key.remove_suffix(8);
    rowkey_ = key;
  }

  std::unique_ptr<rocksdb::Iterator> it_;
  std::string prefix_;
  bool multiset_;
  bool done_ = false;
  std::string_view rowkey_;
};

}  // namespace

std::string TableName(const pb::Relation& rel) { return rel.nspname() + "." + rel.relname(); }

Status ValidateRestoreTarget(const RestoreOptions& o) {
  const int given = !o.to_time.empty() + !o.to_lsn.empty() + !o.to_xid.empty() + !o.to_mark.empty();
  if (given != 1) {
    return Status::InvalidArgument(
        std::string(given == 0 ? "a restore target is required"
                               : "give only one restore target") +
        ": --to TIME, --to-lsn LSN, --to-xid XID or --to-mark NAME");
  }
  if (!o.to_time.empty()) RETURN_IF_ERROR(ParseTimestamp(o.to_time).status());
  if (!o.to_lsn.empty()) {
    uint64_t lsn;
    RETURN_IF_ERROR(ParseLsn(o.to_lsn, &lsn));
  }
  if (!o.to_xid.empty() && o.to_xid.find_first_not_of("0123456789") != std::string::npos) {
    return Status::InvalidArgument("invalid --to-xid \"" + o.to_xid +
                                   "\": expected a transaction id such as 745");
  }
  if (!o.to_mark.empty() && !keys::IsValidMarkName(o.to_mark)) {
    return Status::InvalidArgument("invalid --to-mark \"" + o.to_mark +
                                   "\": mark names are 1-63 characters of A-Z a-z 0-9 _ . : -");
  }
  return Status::OK();
}

namespace {

std::string DescribeTxn(const pb::TxnHeader& h) {
  return "xid " + std::to_string(h.xid()) + ", committed " +
         FormatTimestampUtc(h.commit_time_us()) + ", LSN " + FormatLsn(h.commit_lsn());
}

// Resolves the restore target to the last transaction included.
Status ResolveTarget(Store* store, const RestoreOptions& options,
                     const std::vector<pb::Snapshot>& snapshots, RestorePlan* plan,
                     std::optional<pb::TxnHeader>* last_txn) {
  const pb::StoreMeta& meta = plan->meta;
  const int64_t first = snapshots.front().taken_at_us();
  const int64_t last = std::max(meta.max_commit_time_us(), snapshots.back().taken_at_us());
  const uint64_t first_lsn = snapshots.front().consistent_lsn();
  const std::string range = "the store covers " + FormatTimestampUtc(first) + " to " +
                            FormatTimestampUtc(last) + " (UTC), LSN " + FormatLsn(first_lsn) +
                            " to " + FormatLsn(meta.resume_lsn());
  if (!options.to_time.empty()) {
    ASSIGN_OR_RETURN(plan->target_time_us, ParseTimestamp(options.to_time));
    const int64_t t = plan->target_time_us;
    if (t < first) {
      return Status::InvalidArgument("time " + FormatTimestampUtc(t) +
                                     " is before the first base snapshot: " + range);
    }
    if (t > last) {
      return Status::InvalidArgument("time " + FormatTimestampUtc(t) +
                                     " is after the last captured commit: " + range);
    }
    plan->restore_point = FormatTimestampUtc(t) + " (UTC)" + (options.exclusive ? ", exclusive" : "");
    // Replay in commit-LSN order and stop before the first transaction whose
    // commit time is later than the target (PostgreSQL's recovery_target_time);
    // exclusive also leaves out commits exactly at it.
    ASSIGN_OR_RETURN(auto stop, store->FirstCommitLaterThan(options.exclusive ? t - 1 : t));
    if (stop) {
      ASSIGN_OR_RETURN(*last_txn, store->LastTxnBefore(*stop, /*inclusive=*/false));
    } else {
      ASSIGN_OR_RETURN(*last_txn, store->LastTxnBefore(meta.last_commit_lsn(), true));
    }
    return Status::OK();
  }
  if (!options.to_lsn.empty()) {
    uint64_t lsn;
    RETURN_IF_ERROR(ParseLsn(options.to_lsn, &lsn));
    if (lsn < first_lsn) {
      return Status::InvalidArgument("LSN " + FormatLsn(lsn) +
                                     " is before the first base snapshot: " + range);
    }
    if (lsn > meta.resume_lsn()) {
      return Status::InvalidArgument("LSN " + FormatLsn(lsn) +
                                     " is after the last captured commit: " + range);
    }
    plan->restore_point = "LSN " + FormatLsn(lsn) + (options.exclusive ? ", exclusive" : ", inclusive");
    ASSIGN_OR_RETURN(*last_txn, store->LastTxnBefore(lsn, !options.exclusive));
    return Status::OK();
  }
  std::optional<pb::TxnHeader> target;
  if (!options.to_xid.empty()) {
    const uint64_t xid = std::stoull(options.to_xid);
    RETURN_IF_ERROR(store->ForEachTxn(first_lsn, meta.last_commit_lsn(),
                                      [&](const pb::TxnHeader& h) {
                                        if (h.xid() == xid) target = h;  // the latest wins
                                        return true;
                                      }));
    if (!target) {
      return Status::InvalidArgument("no transaction with xid " + options.to_xid +
                                     " in the store: " + range +
                                     "\nHINT: changelog grep shows the xids");
    }
    plan->restore_point = "xid " + options.to_xid + (options.exclusive ? ", exclusive" : ", inclusive");
  } else {
    ASSIGN_OR_RETURN(auto marks, store->ListMarks());
    std::string known;
    for (const auto& m : marks) {
      if (m.name == options.to_mark) target = m.txn;
      known += (known.empty() ? "" : ", ") + m.name;
    }
    if (!target) {
      return Status::InvalidArgument("no mark \"" + options.to_mark + "\" in the store; marks: " +
                                     (known.empty() ? "none" : known));
    }
    plan->restore_point =
        "mark \"" + options.to_mark + "\"" + (options.exclusive ? ", exclusive" : "");
  }
  if (options.exclusive) {
    ASSIGN_OR_RETURN(*last_txn, store->LastTxnBefore(target->commit_lsn(), false));
  } else {
    *last_txn = target;
  }
  return Status::OK();
}

}  // namespace

std::optional<std::string> JsonStringField(const std::string& json, const char* key) {
  return StringField(nlohmann::json::parse(json, nullptr, /*allow_exceptions=*/false), key);
}

std::optional<std::string> StringField(const nlohmann::json& j, const char* key) {
  if (!j.is_object()) return std::nullopt;
  auto it = j.find(key);
  if (it == j.end() || !it->is_string()) return std::nullopt;
  return it->get<std::string>();
}

bool ParseSchemaChange(const std::string& content, SchemaChange* out) {
  const nlohmann::json j = nlohmann::json::parse(content, nullptr, /*allow_exceptions=*/false);
  const auto event = StringField(j, "event");
  const auto tag = StringField(j, "tag");
  const auto query = StringField(j, "query");
  if (!event || !tag || !query) return false;
  if (*event != "ddl_command_end") return false;  // sql_drop: a notice of the same statement
  out->tag = *tag;
  out->query = *query;
  out->search_path = StringField(j, "search_path").value_or("");
  // Replay only the schema statements of a statement string; a string with
  // none (a DDL-running function, a DO block) is replayed whole.
  out->schema_statements.clear();
  std::string replay;
  for (const std::string& stmt : SplitSqlStatements(out->query)) {
    if (!IsSchemaStatement(stmt)) continue;
    out->schema_statements.push_back(stmt);
    replay += stmt + ";\n";
  }
  out->replay_sql = replay.empty() ? out->query : replay;
  out->filled_tables.clear();
  auto objects = j.find("objects");
  if ((out->tag == "CREATE TABLE AS" || out->tag == "SELECT INTO") && objects != j.end() &&
      objects->is_array()) {
    for (const auto& o : *objects) {
      const auto type = StringField(o, "type");
      const auto identity = StringField(o, "identity");
      if (type && *type == "table" && identity) out->filled_tables.push_back(*identity);
    }
  }
  // pgtrail's own objects, and what a restore leaves out on purpose (roles
  // and privileges, publications and subscriptions of the source).
  static const char* const kSkipped[] = {
      "GRANT", "REVOKE", "CREATE PUBLICATION", "ALTER PUBLICATION", "DROP PUBLICATION",
      "CREATE SUBSCRIPTION", "ALTER SUBSCRIPTION", "DROP SUBSCRIPTION", "ALTER DEFAULT PRIVILEGES",
  };
  for (const char* skipped : kSkipped) {
    if (out->tag == skipped) return false;
  }
  auto schemas = j.find("schemas");
  if (schemas != j.end() && schemas->is_array() && !schemas->empty()) {
    bool only_ours = true;
    for (const auto& s : *schemas) only_ours = only_ours && s.is_string() && s == "pgtrail";
    if (only_ours) return false;
  }
  return true;
}

namespace {

// The schema changes after the snapshot up to the last transaction included.
// A statement string with several DDL commands fires the trigger once per
// command with the same text; it is replayed once.
Status CollectSchemaChanges(Store* store, RestorePlan* plan) {
  if (!plan->last_txn) return Status::OK();
  std::unique_ptr<rocksdb::Iterator> it(
      store->db()->NewIterator(rocksdb::ReadOptions(), store->cf(Family::kDdl)));
  std::map<std::pair<uint64_t, std::string>, int> occurrences;
  for (it->Seek(keys::ChangeKey(plan->snapshot.consistent_lsn(), 0)); it->Valid(); it->Next()) {
    SchemaChange change;
    RETURN_IF_ERROR(keys::ParseChangeKey(ToView(it->key()), &change.lsn, &change.seq));
    if (change.lsn > plan->last_txn->commit_lsn()) break;
    const std::string content = it->value().ToString();
    // Each command of a statement string reports the whole string, once per
    // command in order: the k-th report replays the string's k-th schema
    // statement (a string without any is replayed whole at the first).
    int occurrence = 0;
    {
      const nlohmann::json j = nlohmann::json::parse(content, nullptr, false);
      const auto event = StringField(j, "event");
      const auto query = StringField(j, "query");
      if (!event || *event != "ddl_command_end" || !query) continue;
      const auto key = std::make_pair(change.lsn, *query);
      occurrence = occurrences[key]++;
    }
    if (!ParseSchemaChange(content, &change)) continue;
    if (change.schema_statements.empty()) {
      if (occurrence > 0) change.replay_sql.clear();
    } else if (occurrence < static_cast<int>(change.schema_statements.size())) {
      change.replay_sql = change.schema_statements[occurrence];
    } else {
      change.replay_sql.clear();
    }
    ASSIGN_OR_RETURN(auto txn, store->GetTxn(change.lsn));
    if (!txn) continue;  // an unfinished transaction's entry
    change.xid = txn->xid();
    change.commit_time_us = txn->commit_time_us();
    plan->ddl.push_back(std::move(change));
  }
  return it->status().ok() ? Status::OK() : Status::IOError(it->status().ToString());
}

}  // namespace

Result<RestorePlan> PlanRestore(Store* store, const RestoreOptions& options) {
  RestorePlan plan;
  RETURN_IF_ERROR(ValidateRestoreTarget(options));
  ASSIGN_OR_RETURN(plan.meta, store->ReadMeta());
  ASSIGN_OR_RETURN(auto snapshots, store->ListSnapshots());
  if (snapshots.empty()) {
    return Status::FailedPrecondition("the store at " + store->path() +
                                      " has no complete base snapshot yet"
                                      "\nHINT: wait for pgtrail-agent to finish its first start");
  }
  std::optional<pb::TxnHeader> last_txn;
  RETURN_IF_ERROR(ResolveTarget(store, options, snapshots, &plan, &last_txn));
  // The newest snapshot that the restore point does not precede.
  plan.snapshot = snapshots.front();
  for (const auto& s : snapshots) {
    const bool usable = !options.to_time.empty()
                            ? s.taken_at_us() <= plan.target_time_us
                            : (last_txn && s.consistent_lsn() <= last_txn->end_lsn());
    if (usable) plan.snapshot = s;
  }
  if (last_txn && last_txn->commit_lsn() >= plan.snapshot.consistent_lsn()) {
    plan.last_txn = last_txn;
    // Transactions after the snapshot: ordinals are consecutive.
    uint64_t first_ordinal = 0;
    RETURN_IF_ERROR(store->ForEachTxn(plan.snapshot.consistent_lsn(), UINT64_MAX,
                                      [&](const pb::TxnHeader& h) {
                                        first_ordinal = h.ordinal();
                                        return false;
                                      }));
    plan.txns_applied = last_txn->ordinal() - first_ordinal + 1;
  }
  RETURN_IF_ERROR(CollectSchemaChanges(store, &plan));
  if (!plan.ddl.empty()) {
    plan.epoch0_end_lsn = plan.ddl.front().lsn;
    plan.epoch0_end_seq = plan.ddl.front().seq;
  } else if (plan.last_txn) {
    plan.epoch0_end_lsn = plan.last_txn->commit_lsn();
    plan.epoch0_end_seq = UINT32_MAX;
  } else {
    plan.epoch0_end_lsn = plan.snapshot.consistent_lsn();
    plan.epoch0_end_seq = 0;
  }
  // --tables names a table by its name at the restore point or in the base
  // snapshot (a table renamed or created since is found by either).
  std::vector<bool> used(options.tables.size(), false);
  std::set<std::string> known;
  auto consider = [&](const pb::Relation& rel) {
    known.insert(TableName(rel));
    for (size_t i = 0; i < options.tables.size(); i++) {
      if (MatchesTable(options.tables[i], rel)) {
        used[i] = true;
        plan.chosen_relids.insert(rel.relid());
      }
    }
  };
  std::vector<pb::Relation> snapshot_layouts;
  for (const pb::SnapshotTable& t : plan.snapshot.tables()) {
    ASSIGN_OR_RETURN(auto layout,
                     store->GetRelation(t.relid(), plan.epoch0_end_lsn, plan.epoch0_end_seq));
    if (!layout) {
      return Status::Corruption("store: no layout for table " + t.nspname() + "." + t.relname());
    }
    consider(*layout);
    snapshot_layouts.push_back(std::move(*layout));
  }
  if (!options.tables.empty() && plan.last_txn) {
    ASSIGN_OR_RETURN(auto latest, store->RelationsAt(plan.last_txn->commit_lsn()));
    for (const pb::Relation& rel : latest) consider(rel);
  }
  for (size_t i = 0; i < options.tables.size(); i++) {
    if (!used[i]) {
      std::string names;
      for (const std::string& n : known) names += (names.empty() ? "" : ", ") + n;
      return Status::InvalidArgument("no table \"" + options.tables[i] +
                                     "\" in the store; tables: " + names);
    }
  }
  for (pb::Relation& layout : snapshot_layouts) {
    if (!options.tables.empty() && plan.chosen_relids.count(layout.relid()) == 0) continue;
    RestoreTable table;
    table.layout = std::move(layout);
    plan.tables.push_back(std::move(table));
  }
  return plan;
}

namespace {

// Merges one table's snapshot rows with its row-index entries of epoch 0.
// Rows known without reading a change (snapshot rows, multiset rows, which
// the rowkey holds) go to emit at once; keyed rows whose final image is a
// change are left in *upserts, the position of that change each.
Status MergeEpoch0(Store* store, const RestorePlan& plan, const pb::Relation& layout,
                   const LayoutHistory& history,
                   const std::function<Status(const pb::Tuple&, uint64_t)>& emit,
                   std::vector<Position>* upserts) {
  const uint64_t floor_lsn = plan.snapshot.consistent_lsn();
  const bool have_txns = plan.last_txn.has_value();
  // Epoch 0: positions before (end_lsn, end_seq).
  const uint64_t end_lsn = plan.epoch0_end_lsn;
  const uint32_t end_seq = plan.epoch0_end_seq;
  auto before_end = [&](uint64_t lsn, uint32_t seq) {
    return lsn < end_lsn || (lsn == end_lsn && seq < end_seq);
  };
  const uint32_t relid = layout.relid();
  const bool multiset = IsMultiset(layout);

  // The last TRUNCATE of this table in the window clears everything before it.
  bool truncated = false;
  uint64_t trunc_lsn = 0;
  uint32_t trunc_seq = 0;
  if (have_txns) {
    std::unique_ptr<rocksdb::Iterator> it(
        store->db()->NewIterator(rocksdb::ReadOptions(), store->cf(Family::kTruncate)));
    it->SeekForPrev(keys::TruncateKey(relid, end_lsn, end_seq));
    if (it->Valid()) {
      uint32_t r;
      RETURN_IF_ERROR(keys::ParseTruncateKey(ToView(it->key()), &r, &trunc_lsn, &trunc_seq));
      truncated = r == relid && trunc_lsn >= floor_lsn && before_end(trunc_lsn, trunc_seq);
    }
  }
  auto in_window = [&](uint64_t lsn, uint32_t seq) {
    if (!have_txns || lsn < floor_lsn || !before_end(lsn, seq)) return false;
    if (truncated && (lsn < trunc_lsn || (lsn == trunc_lsn && seq <= trunc_seq))) return false;
    return true;
  };

  // Rows added while the table was not RowIndexed are read from the
  // changes: streamed after the merge when no version in the window was
  // indexed (the usual case: a table without a key), else counted by rowkey
  // here and merged, since the row index may remove them.
  const Position first{floor_lsn, 0};
  const Position end{end_lsn, end_seq};
  bool indexed = false, unindexed = false;
  if (have_txns) history.Indexing(first, end, &indexed, &unindexed);
  const bool mixed = indexed && unindexed;
  auto for_each_added = [&](const std::function<Status(const ChangeImage&)>& fn) {
    return ForEachAddedRow(store, layout, history, first, end,
                           [&](Position pos) { return in_window(pos.lsn, pos.seq); },
                           [&](Position, const ChangeImage& image) { return fn(image); });
  };
  std::map<std::string, int64_t> added;  // mixed: rowkey -> copies added
  if (unindexed && !IsMultiset(layout)) {
    // Whole rows under a keyed layout: the row index would say the same.
    RETURN_IF_ERROR(for_each_added([&](const ChangeImage&) {
      return CheckRowOp(layout, static_cast<char>(keys::RowOp::kAddOne));
    }));
  } else if (mixed) {
    std::string key;
    RETURN_IF_ERROR(for_each_added([&](const ChangeImage& image) {
      key.clear();
      RETURN_IF_ERROR(AppendImageRowKey(&key, layout, image));
      added[key]++;
      return Status::OK();
    }));
  }
  auto indexed_at = [&](Position pos) {
    if (!mixed) return true;
    const pb::Relation* rel = history.At(pos);
    return rel == nullptr || RowIndexed(*rel);
  };

  SnapshotCursor snap(store, plan.snapshot.id(), layout, truncated);
  // (An older agent also indexed the rows the changes give: not read.)
  std::optional<RowIdxCursor> idx;
  if (!(unindexed && !indexed && multiset)) idx.emplace(store, relid);
  auto idx_done = [&] { return !idx || idx->done(); };
  auto next_added = added.begin();
  pb::Tuple row;
  std::string current;
  while (!snap.done() || !idx_done() || next_added != added.end()) {
    // The smallest rowkey of the three.
    bool have_current = false;
    auto consider = [&](std::string_view k) {
      if (!have_current || k < current) current.assign(k);
      have_current = true;
    };
    if (!snap.done()) consider(snap.rowkey());
    if (!idx_done()) consider(idx->rowkey());
    if (next_added != added.end()) consider(next_added->first);
    uint64_t snap_copies = 0;
    bool have_snap_row = false;
    while (!snap.done() && snap.rowkey() == current) {
      if (!have_snap_row) {
        RETURN_IF_ERROR(ParseStored(ToView(snap.value()), "snapshot row", &row));
        have_snap_row = true;
      }
      snap_copies++;
      snap.Next();
    }
    int64_t delta = 0;
    if (next_added != added.end() && next_added->first == current) {
      delta += next_added->second;
      ++next_added;
    }
    bool have_entry = false;
    char last_op = 0;
    Position last;
    while (!idx_done() && idx->rowkey() == current) {
      if (in_window(idx->lsn(), idx->seq()) && indexed_at(idx->position())) {
        RETURN_IF_ERROR(CheckRowOp(layout, idx->op()));
        have_entry = true;
        last_op = idx->op();
        last = idx->position();
        if (idx->op() == static_cast<char>(keys::RowOp::kAddOne)) delta++;
        if (idx->op() == static_cast<char>(keys::RowOp::kRemoveOne)) delta--;
      }
      idx->Next();
    }
    if (idx) RETURN_IF_ERROR(idx->status());

    if (multiset) {
      const int64_t copies = static_cast<int64_t>(snap_copies) + delta;
      if (copies < 0) {
        return Status::Corruption("store: more deletes than rows for a row of " +
                                  TableName(layout));
      }
      if (copies == 0) continue;
      if (!have_snap_row) RETURN_IF_ERROR(RowKeyValues(layout, current, &row));
      RETURN_IF_ERROR(emit(row, static_cast<uint64_t>(copies)));
      continue;
    }
    if (have_entry) {
      if (last_op == static_cast<char>(keys::RowOp::kUpsert)) upserts->push_back(last);
    } else if (have_snap_row) {
      RETURN_IF_ERROR(emit(row, 1));
    }
  }
  RETURN_IF_ERROR(snap.status());
  if (!multiset || !unindexed || indexed) return Status::OK();
  return for_each_added([&](const ChangeImage& image) {
    ImageTuple(image, &row);
    return emit(row, 1);
  });
}

}  // namespace

Status ForEachRowAt(Store* store, const RestorePlan& plan, const pb::Relation& layout,
                    const std::function<Status(const pb::Tuple&, uint64_t)>& emit) {
  std::vector<Position> upserts;
  ASSIGN_OR_RETURN(LayoutHistory history, LayoutHistory::Load(store, layout.relid()));
  RETURN_IF_ERROR(MergeEpoch0(store, plan, layout, history, emit, &upserts));
  if (upserts.empty()) return Status::OK();
  return ForEachFinalImage(store, layout, history, std::move(upserts),
                           [&](const pb::Tuple& row) { return emit(row, 1); });
}

Status CountRows(Store* store, RestorePlan* plan) {
  for (RestoreTable& t : plan->tables) {
    t.rows = 0;
    // Every upsert is one row: no need to read its change to count it.
    std::vector<Position> upserts;
    ASSIGN_OR_RETURN(LayoutHistory history, LayoutHistory::Load(store, t.layout.relid()));
    RETURN_IF_ERROR(MergeEpoch0(store, *plan, t.layout, history,
                                [&](const pb::Tuple&, uint64_t n) {
                                  t.rows += n;
                                  return Status::OK();
                                },
                                &upserts));
    t.rows += upserts.size();
  }
  return Status::OK();
}

void PrintPlan(const RestorePlan& plan, bool with_rows, std::ostream& out) {
  out << "restore point: " << plan.restore_point << "\n";
  out << "base snapshot: " << plan.snapshot.id() << " at "
      << FormatLsn(plan.snapshot.consistent_lsn()) << ", taken "
      << FormatTimestampUtc(plan.snapshot.taken_at_us()) << "\n";
  if (plan.last_txn) {
    out << "last transaction included: " << DescribeTxn(*plan.last_txn) << "\n";
  } else {
    out << "last transaction included: none after the base snapshot\n";
  }
  out << "transactions after the snapshot: " << plan.txns_applied << "\n";
  out << "schema changes to replay: " << plan.ddl.size() << "\n";
  for (const SchemaChange& d : plan.ddl) {
    if (d.replay_sql.empty()) continue;
    std::string shown = d.replay_sql;
    for (char& c : shown) {
      if (c == '\n') c = ' ';
    }
    if (shown.size() > 100) shown = shown.substr(0, 97) + "...";
    out << "  " << FormatTimestampUtc(d.commit_time_us) << "  xid " << d.xid << "  "
        << FormatLsn(d.lsn) << "  " << d.tag << ": " << shown << "\n";
  }
  out << "tables: " << plan.tables.size()
      << (plan.ddl.empty() ? "" : " (as of the base snapshot and before the first schema change)")
      << "\n";
  for (const RestoreTable& t : plan.tables) {
    out << "  " << TableName(t.layout);
    if (with_rows) out << ": " << t.rows << " rows";
    out << "\n";
  }
}

namespace {

// Every connection to the target: values in the text form the store holds.
const ConnOverrides kTargetSettings = {
    {"client_encoding", "UTF8"},
    {"options", "-c datestyle=ISO -c intervalstyle=postgres -c timezone=UTC"}};

// Connects to the target, creating its database if it does not exist.
Result<std::unique_ptr<PgConn>> ConnectTarget(const std::string& target, std::ostream& out) {
  auto conn = PgConn::Connect(target, kTargetSettings);
  if (conn.ok()) return conn;
  // Maybe the database does not exist yet: create it from a maintenance DB.
  ASSIGN_OR_RETURN(std::string dbname, ConninfoValue(target, "dbname"));
  if (dbname.empty()) return conn.status();
  Result<std::unique_ptr<PgConn>> admin = PgConn::Connect(target, {{"dbname", "postgres"}});
  if (!admin.ok()) admin = PgConn::Connect(target, {{"dbname", "template1"}});
  if (!admin.ok()) return conn.status();
  ASSIGN_OR_RETURN(PgResult exists,
                   (*admin)->QueryParams("SELECT 1 FROM pg_catalog.pg_database WHERE datname = $1",
                                         {dbname}));
  if (exists.rows() > 0) return conn.status();
  RETURN_IF_ERROR((*admin)->Exec("CREATE DATABASE " + QuoteIdent(dbname) + " TEMPLATE template0")
                      .WithContext("cannot create target database \"" + dbname + "\""));
  out << "created database \"" << dbname << "\"\n";
  return PgConn::Connect(target, kTargetSettings);
}

Status CheckTarget(PgConn* conn, const pb::StoreMeta& meta) {
  // The source itself: same cluster and database, or holding our slot.
  ASSIGN_OR_RETURN(PgResult db, conn->QueryParams(
                                    "SELECT current_database(), EXISTS (SELECT 1 FROM "
                                    "pg_catalog.pg_replication_slots WHERE slot_name = $1 AND "
                                    "database = current_database())",
                                    {meta.slot()}));
  bool is_source = db.Get(0, 1) == "t";
  auto sysid = conn->Query("SELECT system_identifier::text FROM pg_catalog.pg_control_system()");
  if (sysid.ok() && sysid->rows() == 1 && sysid->GetString(0, 0) == meta.system_id() &&
      db.GetString(0, 0) == meta.dbname()) {
    is_source = true;
  }
  if (is_source) {
    return Status::FailedPrecondition(
        "the target is the source database \"" + meta.dbname() +
        "\" itself\nHINT: restore into a new database, e.g. dbname=" + meta.dbname() +
        "_restored");
  }
  ASSIGN_OR_RETURN(PgResult objects,
                   conn->Query("SELECT count(*) FROM pg_catalog.pg_class c "
                               "JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace "
                               "WHERE n.nspname NOT IN ('pg_catalog', 'information_schema') "
                               "AND n.nspname !~ '^pg_toast' AND n.nspname !~ '^pg_temp'"));
  if (objects.Get(0, 0) != "0") {
    return Status::FailedPrecondition("the target database \"" + db.GetString(0, 0) +
                                      "\" is not empty (" + objects.GetString(0, 0) +
                                      " relations)\nHINT: restore into a new or empty database");
  }
  return Status::OK();
}

// --clean: the user must confirm by typing the database's name, unless
// --yes says it was confirmed elsewhere.
Status ConfirmClean(const std::string& dbname, bool assume_yes) {
  if (assume_yes) return Status::OK();
  if (!::isatty(STDIN_FILENO)) {
    return Status::FailedPrecondition(
        "--clean would drop everything in database \"" + dbname +
        "\" and needs a confirmation\nHINT: run it in a terminal, or add --yes");
  }
  std::fprintf(stderr,
               "pitr-restore: --clean drops every schema in database \"%s\" and its contents.\n"
               "Type the database name to confirm: ",
               dbname.c_str());
  std::string answer;
  if (!std::getline(std::cin, answer) || answer != dbname) {
    return Status::FailedPrecondition("not confirmed; nothing was changed");
  }
  return Status::OK();
}

// Drops every user schema (with all it holds) and recreates an empty public.
Result<int> CleanTarget(PgConn* conn) {
  ASSIGN_OR_RETURN(PgResult schemas,
                   conn->Query("SELECT n.nspname FROM pg_catalog.pg_namespace n "
                               "WHERE n.nspname NOT IN ('pg_catalog', 'information_schema', "
                               "'pgtrail') AND n.nspname !~ '^pg_' ORDER BY 1"));
  // Schema pgtrail stays: in the source it holds the DDL capture.
  for (int i = 0; i < schemas.rows(); i++) {
    RETURN_IF_ERROR(conn->Exec("DROP SCHEMA " + QuoteIdent(schemas.Get(i, 0)) + " CASCADE"));
  }
  RETURN_IF_ERROR(conn->Exec("CREATE SCHEMA public"));
  return schemas.rows();
}

Status CopyTableIn(Store* store, const RestorePlan& plan, PgConn* conn, RestoreTable* table) {
  const pb::Relation& rel = table->layout;
  CopyIn copy(conn, TableName(rel));
  RETURN_IF_ERROR(copy.Begin(QualifiedName(rel.nspname(), rel.relname()), ColumnNames(rel)));
  Status st = ForEachRowAt(store, plan, rel, [&](const pb::Tuple& row, uint64_t copies) {
    return copy.Add(row, copies);
  });
  st = copy.End(st);
  table->rows = copy.rows();
  return st;
}

// Sets every sequence of the target: its value in the snapshot, never below
// the largest value of a column it owns (so new inserts do not collide).
// Sequences created after the snapshot follow their columns alone.
Status RestoreSequences(PgConn* conn, const RestorePlan& plan) {
  ASSIGN_OR_RETURN(PgResult seqs,
                   conn->Query("SELECT c.oid::regclass::text, n.nspname, c.relname "
                               "FROM pg_catalog.pg_class c "
                               "JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace "
                               "WHERE c.relkind = 'S' AND n.nspname NOT IN "
                               "('pg_catalog', 'information_schema') AND n.nspname !~ '^pg_'"));
  for (int s = 0; s < seqs.rows(); s++) {
    const std::string name = seqs.GetString(s, 0);  // regclass text: quoted as needed
    bool known = false;
    int64_t value = 0;
    bool is_called = false;
    for (const pb::SequenceValue& v : plan.snapshot.sequences()) {
      if (v.nspname() == seqs.Get(s, 1) && v.relname() == seqs.Get(s, 2)) {
        known = true;
        value = v.last_value();
        is_called = v.is_called();
      }
    }
    ASSIGN_OR_RETURN(
        PgResult owned,
        conn->QueryParams("SELECT d.refobjid::regclass::text, a.attname FROM pg_catalog.pg_depend d "
                          "JOIN pg_catalog.pg_attribute a ON a.attrelid = d.refobjid "
                          "AND a.attnum = d.refobjsubid "
                          "WHERE d.classid = 'pg_catalog.pg_class'::regclass "
                          "AND d.objid = $1::regclass AND d.deptype IN ('a', 'i')",
                          {name}));
    for (int i = 0; i < owned.rows(); i++) {
      ASSIGN_OR_RETURN(PgResult max, conn->Query("SELECT max(" + QuoteIdent(owned.Get(i, 1)) +
                                                 ")::bigint FROM " + owned.GetString(i, 0)));
      if (max.IsNull(0, 0)) continue;
      const int64_t m = std::stoll(max.GetString(0, 0));
      if (!known || m > value || (m == value && !is_called)) {
        value = m;
        is_called = true;
        known = true;
      }
    }
    if (!known) continue;
    RETURN_IF_ERROR(conn->QueryParams("SELECT pg_catalog.setval($1::regclass, $2, $3)",
                                      {name, std::to_string(value), is_called ? "true" : "false"})
                        .status());
  }
  return Status::OK();
}

// --tables: indexes, constraints and triggers, each entry on its own; an
// entry that needs a table left out (a foreign key into an empty table, say)
// is skipped. Every other failure fails the restore.
Status ApplyPostDataForChosen(PgConn* conn, const std::string& post_data) {
  std::vector<DumpEntry> entries = SplitDumpEntries(post_data);
  RETURN_IF_ERROR(conn->Exec(entries.front().sql));
  for (size_t i = 1; i < entries.size(); i++) {
    RETURN_IF_ERROR(conn->Exec("SAVEPOINT pgtrail_entry"));
    Status st = conn->Exec(entries[i].sql);
    if (!st.ok()) {
      const bool needs_left_out = st.message().find("does not exist") != std::string::npos ||
                                  st.message().find("violates foreign key") != std::string::npos;
      if (st.code() != Status::kFailedPrecondition || !needs_left_out) {
        return st.WithContext("schema (post-data)");
      }
      RETURN_IF_ERROR(conn->Exec("ROLLBACK TO SAVEPOINT pgtrail_entry"));
    }
    RETURN_IF_ERROR(conn->Exec("RELEASE SAVEPOINT pgtrail_entry"));
  }
  return Status::OK();
}

// --tables: every table that did not get rows goes, with what depends on it.
Status DropTablesNotLoaded(PgConn* conn, const std::set<std::string>& loaded_oids) {
  ASSIGN_OR_RETURN(PgResult tables,
                   conn->Query("SELECT c.oid::text, c.oid::regclass::text FROM pg_catalog.pg_class c "
                               "JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace "
                               "WHERE c.relkind IN ('r', 'p') AND NOT c.relispartition "
                               "AND n.nspname NOT IN ('pg_catalog', 'information_schema') "
                               "AND n.nspname !~ '^pg_'"));
  for (int i = 0; i < tables.rows(); i++) {
    if (loaded_oids.count(tables.GetString(i, 0)) != 0) continue;
    // regclass text is already quoted as needed.
    RETURN_IF_ERROR(conn->Exec("DROP TABLE IF EXISTS " + tables.GetString(i, 1) + " CASCADE"));
  }
  return Status::OK();
}

}  // namespace

namespace {

// --jobs: the base snapshot's post-data entries that build an index on one
// table (CREATE INDEX, ADD PRIMARY KEY / UNIQUE) run on the loading
// connections, as pg_restore -j builds them; returns the other entries, in
// their order, to run once those are done (foreign keys, triggers, ...: they
// may need the indexes, and none of the index builds needs them).
Result<std::string> BuildIndexesOnJobs(const RestorePlan& plan, LoadJobs* jobs) {
  std::map<std::string, std::vector<uint32_t>> relids;  // relname -> tables of that name
  for (const RestoreTable& t : plan.tables) relids[t.layout.relname()].push_back(t.layout.relid());
  std::vector<DumpEntry> entries = SplitDumpEntries(plan.snapshot.post_data_sql());
  std::string rest;
  for (size_t i = 0; i < entries.size(); i++) {
    const std::vector<std::string> statements = SplitSqlStatements(entries[i].sql);
    const std::string table = i > 0 && statements.size() == 1 ? IndexBuildTable(statements[0]) : "";
    auto named = relids.find(table);
    if (table.empty() || named == relids.end() || named->second.size() != 1) {
      rest += entries[i].sql;
      if (!rest.empty() && rest.back() != '\n') rest += "\n";
      continue;
    }
    // pg_dump names every object with its schema: no search_path needed.
    const std::string sql = entries[i].sql;
    RETURN_IF_ERROR(jobs->Run(named->second[0], [sql](PgConn* c) { return c->Exec(sql); }));
  }
  RETURN_IF_ERROR(jobs->WaitAll());
  return rest;
}

// Schema, rows and sequences into the target through `jobs`. Sequential:
// inside the caller's transaction. Parallel: each step commits, the rows of
// each table in a worker's transaction.
Status FillTarget(Store* store, RestorePlan* plan, const RestoreOptions& options, LoadJobs* jobs,
                  std::ostream& out) {
  PgConn* conn = jobs->main();
  const bool parallel = jobs->parallel();
  auto step = [&](const std::string& sql, const char* what) {
    Status st = parallel ? conn->Exec("BEGIN;\n" + sql + ";\nCOMMIT") : conn->Exec(sql);
    return st.WithContext(what);
  };
  RETURN_IF_ERROR(step(JoinDumpEntries(SplitDumpEntries(plan->snapshot.pre_data_sql())),
                       "schema (pre-data)"));
  RETURN_IF_ERROR(conn->Exec("SET search_path = pg_catalog"));
  const bool some_tables = !options.tables.empty();
  std::set<std::string> loaded_oids;
  for (RestoreTable& t : plan->tables) {
    ASSIGN_OR_RETURN(PgResult oid, conn->QueryParams("SELECT to_regclass($1)::oid::text",
                                                     {QualifiedName(t.layout.nspname(),
                                                                    t.layout.relname())}));
    if (oid.rows() == 1 && !oid.IsNull(0, 0)) loaded_oids.insert(oid.GetString(0, 0));
    RETURN_IF_ERROR(jobs->Run(t.layout.relid(), [store, plan, &t, jobs, &out](PgConn* c) {
      RETURN_IF_ERROR(CopyTableIn(store, *plan, c, &t));
      std::lock_guard<std::mutex> lock(jobs->output_mutex());
      out << "  " << TableName(t.layout) << ": " << t.rows << " rows\n";
      return Status::OK();
    }));
  }
  RETURN_IF_ERROR(jobs->WaitAll());
  uint64_t total = 0;
  for (const RestoreTable& t : plan->tables) total += t.rows;
  if (!some_tables && parallel) {
    Result<std::string> rest = BuildIndexesOnJobs(*plan, jobs);
    RETURN_IF_ERROR(rest.status().WithContext("schema (post-data)"));
    RETURN_IF_ERROR(step(*rest, "schema (post-data)"));
  } else if (!some_tables) {
    RETURN_IF_ERROR(step(JoinDumpEntries(SplitDumpEntries(plan->snapshot.post_data_sql())),
                         "schema (post-data)"));
  } else {
    if (parallel) RETURN_IF_ERROR(conn->Exec("BEGIN"));
    RETURN_IF_ERROR(ApplyPostDataForChosen(conn, plan->snapshot.post_data_sql()));
    if (parallel) RETURN_IF_ERROR(conn->Exec("COMMIT"));
  }
  RETURN_IF_ERROR(conn->Exec("SET search_path = pg_catalog"));
  if (!plan->ddl.empty()) {
    {
      std::lock_guard<std::mutex> lock(jobs->output_mutex());
      out << "schema changes after the snapshot: " << plan->ddl.size() << "\n";
    }
    EpochOptions epoch_options;
    if (some_tables) {
      const std::set<uint32_t> chosen_relids = plan->chosen_relids;
      epoch_options.chosen = [chosen_relids](const pb::Relation& rel) {
        return chosen_relids.count(rel.relid()) != 0;
      };
      epoch_options.tolerate_ddl_failures = true;
    }
    RETURN_IF_ERROR(ApplyEpochs(store, *plan, jobs, epoch_options, &loaded_oids, out));
  }
  if (parallel) RETURN_IF_ERROR(conn->Exec("BEGIN"));
  if (some_tables) RETURN_IF_ERROR(DropTablesNotLoaded(conn, loaded_oids));
  RETURN_IF_ERROR(RestoreSequences(conn, *plan));
  if (parallel) RETURN_IF_ERROR(conn->Exec("COMMIT"));
  out << "restored " << plan->tables.size() << " tables, " << total << " rows";
  if (!plan->ddl.empty()) {
    out << " as of the first schema change, then " << plan->ddl.size()
        << " schema changes with the rows changed after each";
  }
  out << "\n";
  return Status::OK();
}

// --jobs: builds the database under a temporary name with parallel loads,
// then gives it the target's name; on failure it is dropped.
Status ExecuteParallelRestore(Store* store, RestorePlan* plan, const RestoreOptions& options,
                              std::ostream& out) {
  ASSIGN_OR_RETURN(std::string dbname, ConninfoValue(options.target, "dbname"));
  if (dbname.empty()) {
    return Status::InvalidArgument("--jobs needs the target's dbname in --target");
  }
  Result<std::unique_ptr<PgConn>> admin = PgConn::Connect(options.target, {{"dbname", "postgres"}});
  if (!admin.ok()) admin = PgConn::Connect(options.target, {{"dbname", "template1"}});
  if (!admin.ok()) return admin.status().WithContext("cannot connect to create the target");
  ASSIGN_OR_RETURN(PgResult exists,
                   (*admin)->QueryParams("SELECT 1 FROM pg_catalog.pg_database WHERE datname = $1",
                                         {dbname}));
  if (exists.rows() > 0) {
    return Status::FailedPrecondition(
        "database \"" + dbname + "\" exists, and --jobs restores into a database it creates"
        "\nHINT: name a new database, or leave out --jobs to restore into an empty one");
  }
  const std::string partial = "pgtrail_partial_" + std::to_string(::getpid());
  RETURN_IF_ERROR((*admin)->Exec("CREATE DATABASE " + QuoteIdent(partial) + " TEMPLATE template0")
                      .WithContext("cannot create database \"" + partial + "\""));
  out << "building database \"" << partial << "\" with " << options.jobs
      << " loading connections; it becomes \"" << dbname << "\" when complete\n";
  Status st = [&]() -> Status {
    ConnOverrides settings = kTargetSettings;
    settings.emplace_back("dbname", partial);
    ASSIGN_OR_RETURN(std::unique_ptr<PgConn> conn, PgConn::Connect(options.target, settings));
    out << "restoring into " << conn->Describe() << "\n";
    // Rows go in as they were: triggers and foreign keys of the target do
    // not act on them (as pg_restore --disable-triggers). Needs a superuser.
    // The partial database's commits need not wait for their WAL flush: the
    // rename below commits synchronously, and its flush takes every earlier
    // WAL record with it, so nothing is reported restored before it is
    // durable (and a crash before the rename leaves only the partial name).
    // No timeouts, as the dump's own preamble says (pg_restore's sessions too).
    std::string session =
        "SET search_path = pg_catalog; SET synchronous_commit = off; SET statement_timeout = 0;"
        " SET lock_timeout = 0; SET idle_in_transaction_session_timeout = 0";
    if (conn->Exec("SET session_replication_role = replica").ok()) {
      session += "; SET session_replication_role = replica";
    } else {
      out << "  note: not a superuser, so triggers of the target fire while rows are loaded\n";
    }
    RETURN_IF_ERROR(conn->Exec(session));
    ASSIGN_OR_RETURN(std::unique_ptr<LoadJobs> jobs,
                     LoadJobs::StartWorkers(conn.get(), options.jobs,
                                            [&] { return PgConn::Connect(options.target, settings); },
                                            session));
    return FillTarget(store, plan, options, jobs.get(), out);
  }();
  if (!st.ok()) {
    const Status dropped = (*admin)->Exec("DROP DATABASE IF EXISTS " + QuoteIdent(partial) +
                                          " WITH (FORCE)");
    if (!dropped.ok()) {
      return st.WithContext("(database \"" + partial + "\" is left over: " + dropped.message() +
                            ")");
    }
    return st;
  }
  RETURN_IF_ERROR((*admin)->Exec("SET synchronous_commit = on"));
  RETURN_IF_ERROR((*admin)->Exec("ALTER DATABASE " + QuoteIdent(partial) + " RENAME TO " +
                                 QuoteIdent(dbname))
                      .WithContext("the restored database \"" + partial + "\" is complete, but"));
  out << "renamed database \"" << partial << "\" to \"" << dbname << "\"\n";
  return Status::OK();
}

}  // namespace

Status ExecuteRestore(Store* store, RestorePlan* plan, const RestoreOptions& options,
                      std::ostream& out) {
  if (options.jobs > 1) return ExecuteParallelRestore(store, plan, options, out);
  ASSIGN_OR_RETURN(auto conn, ConnectTarget(options.target, out));
  if (!options.clean) RETURN_IF_ERROR(CheckTarget(conn.get(), plan->meta));
  ASSIGN_OR_RETURN(PgResult dbname, conn->Query("SELECT current_database()"));
  if (options.clean) RETURN_IF_ERROR(ConfirmClean(dbname.GetString(0, 0), options.assume_yes));
  out << "restoring into " << conn->Describe() << "\n";
  // All or nothing: one transaction, so a failed restore leaves no half
  // database (and, with --clean, the old content stays until it succeeds).
  RETURN_IF_ERROR(conn->Exec("BEGIN"));
  if (options.clean) {
    ASSIGN_OR_RETURN(int dropped, CleanTarget(conn.get()));
    out << "cleaned the target: dropped " << dropped << " schemas\n";
  }
  LoadJobs jobs(conn.get());
  RETURN_IF_ERROR(FillTarget(store, plan, options, &jobs, out));
  return conn->Exec("COMMIT");
}

int RunRestoreCommand(const RestoreOptions& options, std::ostream& out) {
  const char* kProgram = "pitr-restore";
  // Input first: nothing is opened or printed for a bad time or target.
  if (Status st = ValidateRestoreTarget(options); !st.ok()) return ReportError(kProgram, st);
  if (options.jobs < 1 || options.jobs > 64) {
    return ReportError(kProgram, Status::InvalidArgument("invalid --jobs " +
                                                         std::to_string(options.jobs) +
                                                         ": expected 1 to 64"));
  }
  if (options.jobs > 1 && options.clean) {
    return ReportError(kProgram,
                       Status::InvalidArgument("--jobs cannot be combined with --clean: a "
                                               "parallel restore builds a new database"));
  }
  if (Status st = ValidateCpuScheduling(options.cpu_scheduling); !st.ok()) {
    return ReportError(kProgram, st);
  }
  ApplyCpuScheduling(options.cpu_scheduling);  // before the loading threads start
  if (!options.target.empty()) {
    if (auto v = ConninfoValue(options.target, "dbname"); !v.ok()) {
      return ReportError(kProgram, v.status());
    }
  }
  auto store = Store::OpenForRead(options.store_path);
  if (!store.ok()) return ReportError(kProgram, store.status());
  if (Status st = (*store)->CatchUp(); !st.ok()) return ReportError(kProgram, st);
  auto plan = PlanRestore(store->get(), options);
  if (!plan.ok()) return ReportError(kProgram, plan.status());
  if (options.dry_run) {
    if (Status st = CountRows(store->get(), &*plan); !st.ok()) return ReportError(kProgram, st);
    PrintPlan(*plan, /*with_rows=*/true, out);
    out << "dry run: nothing was written\n";
    return 0;
  }
  PrintPlan(*plan, /*with_rows=*/false, out);
  if (Status st = ExecuteRestore(store->get(), &*plan, options, out); !st.ok()) {
    return ReportError(kProgram, st);
  }
  return 0;
}

int RunListCommand(const std::string& store_path, bool json, std::ostream& out) {
  const char* kProgram = "pitr-restore";
  auto opened = Store::OpenForRead(store_path);
  if (!opened.ok()) return ReportError(kProgram, opened.status());
  Store* store = opened->get();
  Status st = store->CatchUp();
  auto meta = store->ReadMeta();
  auto snapshots = store->ListSnapshots();
  auto marks = store->ListMarks();
  if (!st.ok()) return ReportError(kProgram, st);
  if (!meta.ok()) return ReportError(kProgram, meta.status());
  if (!snapshots.ok()) return ReportError(kProgram, snapshots.status());
  if (!marks.ok()) return ReportError(kProgram, marks.status());
  const bool empty = snapshots->empty();
  const int64_t from_time = empty ? 0 : snapshots->front().taken_at_us();
  const int64_t to_time =
      empty ? 0 : std::max(meta->max_commit_time_us(), snapshots->back().taken_at_us());
  const uint64_t from_lsn = empty ? 0 : snapshots->front().consistent_lsn();
  if (json) {
    out << "{\"store\":\"" << JsonEscape(store_path) << "\",\"database\":\""
        << JsonEscape(meta->dbname()) << "\",\"system_id\":\"" << meta->system_id()
        << "\",\"slot\":\"" << JsonEscape(meta->slot()) << "\",\"transactions\":"
        << meta->txn_count();
    if (!empty) {
      out << ",\"range\":{\"from_time\":\"" << FormatTimestampUtc(from_time)
          << "\",\"to_time\":\"" << FormatTimestampUtc(to_time) << "\",\"from_lsn\":\""
          << FormatLsn(from_lsn) << "\",\"to_lsn\":\"" << FormatLsn(meta->resume_lsn()) << "\"}";
    }
    out << ",\"snapshots\":[";
    for (size_t i = 0; i < snapshots->size(); i++) {
      const pb::Snapshot& s = (*snapshots)[i];
      uint64_t rows = 0;
      for (const auto& t : s.tables()) rows += t.row_count();
      out << (i ? "," : "") << "{\"id\":" << s.id() << ",\"lsn\":\"" << FormatLsn(s.consistent_lsn())
          << "\",\"time\":\"" << FormatTimestampUtc(s.taken_at_us()) << "\",\"tables\":"
          << s.tables_size() << ",\"rows\":" << rows << "}";
    }
    out << "],\"marks\":[";
    for (size_t i = 0; i < marks->size(); i++) {
      const Store::Mark& m = (*marks)[i];
      out << (i ? "," : "") << "{\"name\":\"" << JsonEscape(m.name) << "\",\"lsn\":\""
          << FormatLsn(m.commit_lsn) << "\",\"time\":\"" << FormatTimestampUtc(m.txn.commit_time_us())
          << "\",\"xid\":" << m.txn.xid() << "}";
    }
    out << "]}\n";
    return 0;
  }
  out << "store " << store_path << ": database \"" << meta->dbname() << "\" of system "
      << meta->system_id() << ", slot " << meta->slot() << "\n";
  if (empty) {
    out << "no complete base snapshot yet\n";
    return 0;
  }
  out << "covers " << FormatTimestampUtc(from_time) << " to " << FormatTimestampUtc(to_time)
      << " (UTC), LSN " << FormatLsn(from_lsn) << " to " << FormatLsn(meta->resume_lsn()) << ", "
      << meta->txn_count() << " transactions\n";
  out << "base snapshots:\n";
  for (const pb::Snapshot& s : *snapshots) {
    uint64_t rows = 0;
    for (const auto& t : s.tables()) rows += t.row_count();
    out << "  " << s.id() << "  " << FormatTimestampUtc(s.taken_at_us()) << "  LSN "
        << FormatLsn(s.consistent_lsn()) << "  " << s.tables_size() << " tables, " << rows
        << " rows\n";
  }
  out << "marks:" << (marks->empty() ? " none" : "") << "\n";
  for (const Store::Mark& m : *marks) {
    out << "  " << m.name << "  " << FormatTimestampUtc(m.txn.commit_time_us()) << "  LSN "
        << FormatLsn(m.commit_lsn) << "  xid " << m.txn.xid() << "\n";
  }
  return 0;
}

}  // namespace pgtrail
