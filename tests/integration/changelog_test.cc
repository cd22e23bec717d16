// changelog grep against a real agent: what a committed change looks like in
// text and JSON, that rolled-back work never shows, that output follows
// commit order, and that every filter selects exactly what it names.
//
// The suite shares one cluster and one agent. Database "shop" has
//   accounts (id int PRIMARY KEY, owner text, balance numeric)
//   events   (kind text, note text) REPLICA IDENTITY FULL, no key
// and the transactions below (T1..T9) are made once, each with its xid, the
// WAL insert position and the clock read just before and just after COMMIT.
#include <gtest/gtest.h>

#include <algorithm>
#include <chrono>
#include <csignal>
#include <cstdint>
#include <filesystem>
#include <map>
#include <memory>
#include <optional>
#include <regex>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include "storage/coding.h"
#include "storage/pg_time.h"
#include "tests/integration/pg_cluster.h"

namespace pgtrail::testing {
namespace {

using Clock = std::chrono::steady_clock;
using std::chrono::milliseconds;
using std::chrono::seconds;



// --- A small strict JSON reader (RFC 8259), enough to check the output ------

struct Json {
  enum Kind { kNull, kBool, kNumber, kString, kArray, kObject };
  Kind kind = kNull;
  std::string text;  // a string's value, or a number's / bool's literal
  std::vector<Json> items;
  std::vector<std::pair<std::string, Json>> fields;

  const Json* Get(const std::string& name) const {
    for (const auto& [key, value] : fields) {
      if (key == name) return &value;
    }
    return nullptr;
  }
  // Field `name` if it is a string, else "<missing>".
  std::string Str(const std::string& name) const {
    const Json* v = Get(name);
    return v != nullptr && v->kind == kString ? v->text : "<missing>";
  }
};

class JsonReader {
 public:
  explicit JsonReader(std::string_view in) : in_(in) {}

  // The one value that makes up the whole input, or nullopt.
  std::optional<Json> ReadDocument() {
    Json v;
    if (!Value(&v, 0)) return std::nullopt;
    Space();
    if (pos_ != in_.size()) return std::nullopt;
    return v;
  }

 private:
  void Space() {
    while (pos_ < in_.size() && (in_[pos_] == ' ' || in_[pos_] == '\t' || in_[pos_] == '\n' ||
                                 in_[pos_] == '\r')) {
      pos_++;
    }
  }
  bool Eat(char c) {
    Space();
    if (pos_ < in_.size() && in_[pos_] == c) {
      pos_++;
      return true;
    }
    return false;
  }
  bool Literal(std::string_view word) {
    if (in_.substr(pos_, word.size()) != word) return false;
    pos_ += word.size();
    return true;
  }
  static void AppendUtf8(std::string* out, uint32_t cp) {
    if (cp < 0x80) {
      out->push_back(static_cast<char>(cp));
    } else if (cp < 0x800) {
      out->push_back(static_cast<char>(0xC0 | (cp >> 6)));
      out->push_back(static_cast<char>(0x80 | (cp & 0x3F)));
    } else {
      out->push_back(static_cast<char>(0xE0 | (cp >> 12)));
      out->push_back(static_cast<char>(0x80 | ((cp >> 6) & 0x3F)));
      out->push_back(static_cast<char>(0x80 | (cp & 0x3F)));
    }
  }
  bool String(std::string* out) {
    if (!Eat('"')) return false;
    while (pos_ < in_.size()) {
      const unsigned char c = static_cast<unsigned char>(in_[pos_++]);
      if (c == '"') return true;
      if (c < 0x20) return false;  // control characters must be escaped
      if (c != '\\') {
        out->push_back(static_cast<char>(c));
        continue;
      }
      if (pos_ >= in_.size()) return false;
      const char e = in_[pos_++];
      switch (e) {
        case '"': out->push_back('"'); break;
        case '\\': out->push_back('\\'); break;
        case '/': out->push_back('/'); break;
        case 'b': out->push_back('\b'); break;
        case 'f': out->push_back('\f'); break;
        case 'n': out->push_back('\n'); break;
        case 'r': out->push_back('\r'); break;
        case 't': out->push_back('\t'); break;
        case 'u': {
          if (pos_ + 4 > in_.size()) return false;
          uint32_t cp = 0;
          for (int i = 0; i < 4; i++) {
            const char h = in_[pos_++];
            cp <<= 4;
            if (h >= '0' && h <= '9') cp |= h - '0';
            else if (h >= 'a' && h <= 'f') cp |= h - 'a' + 10;
            else if (h >= 'A' && h <= 'F') cp |= h - 'A' + 10;
            else return false;
          }
          AppendUtf8(out, cp);
          break;
        }
        default: return false;
      }
    }
    return false;
  }
  bool Number(std::string* out) {
    static const std::regex kNumber(R"(^-?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)?)");
    std::match_results<std::string_view::const_iterator> m;
    if (!std::regex_search(in_.begin() + pos_, in_.end(), m, kNumber)) return false;
    *out = m.str(0);
    pos_ += out->size();
    return !out->empty();
  }
  bool Value(Json* v, int depth) {
    if (depth > 32) return false;
    Space();
    if (pos_ >= in_.size()) return false;
    const char c = in_[pos_];
    if (c == '{') {
      v->kind = Json::kObject;
      pos_++;
      if (Eat('}')) return true;
      do {
        std::string key;
        Json value;
        if (!String(&key) || !Eat(':') || !Value(&value, depth + 1)) return false;
        if (v->Get(key) != nullptr) return false;  // duplicate key
        v->fields.emplace_back(std::move(key), std::move(value));
      } while (Eat(','));
      return Eat('}');
    }
    if (c == '[') {
      v->kind = Json::kArray;
      pos_++;
      if (Eat(']')) return true;
      do {
        Json item;
        if (!Value(&item, depth + 1)) return false;
        v->items.push_back(std::move(item));
      } while (Eat(','));
      return Eat(']');
    }
    if (c == '"') {
      v->kind = Json::kString;
      return String(&v->text);
    }
    if (Literal("true") || Literal("false")) {
      v->kind = Json::kBool;
      return true;
    }
    if (Literal("null")) return true;
    v->kind = Json::kNumber;
    return Number(&v->text);
  }

