// PatternLiteral: which changelog PATTERNs are one literal, so that a change
// whose stored bytes lack it can be skipped unparsed.
#include <gtest/gtest.h>

#include <string>

#include "tools/changelog.h"

namespace pgtrail {
namespace {

TEST(PatternLiteralTest, PlainTextIsItsOwnLiteral) {
  EXPECT_EQ(PatternLiteral("Grace"), "Grace");
  EXPECT_EQ(PatternLiteral("947156"), "947156");
  EXPECT_EQ(PatternLiteral("o'brien, 100% <ok> = #1 @ /tmp ~!&;:_-"),
            "o'brien, 100% <ok> = #1 @ /tmp ~!&;:_-");
  EXPECT_EQ(PatternLiteral("ALTER TABLE"), "ALTER TABLE");
  EXPECT_EQ(PatternLiteral("say \"hi\""), "say \"hi\"");
}

TEST(PatternLiteralTest, AnchorsAtTheEndsAreDropped) {
  EXPECT_EQ(PatternLiteral("^947156$"), "947156");
  EXPECT_EQ(PatternLiteral("^rob"), "rob");
  EXPECT_EQ(PatternLiteral("son$"), "son");
}

TEST(PatternLiteralTest, AnyOtherPatternHasNone) {
  for (const char* pattern :
       {"", "^", "$", "^$", "^^a", "a$$", "a$b", "a^b", "ada@example.com", "gam+a", "a*", "a?",
        "a|b", "(x)", "[0-9]", "x{2}", "a\\.b", "\\d"}) {
    EXPECT_EQ(PatternLiteral(pattern), "") << pattern;
  }
}

TEST(PatternLiteralTest, NothingOutsidePrintableAscii) {
  for (const char* pattern : {"tab\there", "new\nline", "\x01", "caf\xc3\xa9", "\x7f"}) {
    EXPECT_EQ(PatternLiteral(pattern), "") << pattern;
  }
}

}  // namespace
}  // namespace pgtrail
