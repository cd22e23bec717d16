#include "tools/sql_statements.h"

#include <cctype>

namespace pgtrail {
namespace {

bool IsIdentChar(char c) {
  return std::isalnum(static_cast<unsigned char>(c)) || c == '_' ||
         static_cast<unsigned char>(c) >= 0x80;
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

}  // namespace

std::vector<std::string> SplitSqlStatements(std::string_view sql) {
  std::vector<std::string> out;
  size_t start = 0;
  size_t i = 0;
  auto finish = [&](size_t end) {
    std::string stmt = Trim(sql.substr(start, end - start));
    if (!stmt.empty()) out.push_back(std::move(stmt));
  };
  while (i < sql.size()) {
    const size_t after = SkipCommentOrSpace(sql, i);
    if (after != i) {
      i = after;
      continue;
    }
    const char c = sql[i];
    if (c == ';') {
      finish(i);
      start = ++i;
    } else if (c == '\'') {
      // E'...' (the E just before) takes backslash escapes.
      const bool escapes = i > 0 && (sql[i - 1] == 'E' || sql[i - 1] == 'e') &&
                           (i < 2 || !IsIdentChar(sql[i - 2]));
      i++;
      while (i < sql.size()) {
        if (escapes && sql[i] == '\\') {
          i += 2;
        } else if (sql[i] == '\'') {
          if (i + 1 < sql.size() && sql[i + 1] == '\'') {
            i += 2;
          } else {
            i++;
            break;
          }
        } else {
          i++;
        }
      }
    } else if (c == '"') {
      size_t close = i + 1;
      while (true) {
        close = sql.find('"', close);
        if (close == std::string_view::npos || close + 1 >= sql.size() || sql[close + 1] != '"') {
          break;
        }
        close += 2;
      }
      i = close == std::string_view::npos ? sql.size() : close + 1;
    } else if (c == '$' && (i == 0 || !IsIdentChar(sql[i - 1]))) {
      // $tag$ ... $tag$ (tag: letters, digits, _; not starting with a digit).
      size_t j = i + 1;
      while (j < sql.size() && (IsIdentChar(sql[j]) && sql[j] != '$')) j++;
      const bool valid_tag = j < sql.size() && sql[j] == '$' &&
                             (j == i + 1 || !std::isdigit(static_cast<unsigned char>(sql[i + 1])));
      if (!valid_tag) {
        i++;
        continue;
      }
      const std::string_view tag = sql.substr(i, j - i + 1);
      const size_t close = sql.find(tag, j + 1);
      i = close == std::string_view::npos ? sql.size() : close + tag.size();
    } else {
      i++;
    }
  }
  finish(sql.size());
  return out;
}

bool IsSchemaStatement(std::string_view statement) {
  size_t i = 0;
  for (size_t next; i < statement.size() && (next = SkipCommentOrSpace(statement, i)) != i;) {
    i = next;
  }
  size_t j = i;
  while (j < statement.size() && IsIdentChar(statement[j])) j++;
  std::string word(statement.substr(i, j - i));
  for (char& ch : word) ch = static_cast<char>(std::toupper(static_cast<unsigned char>(ch)));
  static const char* const kSchemaWords[] = {"CREATE", "ALTER",    "DROP",   "COMMENT", "GRANT",
                                             "REVOKE", "SECURITY", "IMPORT", "REFRESH"};
  for (const char* w : kSchemaWords) {
    if (word == w) return true;
  }
  return false;
}

}  // namespace pgtrail