  std::string_view in_;
  size_t pos_ = 0;
};

std::vector<std::string> StringItems(const Json* array) {
  std::vector<std::string> out;
  if (array == nullptr) return {"<missing>"};
  for (const Json& item : array->items) out.push_back(item.kind == Json::kString ? item.text : "?");
  return out;
}

// --- Parsed text output ------------------------------------------------------

// One change in text form: the header line and its indented detail lines.
struct TextRecord {
  std::string time;
  std::string xid;
  std::string lsn;
  std::string op;    // INSERT, UPDATE, ...
  std::string rest;  // "public.accounts (id)=('1')"
  std::vector<std::string> details;  // without the 4-space indent
  std::string header;

  std::string Summary() const { return "xid " + xid + " " + op + " " + rest; }
};

// Parses the whole text output; a line that fits neither form fails the test.
std::vector<TextRecord> ParseText(const std::string& out) {
  static const std::regex kHeader(
      R"(^(\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.\d{6}\+00)  xid (\d+)  ([0-9A-F]+/[0-9A-F]+)  ([A-Z]+)(.*)$)");
  std::vector<TextRecord> records;
  for (const std::string& line : Lines(out)) {
    std::smatch m;
    if (line.rfind("    ", 0) == 0 && !records.empty()) {
      records.back().details.push_back(line.substr(4));
    } else if (std::regex_match(line, m, kHeader)) {
      TextRecord r;
      r.header = line;
      r.time = m[1];
      r.xid = m[2];
      r.lsn = m[3];
      r.op = m[4];
      r.rest = m[5].str().empty() ? "" : m[5].str().substr(1);
      records.push_back(r);
    } else {
      ADD_FAILURE() << "unexpected changelog line: \"" << line << "\"\nin:\n" << out;
    }
  }
  return records;
}

std::vector<std::string> Summaries(const std::vector<TextRecord>& records) {
  std::vector<std::string> out;
  for (const auto& r : records) out.push_back(r.Summary());
  return out;
}

// --- The suite's history ----------------------------------------------------

struct Txn {
  std::string xid;
  uint64_t lsn_lo = 0;   // WAL insert position before COMMIT
  uint64_t lsn_hi = 0;   // and after
  int64_t time_lo = 0;   // clock before COMMIT (Unix µs)
  int64_t time_hi = 0;   // and after
  std::string after;     // the instant after COMMIT, "....+00"
};

struct History {
  PgCluster cluster;
  TempDir dir;
  std::string store;
  std::unique_ptr<AgentProcess> agent;
  std::map<std::string, Txn> txns;  // by name: "T1".."T10", "K1".."K5"
  std::string error;
};

History* g_history = nullptr;

// A value that JSON must escape: quote, backslash, newline, tab, a control
// character, and non-ASCII text.
constexpr char kTrickySql[] = "say \"hi\"\\\\ C:\\\\dir\\n\\tx \\x01 \u00e9t\u00e9 \u2192";
constexpr char kTricky[] = "say \"hi\"\\ C:\\dir\n\tx \x01 \u00e9t\u00e9 \u2192";

constexpr char kClockSql[] =
    "to_char(clock_timestamp() AT TIME ZONE 'UTC', 'YYYY-MM-DD HH24:MI:SS.US') || '+00'";

// Runs `sql` in one transaction on `conn` and records where and when it committed.
Result<Txn> Commit(PgConn* conn, const std::string& sql) {
  Txn t;
  RETURN_IF_ERROR(conn->Exec("BEGIN; " + sql));
  ASSIGN_OR_RETURN(PgResult in, conn->Query(std::string("SELECT txid_current()::text, "
                                                        "pg_current_wal_insert_lsn()::text, ") +
                                            kClockSql));
  t.xid = in.GetString(0, 0);
  RETURN_IF_ERROR(ParseLsn(in.Get(0, 1), &t.lsn_lo));
  ASSIGN_OR_RETURN(t.time_lo, ParseTimestamp(in.Get(0, 2)));
  RETURN_IF_ERROR(conn->Exec("COMMIT"));
  ASSIGN_OR_RETURN(PgResult out,
                   conn->Query(std::string("SELECT pg_current_wal_insert_lsn()::text, ") + kClockSql));
  RETURN_IF_ERROR(ParseLsn(out.Get(0, 0), &t.lsn_hi));
  t.after = out.GetString(0, 1);
  ASSIGN_OR_RETURN(t.time_hi, ParseTimestamp(t.after));
  return t;
}

bool WaitForLog(AgentProcess* agent, const std::string& needle, milliseconds timeout) {
  const Clock::time_point deadline = Clock::now() + timeout;
  while (Clock::now() < deadline) {
    if (Contains(agent->LogContents(), needle)) return true;
    if (!agent->IsRunning()) return false;
    std::this_thread::sleep_for(milliseconds(50));
  }
  return false;
}

// A cluster with database "shop" made by `schema`, and an agent streaming
// from it into a fresh store.
Status StartHistory(History* h, const std::string& schema) {
  RETURN_IF_ERROR(h->cluster.Start());
  RETURN_IF_ERROR(h->dir.Create("pgtrail-changelog-"));
  h->store = h->dir.path() + "/store";
  RETURN_IF_ERROR(h->cluster.CreateDatabase("shop"));
  RETURN_IF_ERROR(h->cluster.Exec("shop", schema));
  h->agent = std::make_unique<AgentProcess>();
  RETURN_IF_ERROR(h->agent->Start({"--source", h->cluster.ConnInfo("shop"), "--store", h->store}));
  if (!WaitForLog(h->agent.get(), "streaming from", seconds(30))) {
    return Status::Unavailable("the agent did not start streaming:\n" + h->agent->LogContents());
  }
  return Status::OK();
}

// Waits until the agent has stored everything committed so far.
Status FinishHistory(History* h) {
  if (!h->cluster.WaitForSlotCatchUp("pgtrail", h->cluster.CurrentWalLsn("shop"))) {
    return Status::Unavailable("the agent did not catch up:\n" + h->agent->LogContents());
  }
  return Status::OK();
}

Status MakeHistory(History* h) {
  RETURN_IF_ERROR(StartHistory(
      h,
      "CREATE TABLE accounts (id int PRIMARY KEY, owner text, balance numeric);"
      "CREATE TABLE events (kind text, note text);"
      "ALTER TABLE events REPLICA IDENTITY FULL;"
      "INSERT INTO accounts VALUES (1, 'alice', 100)"));
  ASSIGN_OR_RETURN(auto conn, h->cluster.Connect("shop"));
  auto commit = [&](const std::string& name, const std::string& sql) -> Status {
    ASSIGN_OR_RETURN(h->txns[name], Commit(conn.get(), sql));
    return Status::OK();
  };
  RETURN_IF_ERROR(commit("T1", "INSERT INTO accounts VALUES (2, 'bob', 200), (3, 'carol', 300)"));
  RETURN_IF_ERROR(commit("T2", "UPDATE accounts SET balance = 150 WHERE id = 1"));
  RETURN_IF_ERROR(commit("T3", "UPDATE accounts SET owner = 'robert', balance = 250 WHERE id = 2"));
  RETURN_IF_ERROR(conn->Exec(
      "BEGIN; INSERT INTO accounts VALUES (9, 'ROLLEDBACK-VALUE', 9);"
      "UPDATE accounts SET owner = 'ROLLEDBACK-VALUE' WHERE id = 1; ROLLBACK"));
  RETURN_IF_ERROR(commit("T4",
                         "INSERT INTO accounts VALUES (4, 'dave', 400);"
                         "SAVEPOINT s;"
                         "INSERT INTO accounts VALUES (5, 'SAVEPOINT-VALUE', 5);"
                         "UPDATE accounts SET owner = 'SAVEPOINT-VALUE' WHERE id = 4;"
                         "ROLLBACK TO SAVEPOINT s;"
                         "UPDATE accounts SET balance = 410 WHERE id = 4"));
  RETURN_IF_ERROR(commit("T5", "DELETE FROM accounts WHERE id = 3"));
  RETURN_IF_ERROR(commit("T6", "INSERT INTO events VALUES ('login', 'alpha'), ('login', 'beta')"));
  RETURN_IF_ERROR(commit("T7", "UPDATE events SET note = 'gamma' WHERE note = 'beta'"));
  RETURN_IF_ERROR(commit("T8", "DELETE FROM events WHERE note = 'alpha'"));
  RETURN_IF_ERROR(commit("T9", "TRUNCATE events"));
  RETURN_IF_ERROR(commit("T10", std::string("INSERT INTO accounts VALUES (6, E'") + kTrickySql +
                                    "', 1)"));
  return FinishHistory(h);
}

// A suite whose tests share one history, *G, made by Make on first use.
template <History** G, Status (*Make)(History*)>
class SharedHistoryTest : public ::testing::Test {
 protected:
  static void TearDownTestSuite() {
    delete *G;
    *G = nullptr;
  }

