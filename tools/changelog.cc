#include "tools/changelog.h"
#include "tools/restore.h"

#include <algorithm>
#include <cstdint>
#include <map>
#include <memory>
#include <set>
#include <utility>
#include <nlohmann/json.hpp>
#include <regex.h>
#include <tuple>
#include <vector>

#include <rocksdb/db.h>

#include "storage/coding.h"
#include "storage/keys.h"
#include "storage/pg_time.h"
#include "storage/store.h"

namespace pgtrail {
namespace {

const char* OpName(pb::Change::Op op) {
  switch (op) {
    case pb::Change::INSERT: return "insert";
    case pb::Change::UPDATE: return "update";
    case pb::Change::DELETE: return "delete";
    case pb::Change::TRUNCATE: return "truncate";
    case pb::Change::MESSAGE: return "message";
    default: return "unknown";
  }
}

// The prefix of the logical messages that carry schema changes.
constexpr std::string_view kDdlPrefix = "pgtrail.ddl";

// What a change is, for people and for --op: the row operations, and for
// logical messages: "ddl" (schema changes), "mark" (named restore points),
// "message" (anything else).
std::string ChangeKind(const pb::Change& c) {
  if (c.op() != pb::Change::MESSAGE) return OpName(c.op());
  if (c.prefix() == kDdlPrefix) return "ddl";
  if (c.prefix() == "pgtrail.mark") return "mark";
  return "message";
}

bool IsValue(const pb::Tuple& t, int i) {
  return i < static_cast<int>(t.kinds().size()) && i < t.values_size() &&
         (t.kinds()[i] == 't' || t.kinds()[i] == 'b');
}

// A value for people: NULL, <unknown> for an uncaptured TOAST value, or
// 'text' with quotes doubled and control characters made visible.
std::string ShowValue(const pb::Tuple& t, int i) {
  if (i >= static_cast<int>(t.kinds().size())) return "?";
  switch (t.kinds()[i]) {
    case 'n': return "NULL";
    case '?': return "<unknown>";
    case 'u': return "<unchanged>";
    default: break;
  }
  std::string out = "'";
  for (char c : t.values(i)) {
    switch (c) {
      case '\'': out += "''"; break;
      case '\n': out += "\\n"; break;
      case '\t': out += "\\t"; break;
      case '\r': out += "\\r"; break;
      case '\\': out += "\\\\"; break;
      default: out += c;
    }
  }
  return out + "'";
}

std::string JsonValue(const pb::Tuple& t, int i) {
  if (!IsValue(t, i)) return "null";
  return "\"" + JsonEscape(t.values(i)) + "\"";
}

bool SameValue(const pb::Tuple& a, const pb::Tuple& b, int i) {
  if (i >= static_cast<int>(a.kinds().size()) || i >= static_cast<int>(b.kinds().size())) {
    return false;
  }
  if (a.kinds()[i] != b.kinds()[i]) return false;
  return !IsValue(a, i) || a.values(i) == b.values(i);
}

// A POSIX extended regular expression (as grep -E). glibc's matcher does
// not recurse per character, so values of any size are safe to search.
class Pattern {
 public:
  static Result<std::unique_ptr<Pattern>> Compile(const std::string& text) {
    std::unique_ptr<Pattern> p(new Pattern());
    int rc = ::regcomp(&p->re_, text.c_str(), REG_EXTENDED | REG_NOSUB);
    if (rc != 0) {
      char buf[256];
      ::regerror(rc, &p->re_, buf, sizeof(buf));
      p->compiled_ = false;
      return Status::InvalidArgument("invalid PATTERN \"" + text +
                                     "\": not a POSIX extended regular expression (" + buf + ")");
    }
    return p;
  }
  ~Pattern() {
    if (compiled_) ::regfree(&re_);
  }
  bool Search(const std::string& s) const { return ::regexec(&re_, s.c_str(), 0, nullptr, 0) == 0; }

