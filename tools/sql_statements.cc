#include "tools/sql_statements.h"

#include <cctype>

namespace pgtrail {
namespace {

bool IsIdentStart(char c) {
  return std::isalpha(static_cast<unsigned char>(c)) || c == '_' ||
         static_cast<unsigned char>(c) >= 0x80;
}

// PostgreSQL identifiers may also hold digits and $ after their first character.
bool IsIdentChar(char c) {
  return IsIdentStart(c) || std::isdigit(static_cast<unsigned char>(c)) || c == '$';
}

std::string Trim(std::string_view s) {
  size_t b = 0, e = s.size();
  while (b < e && std::isspace(static_cast<unsigned char>(s[b]))) b++;
  while (e > b && std::isspace(static_cast<unsigned char>(s[e - 1]))) e--;
  return std::string(s.substr(b, e - b));
}

// Skips a comment or white space at pos; returns the position after it, or
// pos if there is none.
size_t SkipCommentOrSpace(std::string_view sql, size_t pos) {
  if (pos < sql.size() && std::isspace(static_cast<unsigned char>(sql[pos]))) return pos + 1;
  if (sql.substr(pos, 2) == "--") {
    size_t nl = sql.find('\n', pos);
    return nl == std::string_view::npos ? sql.size() : nl + 1;
  }
  if (sql.substr(pos, 2) == "/*") {
    int depth = 0;
    size_t i = pos;
    while (i < sql.size()) {
      if (sql.substr(i, 2) == "/*") {
        depth++;
        i += 2;
      } else if (sql.substr(i, 2) == "*/") {
        depth--;
        i += 2;
        if (depth == 0) return i;
      } else {
        i++;
      }
    }
    return sql.size();
  }
  return pos;
}

// The end of the token starting at sql[i] (not a comment or white space),
// and its kind.
size_t ScanToken(std::string_view sql, size_t i, SqlToken::Kind* kind) {
  const char c = sql[i];
  if (c == '\'' || ((c == 'E' || c == 'e') && i + 1 < sql.size() && sql[i + 1] == '\'')) {
    // E'...' takes backslash escapes; '' is a quote either way.
    const bool escapes = c != '\'';
    *kind = SqlToken::kLiteral;
    i += escapes ? 2 : 1;
    while (i < sql.size()) {
      if (escapes && sql[i] == '\\') {
        i += 2;
      } else if (sql[i] == '\'') {
        if (i + 1 < sql.size() && sql[i + 1] == '\'') {
          i += 2;
        } else {
          return i + 1;
        }
      } else {
        i++;
      }
    }
    return sql.size();
  }
  if (IsIdentStart(c)) {
    *kind = SqlToken::kWord;
    while (i < sql.size() && IsIdentChar(sql[i])) i++;
    return i;
  }
  if (c == '"') {
    *kind = SqlToken::kQuotedIdent;
    size_t close = i + 1;
    while (true) {
      close = sql.find('"', close);
      if (close == std::string_view::npos) return sql.size();
      if (close + 1 >= sql.size() || sql[close + 1] != '"') return close + 1;
      close += 2;
    }
  }
  if (c == '$') {
    // $tag$ ... $tag$ (tag: letters, digits, _; not starting with a digit),
    // or a positional parameter $1.
    size_t j = i + 1;
    while (j < sql.size() && IsIdentChar(sql[j]) && sql[j] != '$') j++;
    const bool valid_tag = j < sql.size() && sql[j] == '$' &&
                           (j == i + 1 || !std::isdigit(static_cast<unsigned char>(sql[i + 1])));
    if (!valid_tag) {
      *kind = SqlToken::kOther;
      return j;
    }
    *kind = SqlToken::kLiteral;
    const std::string_view tag = sql.substr(i, j - i + 1);
    const size_t close = sql.find(tag, j + 1);
    return close == std::string_view::npos ? sql.size() : close + tag.size();
  }
  if (std::isdigit(static_cast<unsigned char>(c))) {
    *kind = SqlToken::kOther;
    while (i < sql.size() && (std::isalnum(static_cast<unsigned char>(sql[i])) || sql[i] == '.')) i++;
    return i;
  }
  *kind = SqlToken::kPunct;
  return i + 1;
}

}  // namespace

std::vector<SqlToken> TokenizeSql(std::string_view sql) {
  std::vector<SqlToken> out;
  size_t i = 0;
  while (i < sql.size()) {
    const size_t after = SkipCommentOrSpace(sql, i);
    if (after != i) {
      i = after;
      continue;
    }
    SqlToken token;
    const size_t end = ScanToken(sql, i, &token.kind);
    token.offset = i;
    token.text = sql.substr(i, end - i);
    out.push_back(token);
    i = end;
  }
  return out;
}

std::vector<std::string> SplitSqlStatements(std::string_view sql) {
  std::vector<std::string> out;
  size_t start = 0;
  bool tokens = false;  // since start: a statement of only comments is empty
  auto finish = [&](size_t end) {
    if (tokens) out.push_back(Trim(sql.substr(start, end - start)));
    tokens = false;
  };
  for (const SqlToken& t : TokenizeSql(sql)) {
    if (t.kind == SqlToken::kPunct && t.text == ";") {
      finish(t.offset);
      start = t.offset + 1;
    } else {
      tokens = true;
    }
  }
  finish(sql.size());
  return out;
}

std::string IdentifierName(const SqlToken& token) {
  std::string name;
  if (token.kind == SqlToken::kQuotedIdent) {
    for (size_t i = 1; i + 1 < token.text.size(); i++) {
      name += token.text[i];
      if (token.text[i] == '"') i++;  // "" stands for one "
    }
  } else if (token.kind == SqlToken::kWord) {
    for (char c : token.text) {
      name += static_cast<char>(c >= 'A' && c <= 'Z' ? c - 'A' + 'a' : c);
    }
  }
  return name;
}

bool IsSchemaStatement(std::string_view statement) {
  const std::vector<SqlToken> tokens = TokenizeSql(statement);
  if (tokens.empty() || tokens[0].kind != SqlToken::kWord) return false;
  const std::string word = IdentifierName(tokens[0]);
  static const char* const kSchemaWords[] = {"create", "alter",    "drop",   "comment", "grant",
                                             "revoke", "security", "import", "refresh"};
  for (const char* w : kSchemaWords) {
    if (word == w) return true;
  }
  return false;
}

namespace {

// Reads tokens left to right, matching keywords.
class TokenReader {
 public:
  explicit TokenReader(const std::vector<SqlToken>& tokens) : t_(tokens) {}
  bool done() const { return i_ >= t_.size(); }
  size_t pos() const { return i_; }
  // Consumes the keyword if it is next.
  bool Accept(const char* keyword) {
    if (done() || t_[i_].kind != SqlToken::kWord || IdentifierName(t_[i_]) != keyword) return false;
    i_++;
    return true;
  }
  bool PeekPunct(char c) const {
    return !done() && t_[i_].kind == SqlToken::kPunct && t_[i_].text[0] == c;
  }
  bool AcceptPunct(char c) {
    if (done() || t_[i_].kind != SqlToken::kPunct || t_[i_].text[0] != c) return false;
    i_++;
    return true;
  }
  // Consumes an identifier (a word or a quoted one).
  bool AcceptIdent() {
    if (done()) return false;
    if (t_[i_].kind != SqlToken::kWord && t_[i_].kind != SqlToken::kQuotedIdent) return false;
    i_++;
    return true;
  }
  // Consumes name or schema.name (or catalog.schema.name); *last is the
  // name without its schema.
  bool AcceptQualifiedName(std::string* last = nullptr) {
    if (!AcceptIdent()) return false;
    while (AcceptPunct('.')) {
      if (!AcceptIdent()) return false;
    }
    if (last != nullptr) *last = IdentifierName(t_[i_ - 1]);
    return true;
  }
  // Skips tokens up to and including the keyword, outside parentheses.
  bool SkipPast(const char* keyword) {
    int depth = 0;
    for (; i_ < t_.size(); i_++) {
      if (t_[i_].kind == SqlToken::kPunct) {
        if (t_[i_].text == "(") depth++;
        if (t_[i_].text == ")") depth--;
      } else if (depth == 0 && t_[i_].kind == SqlToken::kWord && IdentifierName(t_[i_]) == keyword) {
        i_++;
        return true;
      }
    }
    return false;
  }
  // True if a comma or the keyword appears in the rest outside parentheses.
  bool RestHasTopLevel(const char* keyword, bool comma) const {
    int depth = 0;
    for (size_t j = i_; j < t_.size(); j++) {
      if (t_[j].kind == SqlToken::kPunct) {
        if (t_[j].text == "(" || t_[j].text == "[") depth++;
        if (t_[j].text == ")" || t_[j].text == "]") depth--;
        if (depth == 0 && comma && t_[j].text == ",") return true;
      } else if (depth == 0 && keyword != nullptr && t_[j].kind == SqlToken::kWord &&
                 IdentifierName(t_[j]) == keyword) {
        return true;
      }
    }
    return false;
  }