  void SetUp() override {
    if (*G == nullptr) {
      *G = new History();
      Status st = Make(*G);
      if (!st.ok()) (*G)->error = st.ToString();
    }
    ASSERT_TRUE((*G)->error.empty()) << "suite set-up failed: " << (*G)->error;
  }
};

class ChangelogTest : public SharedHistoryTest<&g_history, MakeHistory> {
 protected:

  const Txn& T(const std::string& name) { return g_history->txns.at(name); }
  std::string X(const std::string& name) { return T(name).xid; }

  // `changelog --store STORE grep args...`; fails the test unless it exits 0.
  std::string Grep(const std::vector<std::string>& args) {
    std::vector<std::string> argv = {kChangelogBin, "--store", g_history->store, "grep"};
    argv.insert(argv.end(), args.begin(), args.end());
    CommandResult r = RunCommand(argv, "", seconds(30));
    EXPECT_EQ(r.exit_code, 0) << r;
    EXPECT_EQ(r.stderr_text, "") << r;
    return r.stdout_text;
  }
  std::vector<TextRecord> GrepText(const std::vector<std::string>& args) {
    return ParseText(Grep(args));
  }
  std::vector<Json> GrepJson(std::vector<std::string> args) {
    args.push_back("--format");
    args.push_back("json");
    const std::string out = Grep(args);
    std::vector<Json> objects;
    for (const std::string& line : Lines(out)) {
      std::optional<Json> v = JsonReader(line).ReadDocument();
      if (!v || v->kind != Json::kObject) {
        ADD_FAILURE() << "not a JSON object: " << line;
        continue;
      }
      objects.push_back(std::move(*v));
    }
    return objects;
  }