 private:
  Pattern() = default;
  regex_t re_{};
  bool compiled_ = true;
};

}  // namespace

std::string PatternLiteral(std::string_view pattern) {
  if (!pattern.empty() && pattern.front() == '^') pattern.remove_prefix(1);
  if (!pattern.empty() && pattern.back() == '$') pattern.remove_suffix(1);
  // Printable ASCII (bytes match characters whatever the locale) and no
  // ERE metacharacter.
  constexpr std::string_view kSpecial = ".[]()*+?{}|\\^$";
  for (char c : pattern) {
    if (c < 0x20 || c > 0x7e || kSpecial.find(c) != std::string_view::npos) return "";
  }
  return std::string(pattern);
}

namespace {

class Grep {
 public:
  Grep(const ChangelogOptions& options, Store* store, std::ostream& out)
      : options_(options), store_(store), out_(out) {}

  Status Run() {
    if (!options_.pattern.empty()) {
      ASSIGN_OR_RETURN(pattern_, Pattern::Compile(options_.pattern));
    }
    if (!options_.since.empty()) {
      ASSIGN_OR_RETURN(since_, ParseTimestamp(options_.since));
    }
    if (!options_.until.empty()) {
      ASSIGN_OR_RETURN(until_, ParseTimestamp(options_.until));
    }
    uint64_t from = 0;
    if (since_) {
      // Every transaction before the first whose running-max commit time
      // reaches `since` committed earlier than `since`.
      ASSIGN_OR_RETURN(auto first, store_->FirstCommitLaterThan(*since_ - 1));
      if (!first) return Status::OK();
      from = *first;
    }
    ASSIGN_OR_RETURN(pb::StoreMeta meta, store_->ReadMeta());
    if (!options_.key.empty()) return KeyHistory(meta);
    Status inner;
    RETURN_IF_ERROR(store_->ForEachChangeInRange(
        from, meta.last_commit_lsn(),
        [&](const pb::TxnHeader& h) {
          return !(since_ && h.commit_time_us() < *since_) &&
                 !(until_ && h.commit_time_us() > *until_);
        },
        [&](const pb::TxnHeader& h, uint32_t seq, const pb::Change& c) {
          inner = OneChange(h, seq, c);
          return inner.ok();
        },
        SearchPrefilter()));
    return inner;
  }

 private:
  Result<const pb::Relation*> Layout(uint32_t relid, uint64_t lsn,
                                     uint32_t seq = UINT32_MAX) {
    auto key = std::make_tuple(relid, lsn, seq);
    auto it = layouts_.find(key);
    if (it == layouts_.end()) {
      ASSIGN_OR_RETURN(auto rel, store_->GetRelation(relid, lsn, seq));
      if (!rel) {
        pb::Relation unknown;
        unknown.set_relid(relid);
        unknown.set_nspname("?");
        unknown.set_relname("oid " + std::to_string(relid));
        rel = unknown;
      }
      it = layouts_.emplace(key, std::move(*rel)).first;
    }
    return &it->second;
  }

  // What a change that PATTERN can match contains, one of (none: no
  // prefilter). Schema changes are matched on their query as decoded from
  // JSON, where any character may be written escaped: they are always read.
  std::vector<std::string_view> SearchPrefilter() {
    literal_ = PatternLiteral(options_.pattern);
    if (literal_.empty()) return {};
    return {literal_, kDdlPrefix};
  }

