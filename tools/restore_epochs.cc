#include "tools/restore_epochs.h"

#include <map>
#include <tuple>
#include <vector>

#include "storage/coding.h"
#include "storage/keys.h"
#include "tools/copy_in.h"

namespace pgtrail {
namespace {

struct Position {
  uint64_t lsn = 0;
  uint32_t seq = 0;
  bool operator<(const Position& o) const {
    return lsn != o.lsn ? lsn < o.lsn : seq < o.seq;
  }
};

// The net effect of one epoch's changes on one table.
struct TableDelta {
  pb::Relation layout;
  // Keyed tables: rowkey -> final image (nullopt: deleted).
  std::map<std::string, std::optional<pb::Tuple>> keyed;
  // Multiset tables: row encoding -> (copies added minus removed, the row).
  std::map<std::string, std::pair<int64_t, pb::Tuple>> counts;
};

struct EpochDelta {
  std::vector<std::vector<uint32_t>> truncates;  // in order, each one statement
  std::map<uint32_t, TableDelta> tables;
};

class EpochBuilder {
 public:
  // chosen_relids empty: every relation.
  EpochBuilder(Store* store, std::set<uint32_t> chosen_relids)
      : store_(store), chosen_(std::move(chosen_relids)) {}
  bool Wanted(uint32_t relid) const { return chosen_.empty() || chosen_.count(relid) != 0; }

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

  // Folds the changes at positions [from, to) into a delta.
  Status Build(Position from, Position to, EpochDelta* delta) {
    Status inner;
    RETURN_IF_ERROR(store_->ForEachChangeInRange(
        from.lsn, to.lsn, [](const pb::TxnHeader&) { return true; },
        [&](const pb::TxnHeader& h, uint32_t seq, const pb::Change& c) {
          const Position pos{h.commit_lsn(), seq};
          if (pos < from) return true;
          if (!(pos < to)) return false;
          inner = Fold(pos, c, delta);
          return inner.ok();
        }));
    return inner;
  }