 private:
  const std::vector<SqlToken>& t_;
  size_t i_ = 0;
};

}  // namespace

namespace {

// The few statement forms a restore may reorder, recognised from tokens.
struct Form {
  enum Kind {
    kOther,        // anything else
    kIndexBuild,   // ALTER TABLE ... ADD [CONSTRAINT c] PRIMARY KEY | UNIQUE, or
                   // CREATE [UNIQUE] INDEX ... ON [ONLY] name
    kCreateTable,  // CREATE [...] TABLE name ( ... ) without AS
    kHarmless,     // CREATE SEQUENCE, CREATE VIEW, COMMENT
  };
  Kind kind = kOther;
  std::string table;        // kIndexBuild: its table's relname (no schema)
  bool has_using = false;   // kIndexBuild, ALTER form: a USING clause (USING INDEX ...)
};

Form Recognise(const std::vector<SqlToken>& tokens) {
  TokenReader r(tokens);
  Form form;
  if (r.Accept("comment")) {  // COMMENT ON ... IS '...'
    form.kind = Form::kHarmless;
    return form;
  }
  if (r.Accept("alter")) {
    // ALTER TABLE [IF EXISTS] [ONLY] name [*] ADD [CONSTRAINT c] PRIMARY KEY
    // | UNIQUE ..., with no further subcommand.
    if (!r.Accept("table")) return form;
    if (r.Accept("if") && !r.Accept("exists")) return form;
    r.Accept("only");
    std::string table;
    if (!r.AcceptQualifiedName(&table)) return form;
    r.AcceptPunct('*');
    if (!r.Accept("add")) return form;
    if (r.Accept("constraint") && !r.AcceptIdent()) return form;
    const bool primary_key = r.Accept("primary") && r.Accept("key");
    if (!primary_key && !r.Accept("unique")) return form;
    if (r.RestHasTopLevel(nullptr, /*comma=*/true)) return form;
    form.kind = Form::kIndexBuild;
    form.table = table;
    form.has_using = r.RestHasTopLevel("using", /*comma=*/false);
    return form;
  }
  if (!r.Accept("create")) return form;
  if (r.Accept("or") && !r.Accept("replace")) return form;
  if (r.Accept("global") || r.Accept("local")) {
    if (!r.Accept("temp") && !r.Accept("temporary")) return form;
  } else if (!r.Accept("temp") && !r.Accept("temporary")) {
    r.Accept("unlogged");
  }
  r.Accept("recursive");
  if (r.Accept("sequence") || r.Accept("view")) {
    form.kind = Form::kHarmless;
    return form;
  }
  const bool unique = r.Accept("unique");
  if (r.Accept("index")) {
    if (!r.SkipPast("on")) return form;
    r.Accept("only");
    if (r.AcceptQualifiedName(&form.table)) form.kind = Form::kIndexBuild;
    return form;
  }
  if (unique || !r.Accept("table")) return form;
  // CREATE TABLE name ( ... ) [INHERITS ...] [PARTITION BY ...] [WITH ...]:
  // not AS (it fills the table), not PARTITION OF or OF type (they follow the
  // name instead of the column list).
  if (r.Accept("if") && !(r.Accept("not") && r.Accept("exists"))) return form;
  if (!r.AcceptQualifiedName() || !r.PeekPunct('(')) return form;
  if (!r.RestHasTopLevel("as", /*comma=*/false)) form.kind = Form::kCreateTable;
  return form;
}

}  // namespace

bool LeavesRowsAlone(std::string_view statement, const std::string& relname) {
  const std::vector<SqlToken> tokens = TokenizeSql(statement);
  const Form form = Recognise(tokens);
  if (form.kind != Form::kCreateTable) return form.kind != Form::kOther;
  // A new table must not name the table but as the target of a foreign key
  // (a new, empty table's foreign key checks nothing).
  for (size_t j = 0; j < tokens.size(); j++) {
    if (tokens[j].kind != SqlToken::kWord && tokens[j].kind != SqlToken::kQuotedIdent) continue;
    if (IdentifierName(tokens[j]) != relname) continue;
    size_t k = j;  // back over "schema." to the token before the name
    while (k >= 2 && tokens[k - 1].kind == SqlToken::kPunct && tokens[k - 1].text == ".") k -= 2;
    if (k >= 1 && IdentifierName(tokens[k - 1]) == "references" &&
        tokens[k - 1].kind == SqlToken::kWord) {
      continue;
    }
    return false;
  }
  return true;
}

std::string IndexBuildTable(std::string_view statement) {
  const Form form = Recognise(TokenizeSql(statement));
  return form.kind == Form::kIndexBuild && !form.has_using ? form.table : "";
}

bool IsCreateTable(std::string_view statement) {
  return Recognise(TokenizeSql(statement)).kind == Form::kCreateTable;
}

bool MentionsName(std::string_view statement, const std::string& name) {
  for (const SqlToken& t : TokenizeSql(statement)) {
    if ((t.kind == SqlToken::kWord || t.kind == SqlToken::kQuotedIdent) &&
        IdentifierName(t) == name) {
      return true;
    }
  }
  return false;
}

}  // namespace pgtrail