  // --key: one row's history. The key's values are given in key-column
  // order. Where the table had this key, through the row index, without
  // reading any other change. Where it had no key (a table loaded before its
  // primary key was added, as pgbench -i and pg_restore do) or another one,
  // by reading that era's changes of the table and comparing the values of
  // the key's columns, by name.
  Status KeyHistory(const pb::StoreMeta& meta) {
    ASSIGN_OR_RETURN(auto layouts, store_->RelationsAt(meta.last_commit_lsn()));
    std::vector<const pb::Relation*> matches;
    for (const pb::Relation& rel : layouts) {
      if (TableMatches(rel)) matches.push_back(&rel);
    }
    if (matches.size() != 1) {
      return Status::InvalidArgument(
          matches.empty() ? "--key: no table \"" + options_.table + "\" in the store"
                          : "--key: \"" + options_.table +
                                "\" names several tables; give schema.table");
    }
    const pb::Relation& rel = *matches.front();
    if (IsMultiset(rel)) {
      return Status::InvalidArgument("--key: table " + rel.nspname() + "." + rel.relname() +
                                     " has no key (its rows are found by PATTERN)");
    }
    std::vector<std::string> values;
    for (size_t start = 0;;) {
      const size_t comma = options_.key.find(',', start);
      values.push_back(options_.key.substr(start, comma - start));
      if (comma == std::string::npos) break;
      start = comma + 1;
    }
    const std::vector<std::string> key_names = KeyNames(rel);
    if (values.size() != key_names.size()) {
      return Status::InvalidArgument("--key: " + rel.nspname() + "." + rel.relname() + " has " +
                                     std::to_string(key_names.size()) + " key columns, got " +
                                     std::to_string(values.size()) + " values");
    }
    const uint32_t relid = rel.relid();
    auto wanted = [this](const pb::TxnHeader& h) {
      return !(since_ && h.commit_time_us() < *since_) && !(until_ && h.commit_time_us() > *until_);
    };
    // The row's changes from both sources, in (commit LSN, seq) order.
    std::map<std::pair<uint64_t, uint32_t>, std::pair<pb::TxnHeader, pb::Change>> found;

    std::vector<keys::KeyValue> key_values;
    for (const std::string& v : values) key_values.push_back({false, v});
    std::string prefix = keys::RowIdxPrefix(relid);
    keys::AppendRowKey(&prefix, key_values);
    std::unique_ptr<rocksdb::Iterator> it(
        store_->db()->NewIterator(rocksdb::ReadOptions(), store_->cf(Family::kRowIdx)));
    for (it->Seek(prefix); it->Valid() && it->key().starts_with(prefix); it->Next()) {
      uint32_t found_relid, seq;
      uint64_t lsn;
      std::string_view rowkey;
      RETURN_IF_ERROR(keys::ParseRowIdxKey(std::string_view(it->key().data(), it->key().size()),
                                           &found_relid, &rowkey, &lsn, &seq));
      if (rowkey.size() + 4 != prefix.size() || lsn > meta.last_commit_lsn()) continue;
      ASSIGN_OR_RETURN(auto h, store_->GetTxn(lsn));
      if (!h || !wanted(*h)) continue;  // not durable yet, or outside --since/--until
      ASSIGN_OR_RETURN(pb::Change c, store_->GetChange(lsn, seq));
      // An entry made under another key whose values happen to be the same.
      ASSIGN_OR_RETURN(const pb::Relation* layout,
                       Layout(relid, c.relation_lsn(), c.relation_seq()));
      if (IsMultiset(*layout) || KeyNames(*layout) != key_names) continue;
      found.emplace(std::make_pair(lsn, seq), std::make_pair(*h, std::move(c)));
    }
    if (!it->status().ok()) return Status::IOError(it->status().ToString());

    // Eras without this key: the versions, and the commit LSNs their changes
    // can have (from the version's own to the next one's).
    ASSIGN_OR_RETURN(auto versions, store_->RelationVersions(relid));
    std::set<std::pair<uint64_t, uint32_t>> other;
    std::vector<std::pair<uint64_t, uint64_t>> ranges;
    for (size_t i = 0; i < versions.size(); i++) {
      const Store::RelationVersion& v = versions[i];
      if (!IsMultiset(v.rel) && KeyNames(v.rel) == key_names) continue;
      other.emplace(v.lsn, v.seq);
      const uint64_t to = i + 1 < versions.size() ? versions[i + 1].lsn : meta.last_commit_lsn();
      if (!ranges.empty() && ranges.back().second >= v.lsn) {
        ranges.back().second = std::max(ranges.back().second, to);
      } else {
        ranges.emplace_back(v.lsn, to);
      }
    }
    // A change with the key's values has the longest of them in its stored
    // bytes: the others are skipped unparsed.
    const std::string& longest = *std::max_element(
        values.begin(), values.end(),
        [](const std::string& a, const std::string& b) { return a.size() < b.size(); });
    Status inner;
    // The version of the change before, and where the key's columns are in it
    // (a transaction's changes of one table mostly share one).
    std::pair<uint64_t, uint32_t> version{UINT64_MAX, 0};
    bool other_key = false;
    std::vector<int> positions;
    for (const auto& [from, to] : ranges) {
      RETURN_IF_ERROR(store_->ForEachChangeInRange(
          from, std::min(to, meta.last_commit_lsn()),
          [&](const pb::TxnHeader& h) {
            if (!wanted(h)) return false;
            if (!h.tables_listed()) return true;  // an older agent's header: read it
            for (const pb::TxnTable& t : h.tables()) {
              if (t.relid() == relid) return true;
            }
            return false;
          },
          [&](const pb::TxnHeader& h, uint32_t seq, const pb::Change& c) {
            if (c.relid() != relid || c.op() == pb::Change::TRUNCATE) return true;
            if (version != std::make_pair(c.relation_lsn(), c.relation_seq())) {
              version = {c.relation_lsn(), c.relation_seq()};
              other_key = other.count(version) > 0;
              if (other_key) {
                Result<const pb::Relation*> layout = Layout(relid, version.first, version.second);
                if (!layout.ok()) {
                  inner = layout.status();
                  return false;
                }
                positions = ColumnPositions(**layout, key_names);
              }
            }
            if (!other_key) return true;
            if (HasValues(c.new_tuple(), positions, values) ||
                HasValues(c.old_tuple(), positions, values)) {
              found.emplace(std::make_pair(h.commit_lsn(), seq), std::make_pair(h, c));
            }
            return true;
          },
          {longest}));
      RETURN_IF_ERROR(inner);
    }
    for (const auto& [at, change] : found) {
      RETURN_IF_ERROR(OneChange(change.first, at.second, change.second));
    }
    return Status::OK();
  }