 private:
  Status Fold(Position pos, const pb::Change& c, EpochDelta* delta) {
    if (c.op() == pb::Change::TRUNCATE) {
      std::vector<uint32_t> relids;
      for (uint32_t relid : c.truncate_relids()) {
        if (Wanted(relid)) relids.push_back(relid);
      }
      for (uint32_t relid : relids) {
        ASSIGN_OR_RETURN(const pb::Relation* rel, Layout(relid, pos.lsn, pos.seq));
        TableDelta& t = delta->tables[relid];
        t.layout = *rel;
        t.keyed.clear();
        t.counts.clear();
      }
      delta->truncates.push_back(std::move(relids));
      return Status::OK();
    }
    if (c.op() != pb::Change::INSERT && c.op() != pb::Change::UPDATE &&
        c.op() != pb::Change::DELETE) {
      return Status::OK();
    }
    if (!Wanted(c.relid())) return Status::OK();  // --tables: left out early
    ASSIGN_OR_RETURN(const pb::Relation* rel,
                     Layout(c.relid(), c.relation_lsn(), c.relation_seq()));
    TableDelta& t = delta->tables[c.relid()];
    t.layout = *rel;
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
  std::set<uint32_t> chosen_;
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

Status CopyStraightIn(PgConn* conn, const TableDelta& t) {
  CopyIn copy(conn, TableName(t.layout));
  RETURN_IF_ERROR(copy.Begin(TableSql(t.layout), ColumnNames(t.layout)));
  Status st;
  for (const auto& [rowkey, image] : t.keyed) {
    if (image) st = copy.Add(*image);
    if (!st.ok()) break;
  }
  for (const auto& [enc, entry] : t.counts) {
    if (!st.ok()) break;
    if (entry.first > 0) st = copy.Add(entry.second, static_cast<uint64_t>(entry.first));
  }
  return copy.End(st);
}

Status ApplyKeyed(PgConn* conn, const TableDelta& t) {
  const pb::Relation& rel = t.layout;
  const std::vector<std::string> columns = ColumnNames(rel);
  ASSIGN_OR_RETURN(bool empty, IsEmpty(conn, rel));
  if (empty) return CopyStraightIn(conn, t);
  std::vector<std::string> key_columns;
  for (const pb::Column& c : rel.columns()) {
    if (c.key()) key_columns.push_back(QuoteIdent(c.name()));
  }
  RETURN_IF_ERROR(CreateScratch(conn, "pgtrail_up", rel, columns));
  RETURN_IF_ERROR(conn->Exec("CREATE TEMP TABLE pgtrail_gone ON COMMIT DROP AS SELECT " +
                             Join(key_columns, ", ") + " FROM " + TableSql(rel) +
                             " WITH NO DATA"));
  CopyIn up(conn, TableName(rel));
  RETURN_IF_ERROR(up.Begin("pgtrail_up", columns));
  Status st;
  for (const auto& [rowkey, image] : t.keyed) {
    if (image) st = up.Add(*image);
    if (!st.ok()) break;
  }
  RETURN_IF_ERROR(up.End(st));
  CopyIn gone(conn, TableName(rel));
  RETURN_IF_ERROR(gone.Begin("pgtrail_gone", key_columns));
  std::vector<std::string> texts;
  std::vector<bool> nulls;
  pb::Tuple key;
  for (const auto& [rowkey, image] : t.keyed) {
    if (image) continue;
    size_t used = 0;
    st = keys::ParseRowKey(rowkey, key_columns.size(), &texts, &nulls, &used);
    if (!st.ok()) break;
    key.Clear();
    for (size_t i = 0; i < texts.size(); i++) {
      key.mutable_kinds()->push_back(nulls[i] ? 'n' : 't');
      key.add_values(texts[i]);
    }
    st = gone.Add(key);
    if (!st.ok()) break;
  }
  RETURN_IF_ERROR(gone.End(st));
  std::vector<std::string> match;
  for (const std::string& k : key_columns) match.push_back("t." + k + " = s." + k);
  const std::string on = Join(match, " AND ");
  if (gone.rows() > 0) {
    RETURN_IF_ERROR(
        conn->Exec("DELETE FROM ONLY " + TableSql(rel) + " t USING pgtrail_gone s WHERE " + on));
  }
  RETURN_IF_ERROR(conn->Exec("DELETE FROM ONLY " + TableSql(rel) + " t USING pgtrail_up s WHERE " + on));
  RETURN_IF_ERROR(conn->Exec("INSERT INTO " + TableSql(rel) + " (" + Join(columns, ", ") +
                             ") OVERRIDING SYSTEM VALUE SELECT " + Join(columns, ", ") +
                             " FROM pgtrail_up"));
  return conn->Exec("DROP TABLE pgtrail_up, pgtrail_gone");
}

Status ApplyMultiset(PgConn* conn, const TableDelta& t) {
  const pb::Relation& rel = t.layout;
  const std::vector<std::string> columns = ColumnNames(rel);
  ASSIGN_OR_RETURN(bool empty, IsEmpty(conn, rel));
  if (empty) return CopyStraightIn(conn, t);
  RETURN_IF_ERROR(CreateScratch(conn, "pgtrail_add", rel, columns));
  RETURN_IF_ERROR(CreateScratch(conn, "pgtrail_remove", rel, columns));
  CopyIn add(conn, TableName(rel));
  RETURN_IF_ERROR(add.Begin("pgtrail_add", columns));
  Status st;
  for (const auto& [enc, entry] : t.counts) {
    if (entry.first > 0) st = add.Add(entry.second, static_cast<uint64_t>(entry.first));
    if (!st.ok()) break;
  }
  RETURN_IF_ERROR(add.End(st));
  CopyIn remove(conn, TableName(rel));
  RETURN_IF_ERROR(remove.Begin("pgtrail_remove", columns));
  for (const auto& [enc, entry] : t.counts) {
    if (entry.first < 0) st = remove.Add(entry.second, static_cast<uint64_t>(-entry.first));
    if (!st.ok()) break;
  }
  RETURN_IF_ERROR(remove.End(st));
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

}  // namespace

Status ApplyEpochs(Store* store, const RestorePlan& plan, PgConn* conn,
                   const EpochOptions& options, std::set<std::string>* loaded_oids,
                   std::ostream& out) {
  if (plan.ddl.empty()) return Status::OK();
  // Rows go in as they were; the target's triggers and foreign keys must not
  // act on them (as pg_restore --disable-triggers). Needs a superuser.
  RETURN_IF_ERROR(conn->Exec("SAVEPOINT pgtrail_role"));
  if (!conn->Exec("SET LOCAL session_replication_role = replica").ok()) {
    RETURN_IF_ERROR(conn->Exec("ROLLBACK TO SAVEPOINT pgtrail_role"));
    out << "  note: not a superuser, so triggers of the target fire while epochs are applied\n";
  }
  RETURN_IF_ERROR(conn->Exec("RELEASE SAVEPOINT pgtrail_role"));

  EpochBuilder builder(store, plan.chosen_relids);
  const Position last{plan.last_txn->commit_lsn(), UINT32_MAX};
  for (size_t k = 0; k < plan.ddl.size(); k++) {
    const SchemaChange& d = plan.ddl[k];
    // 1. The schema change, in the session state it ran with.
    RETURN_IF_ERROR(conn->Exec("SAVEPOINT pgtrail_ddl"));
    RETURN_IF_ERROR(conn->QueryParams("SELECT pg_catalog.set_config('search_path', $1, true)",
                                      {d.search_path})
                        .status());
    Status st = d.replay_sql.empty() ? Status::OK() : conn->Exec(d.replay_sql);
    for (const std::string& table : d.filled_tables) {
      if (st.ok()) st = conn->Exec("TRUNCATE ONLY " + table);  // identity: quoted as needed
    }
    const std::string where = d.tag + " of xid " + std::to_string(d.xid) + " at LSN " +
                              FormatLsn(d.lsn);
    if (!st.ok()) {
      if (!options.tolerate_ddl_failures) {
        return Status::FailedPrecondition("replaying " + where + " failed: " + st.message());
      }
      RETURN_IF_ERROR(conn->Exec("ROLLBACK TO SAVEPOINT pgtrail_ddl"));
      out << "  skipped " << where << " (it needs a table left out: " << st.message() << ")\n";
    } else if (!d.replay_sql.empty()) {
      out << "  replayed " << where << "\n";
    }
    RETURN_IF_ERROR(conn->Exec("RELEASE SAVEPOINT pgtrail_ddl"));
    RETURN_IF_ERROR(conn->Exec("SET LOCAL search_path = pg_catalog"));

    // 2. The rows changed until the next schema change.
    const Position from{d.lsn, d.seq + 1};
    const Position to = k + 1 < plan.ddl.size()
                            ? Position{plan.ddl[k + 1].lsn, plan.ddl[k + 1].seq}
                            : last;
    EpochDelta delta;
    RETURN_IF_ERROR(builder.Build(from, to, &delta));
    for (const std::vector<uint32_t>& relids : delta.truncates) {
      std::vector<std::string> names;
      for (uint32_t relid : relids) {
        const TableDelta& t = delta.tables[relid];
        if (!options.chosen || options.chosen(t.layout)) names.push_back(TableSql(t.layout));
      }
      if (!names.empty()) RETURN_IF_ERROR(conn->Exec("TRUNCATE ONLY " + Join(names, ", ")));
    }
    for (const auto& [relid, t] : delta.tables) {
      if (options.chosen && !options.chosen(t.layout)) continue;
      RETURN_IF_ERROR(IsMultiset(t.layout) ? ApplyMultiset(conn, t) : ApplyKeyed(conn, t));
      const size_t changed = t.keyed.size() + t.counts.size();
      out << "    " << TableName(t.layout) << ": " << changed << " rows changed\n";
      ASSIGN_OR_RETURN(PgResult oid, conn->QueryParams("SELECT to_regclass($1)::oid::text",
                                                       {TableSql(t.layout)}));
      if (oid.rows() == 1 && !oid.IsNull(0, 0)) loaded_oids->insert(oid.GetString(0, 0));
    }
  }
  return Status::OK();
}

}  // namespace pgtrail
