#include "storage/copy_text.h"

#include <gtest/gtest.h>

#include <string>
#include <vector>

namespace pgtrail {
namespace {

// One column value for building tuples.
struct Col {
  bool is_null;
  std::string text;
};
Col Null() { return {true, ""}; }
Col Text(std::string s) { return {false, std::move(s)}; }

pb::Tuple MakeTuple(const std::vector<Col>& cols) {
  pb::Tuple t;
  for (const Col& c : cols) {
    t.mutable_kinds()->push_back(c.is_null ? 'n' : 't');
    t.add_values(c.text);
  }
  return t;
}

std::string Escape(std::string_view raw) {
  std::string out;
  AppendCopyTextValue(&out, raw);
  return out;
}

std::string Row(const std::vector<Col>& cols) {
  std::string out;
  AppendCopyTextRow(&out, MakeTuple(cols));
  return out;
}

// Parses a line and expects success.
pb::Tuple Parse(std::string_view line, size_t columns) {
  pb::Tuple t;
  Status st = ParseCopyTextLine(line, columns, &t);
  EXPECT_TRUE(st.ok()) << st.ToString();
  return t;
}

TEST(CopyText, EscapesEachSpecialByte) {
  EXPECT_EQ(Escape("a\\b"), "a\\\\b");
  EXPECT_EQ(Escape("\b\f\n\r\t\v"), "\\b\\f\\n\\r\\t\\v");
  EXPECT_EQ(Escape("plain text"), "plain text");
}

TEST(CopyText, LeavesQuotesAndHighBytesVerbatim) {
  EXPECT_EQ(Escape("it's \"q\""), "it's \"q\"");
  EXPECT_EQ(Escape("gr\xc3\xbc\xc3\x9f \xe2\x82\xac"), "gr\xc3\xbc\xc3\x9f \xe2\x82\xac");
  EXPECT_EQ(Escape("\\N"), "\\\\N");
}

// Escaping is done 8 bytes at a time where it can: every byte value must
// come out right at every offset within a word and in the tail.
TEST(CopyText, EscapesEveryByteAtEveryOffset) {
  auto expected = [](std::string_view raw) {
    std::string out;
    for (char c : raw) {
      switch (c) {
        case '\\': out += "\\\\"; break;
        case '\b': out += "\\b"; break;
        case '\f': out += "\\f"; break;
        case '\n': out += "\\n"; break;
        case '\r': out += "\\r"; break;
        case '\t': out += "\\t"; break;
        case '\v': out += "\\v"; break;
        default: out.push_back(c);
      }
    }
    return out;
  };
  for (int byte = 0; byte < 256; byte++) {
    for (size_t offset = 0; offset < 19; offset++) {
      std::string raw(19, 'a');
      raw[offset] = static_cast<char>(byte);
      EXPECT_EQ(Escape(raw), expected(raw)) << "byte " << byte << " at " << offset;
    }
  }
  // Neighbours of the escaped ranges, packed into one word.
  const std::string edges("\x0d\x0e\x5b\x5c\x5d\x7f\x80\xff\x00\x01\\\\", 12);
  EXPECT_EQ(Escape(edges), expected(edges));
}

TEST(CopyText, RowSeparatesWithTabsAndEndsWithNewline) {
  EXPECT_EQ(Row({Text("1"), Null(), Text(""), Text("a\tb")}), "1\t\\N\t\ta\\tb\n");
}

TEST(CopyText, RowOfOneNullColumn) { EXPECT_EQ(Row({Null()}), "\\N\n"); }

TEST(CopyText, RowOfZeroColumnsIsAnEmptyLine) { EXPECT_EQ(Row({}), "\n"); }

TEST(CopyText, RoundTripsTrickyValues) {
  std::vector<Col> cols = {
      Text("tab\there"),
      Text("new\nline"),
      Text("cr\rlf\n"),
      Text("back\\slash"),
      Text("\\N"),
      Null(),
      Text(""),
      Text("\\"),
      Text("ends with \\"),
      Text("\xe6\x97\xa5\xe6\x9c\xac"),
      Text("'single' \"double\""),
      Text("\b\f\v"),
      Text("\\t literally"),
      Text(" spaces "),
  };
  std::string line = Row(cols);
  ASSERT_EQ(line.back(), '\n');
  line.pop_back();
  EXPECT_EQ(line.find('\n'), std::string::npos);

  pb::Tuple parsed = Parse(line, cols.size());
  ASSERT_EQ(parsed.kinds().size(), cols.size());
  ASSERT_EQ(parsed.values_size(), static_cast<int>(cols.size()));
  for (size_t i = 0; i < cols.size(); i++) {
    SCOPED_TRACE("column " + std::to_string(i));
    EXPECT_EQ(parsed.kinds()[i], cols[i].is_null ? 'n' : 't');
    EXPECT_EQ(parsed.values(static_cast<int>(i)), cols[i].text);
  }
}

TEST(CopyText, BackslashNIsNullButEscapedBackslashNIsText) {
  pb::Tuple t = Parse("\\N\t\\\\N\tN\t\\Nx", 4);
  EXPECT_EQ(t.kinds(), "nttt");
  EXPECT_EQ(t.values(0), "");
  EXPECT_EQ(t.values(1), "\\N");
  EXPECT_EQ(t.values(2), "N");
  EXPECT_EQ(t.values(3), "Nx");  // only an exact \N field is NULL
}

TEST(CopyText, EmptyFieldIsEmptyStringNotNull) {
  pb::Tuple t = Parse("\t", 2);
  EXPECT_EQ(t.kinds(), "tt");
  EXPECT_EQ(t.values(0), "");
  EXPECT_EQ(t.values(1), "");
}

TEST(CopyText, EmptyLineIsOneEmptyFieldOrZeroColumns) {
  pb::Tuple one = Parse("", 1);
  EXPECT_EQ(one.kinds(), "t");
  EXPECT_EQ(one.values(0), "");

  pb::Tuple zero = Parse("", 0);
  EXPECT_EQ(zero.kinds(), "");
  EXPECT_EQ(zero.values_size(), 0);
}

TEST(CopyText, ParsesSimpleEscapes) {
  pb::Tuple t = Parse("\\b\\f\\n\\r\\t\\v\\\\", 1);
  EXPECT_EQ(t.values(0), "\b\f\n\r\t\v\\");
}

TEST(CopyText, ParsesOctalEscapes) {
  pb::Tuple t = Parse("\\101\\0\\12x\\1234\\777", 1);
  // \101 = 'A'; \0 = NUL; \12 = newline; \123 then a literal '4'; \777 taken modulo 256.
  EXPECT_EQ(t.values(0), std::string("A\0\nxS4\xff", 7));
}

TEST(CopyText, ParsesHexEscapes) {
  pb::Tuple t = Parse("\\x41\\x4a\\xA\\x7g\\x41F\\xz", 1);
  // Two hex digits at most; "\x" without a hex digit is a plain x.
  EXPECT_EQ(t.values(0), "AJ\n\x07gAFxz");
}

TEST(CopyText, BackslashBeforeOtherCharIsThatChar) {
  pb::Tuple t = Parse("\\a\\q\\'\\.\\\tb", 1);
  EXPECT_EQ(t.values(0), "aq'.\tb");  // "\<tab>" is a data tab, not a delimiter
}

TEST(CopyText, TrailingTabMeansATrailingEmptyField) {
  pb::Tuple t = Parse("a\t", 2);
  EXPECT_EQ(t.kinds(), "tt");
  EXPECT_EQ(t.values(0), "a");
  EXPECT_EQ(t.values(1), "");
}

TEST(CopyText, RejectsTooFewColumns) {
  pb::Tuple t;
  Status st = ParseCopyTextLine("a\tb", 3, &t);
  EXPECT_EQ(st.code(), Status::kCorruption);
  EXPECT_EQ(st.message(), "bad COPY text line: expected 3 columns, got 2");
}

TEST(CopyText, RejectsTooManyColumns) {
  pb::Tuple t;
  Status st = ParseCopyTextLine("a\tb\tc\t\\N", 2, &t);
  EXPECT_EQ(st.code(), Status::kCorruption);
  EXPECT_EQ(st.message(), "bad COPY text line: expected 2 columns, got 4");
}

TEST(CopyText, RejectsNonEmptyLineForZeroColumns) {
  pb::Tuple t;
  Status st = ParseCopyTextLine("x", 0, &t);
  EXPECT_EQ(st.code(), Status::kCorruption);
  EXPECT_EQ(st.message(), "bad COPY text line: expected 0 columns, got 1");
}

TEST(CopyText, EscapedTabDoesNotCountAsDelimiter) {
  pb::Tuple t;
  Status st = ParseCopyTextLine("a\\tb", 2, &t);
  EXPECT_EQ(st.code(), Status::kCorruption);
  EXPECT_EQ(st.message(), "bad COPY text line: expected 2 columns, got 1");
}

TEST(CopyText, RejectsLoneTrailingBackslash) {
  pb::Tuple t;
  Status st = ParseCopyTextLine("abc\\", 1, &t);
  EXPECT_EQ(st.code(), Status::kCorruption);
  EXPECT_EQ(st.message(), "bad COPY text line: ends in a lone backslash");
}

TEST(CopyText, ParseReplacesPreviousContents) {
  pb::Tuple t = MakeTuple({Text("old"), Null(), Text("old")});
  ASSERT_TRUE(ParseCopyTextLine("new", 1, &t).ok());
  EXPECT_EQ(t.kinds(), "t");
  ASSERT_EQ(t.values_size(), 1);
  EXPECT_EQ(t.values(0), "new");
}

}  // namespace
}  // namespace pgtrail