  static std::vector<std::string> KeyNames(const pb::Relation& rel) {
    std::vector<std::string> names;
    for (const pb::Column& c : rel.columns()) {
      if (c.key()) names.push_back(c.name());
    }
    return names;
  }

  // Where the columns `names` are in `layout`; -1 for one it lacks.
  static std::vector<int> ColumnPositions(const pb::Relation& layout,
                                          const std::vector<std::string>& names) {
    std::vector<int> positions;
    for (const std::string& name : names) {
      int i = 0;
      while (i < layout.columns_size() && layout.columns(i).name() != name) i++;
      positions.push_back(i < layout.columns_size() ? i : -1);
    }
    return positions;
  }

  // Whether `tuple` holds `values` at `positions`.
  static bool HasValues(const pb::Tuple& tuple, const std::vector<int>& positions,
                        const std::vector<std::string>& values) {
    if (tuple.values_size() == 0) return false;
    for (size_t k = 0; k < positions.size(); k++) {
      const int i = positions[k];
      if (i < 0 || !IsValue(tuple, i) || tuple.values(i) != values[k]) return false;
    }
    return true;
  }

  bool TableMatches(const pb::Relation& rel) const {
    if (options_.table.empty()) return true;
    const std::string& t = options_.table;  // "schema.table" or "table"
    const std::string& nsp = rel.nspname();
    if (t.size() == nsp.size() + 1 + rel.relname().size() && t.compare(0, nsp.size(), nsp) == 0 &&
        t[nsp.size()] == '.' && t.compare(nsp.size() + 1, std::string::npos, rel.relname()) == 0) {
      return true;
    }
    return t.find('.') == std::string::npos && t == rel.relname();
  }