  // What the whole history must print, in commit order.
  std::vector<std::string> AllSummaries() {
    return {
        "xid " + X("T1") + " INSERT public.accounts (id)=('2')",
        "xid " + X("T1") + " INSERT public.accounts (id)=('3')",
        "xid " + X("T2") + " UPDATE public.accounts (id)=('1')",
        "xid " + X("T3") + " UPDATE public.accounts (id)=('2')",
        "xid " + X("T4") + " INSERT public.accounts (id)=('4')",
        "xid " + X("T4") + " UPDATE public.accounts (id)=('4')",
        "xid " + X("T5") + " DELETE public.accounts (id)=('3')",
        "xid " + X("T6") + " INSERT public.events",
        "xid " + X("T6") + " INSERT public.events",
        "xid " + X("T7") + " UPDATE public.events",
        "xid " + X("T8") + " DELETE public.events",
        "xid " + X("T9") + " TRUNCATE public.events",
        "xid " + X("T10") + " INSERT public.accounts (id)=('6')",
    };
  }

  const Txn* TxnOfXid(const std::string& xid) {
    for (const auto& [name, t] : g_history->txns) {
      if (t.xid == xid) return &t;
    }
    return nullptr;
  }
};

TEST_F(ChangelogTest, RolledBackWorkNeverAppears) {
  for (const char* value : {"ROLLEDBACK-VALUE", "SAVEPOINT-VALUE"}) {
    EXPECT_EQ(Grep({value}), "") << value;
    EXPECT_EQ(Grep({value, "--format", "json"}), "") << value;
  }
  const std::string all = Grep({});
  EXPECT_FALSE(Contains(all, "ROLLEDBACK")) << all;
  EXPECT_FALSE(Contains(all, "SAVEPOINT")) << all;
  EXPECT_FALSE(Contains(all, "(id)=('5')")) << all;
  EXPECT_FALSE(Contains(all, "(id)=('9')")) << all;
}

TEST_F(ChangelogTest, TextListsEveryChangeOldestFirst) {
  EXPECT_EQ(Summaries(GrepText({})), AllSummaries());
}

TEST_F(ChangelogTest, TextHeaderCarriesCommitTimeXidAndLsn) {
  const std::vector<TextRecord> records = GrepText({});
  ASSERT_EQ(records.size(), AllSummaries().size());
  for (const TextRecord& r : records) {
    SCOPED_TRACE(r.header);
    const Txn* t = TxnOfXid(r.xid);
    ASSERT_NE(t, nullptr) << "xid " << r.xid << " is not one of ours";
    Result<int64_t> time = ParseTimestamp(r.time);
    ASSERT_OK(time);
    EXPECT_GE(*time, t->time_lo);
    EXPECT_LE(*time, t->time_hi);
    uint64_t lsn = 0;
    ASSERT_OK(ParseLsn(r.lsn, &lsn));
    EXPECT_GE(lsn, t->lsn_lo);
    EXPECT_LT(lsn, t->lsn_hi);
  }
  // One commit LSN and time per transaction.
  EXPECT_EQ(records[0].lsn, records[1].lsn);
  EXPECT_EQ(records[0].time, records[1].time);
  EXPECT_NE(records[1].lsn, records[2].lsn);
}

TEST_F(ChangelogTest, TextInsertListsEveryColumn) {
  const std::vector<TextRecord> records = GrepText({});
  ASSERT_EQ(records.size(), AllSummaries().size());
  EXPECT_EQ(records[0].details,
            (std::vector<std::string>{"id: '2'", "owner: 'bob'", "balance: '200'"}));
  EXPECT_EQ(records[7].details, (std::vector<std::string>{"kind: 'login'", "note: 'alpha'"}));
}

TEST_F(ChangelogTest, TextUpdateShowsOnlyChangedColumnsOldToNew) {
  const std::vector<TextRecord> records = GrepText({});
  ASSERT_EQ(records.size(), AllSummaries().size());
  // One column changed; the old value comes from the base snapshot.
  EXPECT_EQ(records[2].details, (std::vector<std::string>{"balance: '100' → '150'"}));
  // Two columns changed; id is unchanged and not listed.
  EXPECT_EQ(records[3].details,
            (std::vector<std::string>{"owner: 'bob' → 'robert'", "balance: '200' → '250'"}));
  // An update of a row inserted earlier in the same transaction.
  EXPECT_EQ(records[5].details, (std::vector<std::string>{"balance: '400' → '410'"}));
  // REPLICA IDENTITY FULL: the old row comes with the change.
  EXPECT_EQ(records[9].details, (std::vector<std::string>{"note: 'beta' → 'gamma'"}));
}

TEST_F(ChangelogTest, TextDeleteShowsKeyOrWholeRow) {
  const std::vector<TextRecord> records = GrepText({});
  ASSERT_EQ(records.size(), AllSummaries().size());
  EXPECT_EQ(records[6].details, std::vector<std::string>{});
  EXPECT_EQ(records[10].details, (std::vector<std::string>{"kind: 'login'", "note: 'alpha'"}));
}

TEST_F(ChangelogTest, TruncateAppearsWithOpTruncate) {
  const std::vector<TextRecord> text = GrepText({"--op", "truncate"});
  EXPECT_EQ(Summaries(text),
            std::vector<std::string>{"xid " + X("T9") + " TRUNCATE public.events"});
  const std::vector<Json> json = GrepJson({"--op", "truncate"});
  ASSERT_EQ(json.size(), 1u);
  EXPECT_EQ(json[0].Str("op"), "truncate");
  EXPECT_EQ(StringItems(json[0].Get("tables")), std::vector<std::string>{"public.events"});
}

TEST_F(ChangelogTest, JsonLinesAreObjectsWithEveryField) {
  const std::vector<TextRecord> text = GrepText({});
  const std::vector<Json> json = GrepJson({});
  ASSERT_EQ(json.size(), text.size());
  for (size_t i = 0; i < json.size(); i++) {
    SCOPED_TRACE(text[i].header);
    const Json& o = json[i];
    EXPECT_EQ(o.Str("time"), text[i].time);
    ASSERT_NE(o.Get("xid"), nullptr);
    EXPECT_EQ(o.Get("xid")->kind, Json::kNumber);
    EXPECT_EQ(o.Get("xid")->text, text[i].xid);
    EXPECT_EQ(o.Str("lsn"), text[i].lsn);
    std::string op = o.Str("op");
    std::transform(op.begin(), op.end(), op.begin(), ::toupper);
    EXPECT_EQ(op, text[i].op);
    if (text[i].op == "TRUNCATE") continue;
    EXPECT_EQ(o.Str("schema"), "public");
    EXPECT_EQ(o.Str("schema") + "." + o.Str("table"), text[i].rest.substr(0, text[i].rest.find(' ')));
    ASSERT_NE(o.Get("key"), nullptr);
    EXPECT_EQ(o.Get("key")->kind, Json::kObject);
    if (text[i].op == "UPDATE") {
      for (const char* field : {"old", "new"}) {
        ASSERT_NE(o.Get(field), nullptr) << field;
        EXPECT_EQ(o.Get(field)->kind, Json::kObject) << field;
      }
      ASSERT_NE(o.Get("changed"), nullptr);
      EXPECT_EQ(o.Get("changed")->kind, Json::kArray);
    }
  }
}

TEST_F(ChangelogTest, JsonEscapesEveryValue) {
  const std::vector<Json> json = GrepJson({"--since", T("T9").after});
  ASSERT_EQ(json.size(), 1u);
  ASSERT_NE(json[0].Get("new"), nullptr);
  EXPECT_EQ(json[0].Get("new")->Str("owner"), kTricky);
  EXPECT_EQ(json[0].Get("key")->Str("id"), "6");
}

TEST_F(ChangelogTest, JsonUpdateHasKeyOldNewAndChanged) {
  const std::vector<Json> updates = GrepJson({"--op", "update", "--table", "accounts"});
  ASSERT_EQ(updates.size(), 3u);
  const Json& two_columns = updates[1];
  EXPECT_EQ(two_columns.Get("xid")->text, X("T3"));
  EXPECT_EQ(two_columns.Get("key")->Str("id"), "2");
  EXPECT_EQ(two_columns.Get("key")->fields.size(), 1u);
  EXPECT_EQ(StringItems(two_columns.Get("changed")), (std::vector<std::string>{"owner", "balance"}));
  ASSERT_NE(two_columns.Get("old"), nullptr);
  ASSERT_NE(two_columns.Get("new"), nullptr);
  EXPECT_EQ(two_columns.Get("old")->Str("owner"), "bob");
  EXPECT_EQ(two_columns.Get("old")->Str("balance"), "200");
  EXPECT_EQ(two_columns.Get("new")->Str("owner"), "robert");
  EXPECT_EQ(two_columns.Get("new")->Str("balance"), "250");
  EXPECT_EQ(two_columns.Get("new")->Str("id"), "2");
  EXPECT_EQ(StringItems(updates[0].Get("changed")), std::vector<std::string>{"balance"});
  EXPECT_EQ(updates[0].Get("old")->Str("balance"), "100");
  EXPECT_EQ(updates[0].Get("new")->Str("balance"), "150");
}

TEST_F(ChangelogTest, FilterByTable) {
  std::vector<std::string> accounts, events;
  for (const std::string& s : AllSummaries()) {
    (Contains(s, "public.accounts") ? accounts : events).push_back(s);
  }
  EXPECT_EQ(Summaries(GrepText({"--table", "accounts"})), accounts);
  EXPECT_EQ(Summaries(GrepText({"--table", "public.accounts"})), accounts);
  EXPECT_EQ(Summaries(GrepText({"--table", "public.events"})), events);
  EXPECT_EQ(Grep({"--table", "other.accounts"}), "");
  EXPECT_EQ(Grep({"--table", "nosuch"}), "");
}

TEST_F(ChangelogTest, FilterByOp) {
  for (const char* op : {"insert", "update", "delete"}) {
    std::string upper = op;
    std::transform(upper.begin(), upper.end(), upper.begin(), ::toupper);
    std::vector<std::string> expected;
    for (const std::string& s : AllSummaries()) {
      if (Contains(s, " " + upper + " ")) expected.push_back(s);
    }
    EXPECT_EQ(Summaries(GrepText({"--op", op})), expected) << op;
    const std::vector<Json> json = GrepJson({"--op", op});
    EXPECT_EQ(json.size(), expected.size()) << op;
    for (const Json& o : json) EXPECT_EQ(o.Str("op"), op);
  }
}

TEST_F(ChangelogTest, FilterBySinceAndUntil) {
  // Strictly between T1's and T4's commits: T2 and T3 only.
  EXPECT_EQ(Summaries(GrepText({"--since", T("T1").after, "--until", T("T3").after})),
            (std::vector<std::string>{"xid " + X("T2") + " UPDATE public.accounts (id)=('1')",
                                      "xid " + X("T3") + " UPDATE public.accounts (id)=('2')"}));
  const std::vector<std::string> all = AllSummaries();
  EXPECT_EQ(Summaries(GrepText({"--since", T("T8").after})),
            (std::vector<std::string>{all[11], all[12]}));
  EXPECT_EQ(Summaries(GrepText({"--until", T("T1").after})),
            (std::vector<std::string>{all[0], all[1]}));
  // A commit time itself is inside both bounds.
  const std::vector<TextRecord> t2 = GrepText({"--op", "update", "--table", "accounts"});
  ASSERT_FALSE(t2.empty());
  EXPECT_EQ(Summaries(GrepText({"--since", t2[0].time, "--until", t2[0].time})),
            std::vector<std::string>{all[2]});
  EXPECT_EQ(Grep({"--since", T("T10").after}), "");
  EXPECT_EQ(Grep({"--since", T("T3").after, "--until", T("T1").after}), "");
}

TEST_F(ChangelogTest, PatternMatchesAValue) {
  const std::vector<std::string> all = AllSummaries();
  EXPECT_EQ(Summaries(GrepText({"^rob"})), std::vector<std::string>{all[3]});
  EXPECT_EQ(Summaries(GrepText({"gam+a$"})), std::vector<std::string>{all[9]});
  EXPECT_EQ(Summaries(GrepText({"^41[0-9]$"})), std::vector<std::string>{all[5]});
  // Pattern and filters combine.
  EXPECT_EQ(Summaries(GrepText({"login", "--op", "delete"})), std::vector<std::string>{all[10]});
  EXPECT_EQ(Grep({"^rob", "--table", "events"}), "");
  const std::vector<Json> json = GrepJson({"^rob"});
  ASSERT_EQ(json.size(), 1u);
  EXPECT_EQ(json[0].Get("new")->Str("owner"), "robert");
}

// A PATTERN that is one literal is looked for in each change's stored bytes
// before the change is parsed: it must find exactly what the same search as
// a regular expression finds, where nothing can be skipped.
TEST_F(ChangelogTest, LiteralPatternsFindWhatTheRegularExpressionFinds) {
  const std::vector<std::string> all = AllSummaries();
  EXPECT_EQ(Summaries(GrepText({"robert"})), std::vector<std::string>{all[3]});
  EXPECT_EQ(Summaries(GrepText({"^410$"})), std::vector<std::string>{all[5]});
  EXPECT_EQ(Summaries(GrepText({"C:"})), std::vector<std::string>{all[12]});
  // beta: the insert, and the update's old row (REPLICA IDENTITY FULL).
  EXPECT_EQ(Summaries(GrepText({"beta"})), (std::vector<std::string>{all[8], all[9]}));
  for (const std::string pattern : {"robert", "^robert$", "login", "beta", "41", "^1$", "1",
                                    "say \"hi\"", "C:", "no-such-value"}) {
    SCOPED_TRACE(pattern);
    EXPECT_EQ(Grep({pattern}), Grep({"(" + pattern + ")"}));
    EXPECT_EQ(Grep({pattern, "--format", "json"}), Grep({"(" + pattern + ")", "--format", "json"}));
    EXPECT_EQ(Grep({pattern, "--table", "events"}), Grep({"(" + pattern + ")", "--table", "events"}));
  }
}

TEST_F(ChangelogTest, KeyListsOneRowsHistoryThroughTheRowIndex) {
  // Row 4: inserted and updated in T4; row 3: inserted in T1, deleted in T5.
  EXPECT_EQ(Summaries(GrepText({"--table", "accounts", "--key", "4"})),
            (std::vector<std::string>{"xid " + X("T4") + " INSERT public.accounts (id)=('4')",
                                      "xid " + X("T4") + " UPDATE public.accounts (id)=('4')"}));
  EXPECT_EQ(Summaries(GrepText({"--table", "public.accounts", "--key", "3"})),
            (std::vector<std::string>{"xid " + X("T1") + " INSERT public.accounts (id)=('3')",
                                      "xid " + X("T5") + " DELETE public.accounts (id)=('3')"}));
  // Filters still apply; a key that never existed prints nothing.
  EXPECT_EQ(Summaries(GrepText({"--table", "accounts", "--key", "4", "--op", "update"})),
            (std::vector<std::string>{"xid " + X("T4") + " UPDATE public.accounts (id)=('4')"}));
  EXPECT_EQ(Grep({"--table", "accounts", "--key", "999"}), "");
}

TEST_F(ChangelogTest, KeyIsRefusedWithoutATableOrOnAKeylessTable) {
  CommandResult no_table = RunCommand({kChangelogBin, "--store", g_history->store, "grep",
                                       "--key", "4"});
  EXPECT_EQ(no_table.exit_code, 2);
  EXPECT_TRUE(Contains(no_table.stderr_text, "--key needs --table")) << no_table.stderr_text;
  CommandResult keyless = RunCommand({kChangelogBin, "--store", g_history->store, "grep",
                                      "--table", "events", "--key", "1"});
  EXPECT_EQ(keyless.exit_code, 2);
  EXPECT_TRUE(Contains(keyless.stderr_text, "has no key")) << keyless.stderr_text;
  CommandResult arity = RunCommand({kChangelogBin, "--store", g_history->store, "grep",
                                    "--table", "accounts", "--key", "1,2"});
  EXPECT_EQ(arity.exit_code, 2);
  EXPECT_TRUE(Contains(arity.stderr_text, "has 1 key columns, got 2 values"))
      << arity.stderr_text;
}

// --- --key across eras without that key ----------------------------------

// Database "shop" of its own: ledger is loaded before it has a key (as pgbench
// -i and pg_restore do), then has REPLICA IDENTITY FULL, then the primary key
// id; tags has the primary key id, then code.
History* g_eras = nullptr;

Status MakeKeyEras(History* h) {
  RETURN_IF_ERROR(StartHistory(h,
                               "CREATE TABLE ledger (id int NOT NULL, code text NOT NULL, "
                               "amount int);"
                               "CREATE TABLE tags (id int PRIMARY KEY, code text NOT NULL)"));
  ASSIGN_OR_RETURN(auto conn, h->cluster.Connect("shop"));
  auto commit = [&](const std::string& name, const std::string& sql) -> Status {
    ASSIGN_OR_RETURN(h->txns[name], Commit(conn.get(), sql));
    return Status::OK();
  };
  RETURN_IF_ERROR(
      commit("K1", "INSERT INTO ledger VALUES (1, 'a', 10), (2, 'b', 20), (3, 'c', 30)"));
  RETURN_IF_ERROR(conn->Exec("ALTER TABLE ledger REPLICA IDENTITY FULL"));
  RETURN_IF_ERROR(commit("K2", "UPDATE ledger SET amount = 12 WHERE id = 1; "
                               "DELETE FROM ledger WHERE id = 3"));
  RETURN_IF_ERROR(conn->Exec("ALTER TABLE ledger ADD PRIMARY KEY (id); "
                             "ALTER TABLE ledger REPLICA IDENTITY DEFAULT"));
  RETURN_IF_ERROR(commit("K3", "UPDATE ledger SET amount = 13 WHERE id = 1; "
                               "UPDATE ledger SET amount = 21 WHERE id = 2"));
  RETURN_IF_ERROR(commit("K4", "INSERT INTO tags VALUES (1, 'x'), (2, '1')"));
  RETURN_IF_ERROR(conn->Exec("ALTER TABLE tags DROP CONSTRAINT tags_pkey, ADD PRIMARY KEY (code)"));
  RETURN_IF_ERROR(commit("K5", "UPDATE tags SET id = 10 WHERE code = 'x'"));
  // A schema-change message whose JSON escapes what PostgreSQL's would not
  // (any role can emit one): its query is "... 'escaped query'".
  RETURN_IF_ERROR(conn->Exec(
      "SELECT pg_logical_emit_message(true, 'pgtrail.ddl', '{\"event\":\"ddl_command_end\","
      "\"tag\":\"COMMENT\",\"query\":\"COMMENT ON TABLE tags IS "
      "\\u0027escaped\\u0020query\\u0027\"}')"));
  return FinishHistory(h);
}

class ChangelogKeyErasTest : public SharedHistoryTest<&g_eras, MakeKeyEras> {
 protected:
  std::string X(const std::string& name) { return g_eras->txns.at(name).xid; }

