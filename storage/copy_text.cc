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

#include <algorithm>
#include <cassert>
#include <cstdint>
#include <cstring>

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

// The letter that follows the backslash when c is written escaped; 0 if c is
// written as itself.
char EscapeLetter(char c) {
  // Every escaped byte is a control character or the backslash.
  if (static_cast<unsigned char>(c) > '\r' && c != '\\') return 0;
  switch (c) {
    case '\\':
      return '\\';
    case '\b':
      return 'b';
    case '\f':
      return 'f';
    case '\n':
      return 'n';
    case '\r':
      return 'r';
    case '\t':
      return 't';
    case '\v':
      return 'v';
    default:
      return 0;
  }
}

// True if one of the 8 bytes of w is escaped: below 0x0E (the control
// characters above all are) or a backslash. Exact, by the classic
// "has a byte less than n" / "has a zero byte" tests (n <= 128).
bool WordHasEscape(uint64_t w) {
  constexpr uint64_t kOnes = 0x0101010101010101u;
  constexpr uint64_t kHighs = 0x8080808080808080u;
  const uint64_t below = (w - kOnes * 0x0E) & ~w & kHighs;
  const uint64_t x = w ^ (kOnes * static_cast<unsigned char>('\\'));
  const uint64_t backslash = (x - kOnes) & ~x & kHighs;
  return (below | backslash) != 0;
}

}  // namespace

void AppendCopyTextValue(std::string* dst, std::string_view raw) {
  // Bytes that need no escape (nearly all) are copied in runs, not one by one.
  // Whole words without one are skipped, 8 bytes at a time.
  size_t run = 0;
  size_t i = 0;
  while (i < raw.size()) {
    if (raw.size() - i >= 8) {
      uint64_t word;
      std::memcpy(&word, raw.data() + i, 8);
      if (!WordHasEscape(word)) {
        i += 8;
        continue;
      }
    }
    for (const size_t end = std::min(i + 8, raw.size()); i < end; i++) {
      const char letter = EscapeLetter(raw[i]);
      if (letter == 0) continue;
      dst->append(raw.data() + run, i - run);
      const char escape[2] = {'\\', letter};
      dst->append(escape, 2);
      run = i + 1;
    }
  }
  dst->append(raw.data() + run, raw.size() - run);
}

namespace {

template <typename Values>
void AppendRow(std::string* dst, std::string_view kinds, const Values& values) {
  for (size_t col = 0; col < kinds.size(); col++) {
    assert(kinds[col] != 'u' && kinds[col] != '?' && "unresolved column in a COPY row");
    if (col > 0) dst->push_back('\t');
    if (kinds[col] == 'n') {
      dst->append("\\N");
      continue;
    }
    assert(static_cast<size_t>(col) < static_cast<size_t>(values.size()));
    AppendCopyTextValue(dst, values[static_cast<int>(col)]);
  }
  dst->push_back('\n');
}

}  // namespace

void AppendCopyTextRow(std::string* dst, const pb::Tuple& tuple) {
  AppendRow(dst, tuple.kinds(), tuple.values());
}

void AppendCopyTextRow(std::string* dst, std::string_view kinds,
                       const std::vector<std::string_view>& values) {
  AppendRow(dst, kinds, values);
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
