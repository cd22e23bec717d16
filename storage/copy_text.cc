// COPY text format, as PostgreSQL's copyto.c writes it and copyfromparse.c
// reads it:
//
//   line   := field ( '\t' field )*          (no trailing newline here)
//   field  := '\N'                           NULL: the raw field, before de-escaping
//           | ( byte | escape )*
//   escape := '\b' | '\f' | '\n' | '\r' | '\t' | '\v' | '\\'
//           | '\' [0-7]{1,3}                 octal, taken modulo 256 as PostgreSQL does
//           | '\x' [0-9a-fA-F]{1,2}          hex
//           | '\' other                      that other byte itself
//
// A zero-column row is an empty line, so an empty line holds zero fields when
// zero are expected and one empty field otherwise.
#include "storage/copy_text.h"

#include <cassert>

namespace pgtrail {
namespace {

bool IsOctalDigit(char c) { return c >= '0' && c <= '7'; }

int HexValue(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

// Decodes one field starting at *pos; stops at an unescaped tab or the end of
// the line, leaving *pos on that tab (or at the end).
Status ParseField(std::string_view line, size_t* pos, std::string* out) {
  size_t i = *pos;
  while (i < line.size() && line[i] != '\t') {
    char c = line[i++];
    if (c != '\\') {
      out->push_back(c);
      continue;
    }
    // COPY TO never ends a line in a lone backslash; PostgreSQL would drop it
    // silently, but here it can only mean a damaged line.
    if (i >= line.size()) return Status::Corruption("bad COPY text line: ends in a lone backslash");
    c = line[i++];
    switch (c) {
      case 'b':
        out->push_back('\b');
        break;
      case 'f':
        out->push_back('\f');
        break;
      case 'n':
        out->push_back('\n');
        break;
      case 'r':
        out->push_back('\r');
        break;
      case 't':
        out->push_back('\t');
        break;
      case 'v':
        out->push_back('\v');
        break;
      case 'x': {
        int value = i < line.size() ? HexValue(line[i]) : -1;
        if (value < 0) {
          out->push_back('x');  // "\x" without a hex digit is a plain x
          break;
        }
        i++;
        int low = i < line.size() ? HexValue(line[i]) : -1;
        if (low >= 0) {
          value = value * 16 + low;
          i++;
        }
        out->push_back(static_cast<char>(value));
        break;
      }
      default:
        if (IsOctalDigit(c)) {
          int value = c - '0';
          for (int digits = 1; digits < 3 && i < line.size() && IsOctalDigit(line[i]); digits++) {
            value = value * 8 + (line[i++] - '0');
          }
          out->push_back(static_cast<char>(value & 0xff));
        } else {
          out->push_back(c);  // covers "\\" and "\<tab>" too
        }
        break;
    }
  }
  *pos = i;
  return Status::OK();
}

}  // namespace

void AppendCopyTextValue(std::string* dst, std::string_view raw) {
  for (char c : raw) {
    switch (c) {
      case '\\':
        dst->append("\\\\");
        break;
      case '\b':
        dst->append("\\b");
        break;
      case '\f':
        dst->append("\\f");
        break;
      case '\n':
        dst->append("\\n");
        break;
      case '\r':
        dst->append("\\r");
        break;
      case '\t':
        dst->append("\\t");
        break;
      case '\v':
        dst->append("\\v");
        break;
      default:
        dst->push_back(c);
        break;
    }
  }
}

void AppendCopyTextRow(std::string* dst, const pb::Tuple& tuple) {
  const std::string& kinds = tuple.kinds();
  for (size_t col = 0; col < kinds.size(); col++) {
    assert(kinds[col] != 'u' && kinds[col] != '?' && "unresolved column in a COPY row");
    if (col > 0) dst->push_back('\t');
    if (kinds[col] == 'n') {
      dst->append("\\N");
      continue;
    }
    assert(static_cast<int>(col) < tuple.values_size());
    AppendCopyTextValue(dst, tuple.values(static_cast<int>(col)));
  }
  dst->push_back('\n');
}

Status ParseCopyTextLine(std::string_view line, size_t expected_columns, pb::Tuple* out) {
  out->Clear();
  if (line.empty() && expected_columns == 0) return Status::OK();
  std::string* kinds = out->mutable_kinds();
  size_t pos = 0;
  for (;;) {
    size_t start = pos;
    std::string* value = out->add_values();
    RETURN_IF_ERROR(ParseField(line, &pos, value));
    // NULL is recognised on the raw bytes, so an escaped "\\N" stays the text \N.
    if (line.substr(start, pos - start) == "\\N") {
      value->clear();
      kinds->push_back('n');
    } else {
      kinds->push_back('t');
    }
    if (pos >= line.size()) break;
    pos++;  // the tab
  }
  if (kinds->size() != expected_columns) {
    size_t got = kinds->size();
    out->Clear();
    return Status::Corruption("bad COPY text line: expected " + std::to_string(expected_columns) +
                              " columns, got " + std::to_string(got));
  }
  return Status::OK();
}

}  // namespace pgtrail