  bool PatternMatches(const pb::Change& c) const {
    if (!pattern_) return true;
    for (const pb::Tuple* t : {&c.new_tuple(), &c.old_tuple()}) {
      for (int i = 0; i < t->values_size(); i++) {
        if (IsValue(*t, i) && pattern_->Search(t->values(i))) return true;
      }
    }
    return c.op() == pb::Change::MESSAGE &&
           (pattern_->Search(c.content()) || pattern_->Search(c.prefix()));
  }

  Status OneChange(const pb::TxnHeader& h, uint32_t seq, const pb::Change& c) {
    if (!options_.op.empty() && options_.op != ChangeKind(c)) return Status::OK();
    if (c.op() == pb::Change::TRUNCATE) {
      std::vector<const pb::Relation*> rels;
      bool any = false;
      for (uint32_t relid : c.truncate_relids()) {
        ASSIGN_OR_RETURN(const pb::Relation* rel, Layout(relid, h.commit_lsn()));
        rels.push_back(rel);
        any = any || TableMatches(*rel);
      }
      if (!any || pattern_) return Status::OK();
      Header(h, c, rels.empty() ? nullptr : rels.front());
      if (json_()) {
        out_ << ",\"tables\":[";
        for (size_t i = 0; i < rels.size(); i++) {
          out_ << (i ? "," : "") << "\"" << JsonEscape(rels[i]->nspname() + "." + rels[i]->relname())
               << "\"";
        }
        out_ << "],\"cascade\":" << ((c.truncate_flags() & 1) ? "true" : "false")
             << ",\"restart_identity\":" << ((c.truncate_flags() & 2) ? "true" : "false") << "}\n";
      } else {
        for (size_t i = 0; i < rels.size(); i++) {
          out_ << (i ? ", " : " ") << rels[i]->nspname() << "." << rels[i]->relname();
        }
        if (c.truncate_flags() & 1) out_ << " CASCADE";
        if (c.truncate_flags() & 2) out_ << " RESTART IDENTITY";
        out_ << "\n";
      }
      return Status::OK();
    }
    if (c.op() == pb::Change::MESSAGE) {
      if (!options_.table.empty()) return Status::OK();
      const std::string kind = ChangeKind(c);
      if (kind == "ddl") return SchemaChange(h, c);
      if (!PatternMatches(c)) return Status::OK();
      Header(h, c, nullptr);
      if (kind == "mark") {
        const std::string name = JsonStringField(c.content(), "name").value_or("?");
        if (json_()) {
          out_ << ",\"name\":\"" << JsonEscape(name) << "\"}\n";
        } else {
          out_ << " " << name << "\n";
        }
        return Status::OK();
      }
      if (json_()) {
        out_ << ",\"prefix\":\"" << JsonEscape(c.prefix()) << "\",\"content\":\""
             << JsonEscape(c.content()) << "\"}\n";
      } else {
        out_ << " " << c.prefix() << ": " << c.content() << "\n";
      }
      return Status::OK();
    }

    ASSIGN_OR_RETURN(const pb::Relation* rel, Layout(c.relid(), c.relation_lsn(), c.relation_seq()));
    if (!TableMatches(*rel) || !PatternMatches(c)) return Status::OK();
    const int ncols = rel->columns_size();
    // The row's image before an update: the full old row, or its last image.
    std::optional<pb::Tuple> before;
    if (c.op() == pb::Change::UPDATE) {
      if (c.old_kind() == 'O') {
        before = c.old_tuple();
      } else {
        std::string rowkey;
        const pb::Tuple& identity = c.old_kind() == 'K' ? c.old_tuple() : c.new_tuple();
        if (AppendTupleRowKey(&rowkey, *rel, identity).ok()) {
          ASSIGN_OR_RETURN(before, store_->PreviousImage(rel->relid(), rowkey, h.commit_lsn(), seq));
        }
      }
    }
    const pb::Tuple& key_source =
        c.op() == pb::Change::DELETE ? c.old_tuple()
                                     : (c.old_kind() == 'K' ? c.old_tuple() : c.new_tuple());
    const bool multiset = IsMultiset(*rel);
    Header(h, c, rel);
    if (json_()) {
      out_ << ",\"key\":{";
      bool first = true;
      for (int i = 0; i < ncols; i++) {
        if (multiset || !rel->columns(i).key()) continue;
        out_ << (first ? "" : ",") << "\"" << JsonEscape(rel->columns(i).name())
             << "\":" << JsonValue(key_source, i);
        first = false;
      }
      out_ << "}";
      auto object = [&](const char* name, const pb::Tuple& t, bool key_only) {
        out_ << ",\"" << name << "\":{";
        bool first_col = true;
        for (int i = 0; i < ncols && i < static_cast<int>(t.kinds().size()); i++) {
          if (key_only && !rel->columns(i).key()) continue;
          out_ << (first_col ? "" : ",") << "\"" << JsonEscape(rel->columns(i).name())
               << "\":" << JsonValue(t, i);
          first_col = false;
        }
        out_ << "}";
      };
      if (c.op() == pb::Change::UPDATE) {
        if (before) object("old", *before, false);
        out_ << ",\"changed\":[";
        bool first_col = true;
        for (int i = 0; i < ncols; i++) {
          if (before && SameValue(*before, c.new_tuple(), i)) continue;
          out_ << (first_col ? "" : ",") << "\"" << JsonEscape(rel->columns(i).name()) << "\"";
          first_col = false;
        }
        out_ << "]";
      }
      if (c.op() == pb::Change::DELETE) {
        object("old", c.old_tuple(), c.old_kind() == 'K');
      } else {
        object("new", c.new_tuple(), false);
      }
      out_ << "}\n";
      return Status::OK();
    }
    // Text: the key, then the values (insert), the changed columns (update).
    if (!multiset) {
      std::string names, values;
      for (int i = 0; i < ncols; i++) {
        if (!rel->columns(i).key()) continue;
        names += (names.empty() ? "" : ", ") + rel->columns(i).name();
        values += (values.empty() ? "" : ", ") + ShowValue(key_source, i);
      }
      out_ << " (" << names << ")=(" << values << ")";
    }
    if (c.op() == pb::Change::INSERT || (multiset && c.op() == pb::Change::DELETE)) {
      const pb::Tuple& t = c.op() == pb::Change::INSERT ? c.new_tuple() : c.old_tuple();
      for (int i = 0; i < ncols; i++) {
        out_ << "\n    " << rel->columns(i).name() << ": " << ShowValue(t, i);
      }
    } else if (c.op() == pb::Change::UPDATE) {
      for (int i = 0; i < ncols; i++) {
        if (before && SameValue(*before, c.new_tuple(), i)) continue;
        out_ << "\n    " << rel->columns(i).name() << ": "
             << (before ? ShowValue(*before, i) : std::string("?")) << " → "
             << ShowValue(c.new_tuple(), i);
      }
    }
    out_ << "\n";
    return Status::OK();
  }