  // `changelog grep --format json args...`, one "xid OP col=value ..." per
  // change: the new row's values, or the old row's for a DELETE.
  std::vector<std::string> Rows(const std::vector<std::string>& args,
                                const std::vector<std::string>& columns,
                                const std::string& store = g_eras->store) {
    std::vector<std::string> argv = {kChangelogBin, "--store", store, "grep", "--format", "json"};
    argv.insert(argv.end(), args.begin(), args.end());
    CommandResult r = RunCommand(argv, "", seconds(30));
    EXPECT_EQ(r.exit_code, 0) << r;
    EXPECT_EQ(r.stderr_text, "") << r;
    std::vector<std::string> out;
    for (const std::string& line : Lines(r.stdout_text)) {
      std::optional<Json> v = JsonReader(line).ReadDocument();
      if (!v || v->kind != Json::kObject) {
        ADD_FAILURE() << "not a JSON object: " << line;
        continue;
      }
      const Json* row = v->Get(v->Str("op") == "delete" ? "old" : "new");
      const Json* xid = v->Get("xid");
      std::string s = "xid " + (xid ? xid->text : "?") + " " + v->Str("op");
      for (const std::string& c : columns) s += " " + c + "=" + (row ? row->Str(c) : "?");
      out.push_back(s);
    }
    return out;
  }
};

TEST_F(ChangelogKeyErasTest, KeyFindsTheRowBeforeTheTableHadAKey) {
  const std::vector<std::string> cols = {"id", "amount"};
  // Inserted while ledger had no key, updated under REPLICA IDENTITY FULL,
  // then under the primary key: the row index has only the last.
  EXPECT_EQ(Rows({"--table", "ledger", "--key", "1"}, cols),
            (std::vector<std::string>{"xid " + X("K1") + " insert id=1 amount=10",
                                      "xid " + X("K2") + " update id=1 amount=12",
                                      "xid " + X("K3") + " update id=1 amount=13"}));
  // Deleted before the key existed: nothing of it is in the row index.
  EXPECT_EQ(Rows({"--table", "ledger", "--key", "3"}, cols),
            (std::vector<std::string>{"xid " + X("K1") + " insert id=3 amount=30",
                                      "xid " + X("K2") + " delete id=3 amount=30"}));
  EXPECT_EQ(Rows({"--table", "public.ledger", "--key", "2"}, cols),
            (std::vector<std::string>{"xid " + X("K1") + " insert id=2 amount=20",
                                      "xid " + X("K3") + " update id=2 amount=21"}));
  EXPECT_EQ(Rows({"--table", "ledger", "--key", "4"}, cols), std::vector<std::string>{});
}

// Transaction headers written by an older agent do not list the tables
// they changed: those transactions are read, not skipped.
TEST_F(ChangelogKeyErasTest, KeyReadsHeadersThatDoNotListTheirTables) {
  if (g_eras->agent->IsRunning()) {
    ASSERT_OK(g_eras->agent->Kill(SIGTERM));
    ASSERT_TRUE(g_eras->agent->WaitExit(seconds(10)).has_value());
  }
  const std::string old_store = g_eras->dir.path() + "/store-of-an-older-agent";
  std::filesystem::copy(g_eras->store, old_store, std::filesystem::copy_options::recursive);
  int stripped = 0;
  ASSERT_OK(StripTxnTableLists(old_store, &stripped));
  ASSERT_GE(stripped, 5);
  EXPECT_EQ(Rows({"--table", "ledger", "--key", "3"}, {"id", "amount"}, old_store),
            (std::vector<std::string>{"xid " + X("K1") + " insert id=3 amount=30",
                                      "xid " + X("K2") + " delete id=3 amount=30"}));
  EXPECT_EQ(Rows({"--table", "tags", "--key", "1"}, {"id", "code"}, old_store),
            std::vector<std::string>{"xid " + X("K4") + " insert id=2 code=1"});
}

TEST_F(ChangelogKeyErasTest, FiltersApplyInEveryEra) {
  const std::vector<std::string> cols = {"id", "amount"};
  EXPECT_EQ(Rows({"--table", "ledger", "--key", "1", "--op", "insert"}, cols),
            std::vector<std::string>{"xid " + X("K1") + " insert id=1 amount=10"});
  EXPECT_EQ(Rows({"--table", "ledger", "--key", "1", "--until", g_eras->txns.at("K1").after},
                 cols),
            std::vector<std::string>{"xid " + X("K1") + " insert id=1 amount=10"});
  EXPECT_EQ(Rows({"--table", "ledger", "--key", "1", "--since", g_eras->txns.at("K2").after},
                 cols),
            std::vector<std::string>{"xid " + X("K3") + " update id=1 amount=13"});
}

// Schema changes are matched on their query: a literal PATTERN finds them
// as the regular expression does.
TEST_F(ChangelogKeyErasTest, LiteralPatternsFindSchemaChanges) {
  auto grep = [](const std::string& pattern) {
    CommandResult r = RunCommand({kChangelogBin, "--store", g_eras->store, "grep", pattern},
                                 "", seconds(30));
    EXPECT_EQ(r.exit_code, 0) << r;
    return r.stdout_text;
  };
  const std::string ddl = grep("REPLICA IDENTITY");
  EXPECT_TRUE(Contains(ddl, "REPLICA IDENTITY FULL")) << ddl;
  EXPECT_TRUE(Contains(ddl, "REPLICA IDENTITY DEFAULT")) << ddl;
  EXPECT_EQ(ddl, grep("(REPLICA IDENTITY)"));
  EXPECT_EQ(grep("ADD PRIMARY KEY"), grep("(ADD PRIMARY KEY)"));
  EXPECT_NE(grep("ADD PRIMARY KEY"), "");
  // Found in the query as decoded, though its stored JSON has it escaped.
  const std::string escaped = grep("escaped query");
  EXPECT_TRUE(Contains(escaped, "COMMENT: COMMENT ON TABLE tags IS 'escaped query'")) << escaped;
  EXPECT_EQ(escaped, grep("(escaped query)"));
}

TEST_F(ChangelogKeyErasTest, KeyMeansTheCurrentKeyInEveryEra) {
  const std::vector<std::string> cols = {"id", "code"};
  // code 'x': inserted while id was the key, updated under the key code.
  EXPECT_EQ(Rows({"--table", "tags", "--key", "x"}, cols),
            (std::vector<std::string>{"xid " + X("K4") + " insert id=1 code=x",
                                      "xid " + X("K5") + " update id=10 code=x"}));
  // code '1' is the row (2, '1'), not the row whose id was 1, though the row
  // index holds an entry for id 1 from the era of the old key.
  EXPECT_EQ(Rows({"--table", "tags", "--key", "1"}, cols),
            std::vector<std::string>{"xid " + X("K4") + " insert id=2 code=1"});
  EXPECT_EQ(Rows({"--table", "tags", "--key", "2"}, cols), std::vector<std::string>{});
}

}  // namespace
}  // namespace pgtrail::testing