  // One DDL statement: its tag and text (the sql_drop notice of the same
  // statement is not shown again).
  Status SchemaChange(const pb::TxnHeader& h, const pb::Change& c) {
    nlohmann::json j = nlohmann::json::parse(c.content(), nullptr, /*allow_exceptions=*/false);
    if (StringField(j, "event").value_or("") != "ddl_command_end") return Status::OK();
    const std::string tag = StringField(j, "tag").value_or("?");
    const std::string query = StringField(j, "query").value_or("");
    if (pattern_ && !pattern_->Search(query) && !pattern_->Search(tag)) return Status::OK();
    Header(h, c, nullptr);
    if (json_()) {
      out_ << ",\"tag\":\"" << JsonEscape(tag) << "\",\"query\":\"" << JsonEscape(query)
           << "\"}\n";
    } else {
      // One line per change: runs of white space (newlines too) become one space.
      std::string shown;
      for (char ch : query) {
        const bool space = ch == ' ' || ch == '\n' || ch == '\t' || ch == '\r';
        if (space && (shown.empty() || shown.back() == ' ')) continue;
        shown.push_back(space ? ' ' : ch);
      }
      while (!shown.empty() && (shown.back() == ' ' || shown.back() == ';')) shown.pop_back();
      out_ << " " << tag << ": " << shown << "\n";
    }
    return Status::OK();
  }

  void Header(const pb::TxnHeader& h, const pb::Change& c, const pb::Relation* rel) {
    if (json_()) {
      out_ << "{\"time\":\"" << FormatTimestampUtc(h.commit_time_us()) << "\",\"xid\":" << h.xid()
           << ",\"lsn\":\"" << FormatLsn(h.commit_lsn()) << "\",\"op\":\"" << ChangeKind(c)
           << "\"";
      if (rel != nullptr && c.op() != pb::Change::TRUNCATE) {
        out_ << ",\"schema\":\"" << JsonEscape(rel->nspname()) << "\",\"table\":\""
             << JsonEscape(rel->relname()) << "\"";
      }
      return;
    }
    std::string op = ChangeKind(c);
    for (char& ch : op) ch = static_cast<char>(std::toupper(static_cast<unsigned char>(ch)));
    out_ << FormatTimestampUtc(h.commit_time_us()) << "  xid " << h.xid() << "  "
         << FormatLsn(h.commit_lsn()) << "  " << op;
    if (rel != nullptr && c.op() != pb::Change::TRUNCATE) {
      out_ << " " << rel->nspname() << "." << rel->relname();
    }
  }

  bool json_() const { return options_.format == "json"; }

  const ChangelogOptions& options_;
  Store* store_;
  std::ostream& out_;
  std::unique_ptr<Pattern> pattern_;
  std::string literal_;  // PatternLiteral of the pattern
  std::optional<int64_t> since_;
  std::optional<int64_t> until_;
  std::map<std::tuple<uint32_t, uint64_t, uint32_t>, pb::Relation> layouts_;
};

}  // namespace

std::string JsonEscape(std::string_view s) {
  std::string out;
  out.reserve(s.size());
  for (unsigned char c : s) {
    switch (c) {
      case '"': out += "\\\""; break;
      case '\\': out += "\\\\"; break;
      case '\n': out += "\\n"; break;
      case '\r': out += "\\r"; break;
      case '\t': out += "\\t"; break;
      case '\b': out += "\\b"; break;
      case '\f': out += "\\f"; break;
      default:
        if (c < 0x20) {
          char buf[8];
          std::snprintf(buf, sizeof(buf), "\\u%04x", c);
          out += buf;
        } else {
          out += static_cast<char>(c);
        }
    }
  }
  return out;
}

Status ValidateChangelogOptions(const ChangelogOptions& options) {
  if (!options.key.empty() && options.table.empty()) {
    return Status::InvalidArgument("--key needs --table: the key of which table?");
  }
  if (options.format != "text" && options.format != "json") {
    return Status::InvalidArgument("invalid --format \"" + options.format +
                                   "\": expected text or json");
  }
  static const char* const kOps[] = {"",         "insert", "update", "delete",
                                     "truncate", "ddl",    "mark",   "message"};
  if (std::find(std::begin(kOps), std::end(kOps), options.op) == std::end(kOps)) {
    return Status::InvalidArgument("invalid --op \"" + options.op +
                                   "\": expected insert, update, delete, truncate, ddl, mark or message");
  }
  if (!options.pattern.empty()) RETURN_IF_ERROR(Pattern::Compile(options.pattern).status());
  if (!options.since.empty()) RETURN_IF_ERROR(ParseTimestamp(options.since).status());
  if (!options.until.empty()) RETURN_IF_ERROR(ParseTimestamp(options.until).status());
  return Status::OK();
}

Status RunChangelogGrep(const ChangelogOptions& options, std::ostream& out) {
  RETURN_IF_ERROR(ValidateChangelogOptions(options));
  ASSIGN_OR_RETURN(auto store, Store::OpenForRead(options.store_path));
  RETURN_IF_ERROR(store->CatchUp());
  Grep grep(options, store.get(), out);
  return grep.Run();
}

}  // namespace pgtrail
