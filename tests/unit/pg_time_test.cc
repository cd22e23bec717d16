#include "storage/pg_time.h"

#include <gtest/gtest.h>

#include <chrono>
#include <cstdlib>
#include <ctime>
#include <optional>
#include <string>

namespace pgtrail {
namespace {

// 2026-11-21 14:03:07 UTC: 20778 days after 1970-01-01 (56 years, 14 of them
// leap, plus 324 days of 2026), then 14 h 3 min 7 s.
constexpr int64_t k20261121T140307Z = (20778LL * 86400 + 14 * 3600 + 3 * 60 + 7) * 1000000;

int64_t ParseOk(std::string_view text) {
  Result<int64_t> r = ParseTimestamp(text);
  EXPECT_TRUE(r.ok()) << text << ": " << r.status().ToString();
  return r.ok() ? *r : INT64_MIN;
}

std::string ExpectedError(std::string_view text) {
  return "invalid time \"" + std::string(text) +
         "\": expected a timestamp like 2026-11-21 14:03:07[.123456][+02:00]";
}

void ExpectRejected(std::string_view text) {
  Result<int64_t> r = ParseTimestamp(text);
  ASSERT_FALSE(r.ok()) << text << " parsed as " << *r;
  EXPECT_EQ(r.status().code(), Status::kInvalidArgument);
  EXPECT_EQ(r.status().message(), ExpectedError(text));
}

// Runs a test in a fixed local time zone and restores the previous one.
class PgTimeLocal : public ::testing::Test {
 protected:
  void SetUp() override {
    const char* old = std::getenv("TZ");
    if (old != nullptr) old_tz_ = old;
    setenv("TZ", "Europe/Berlin", 1);
    tzset();
  }
  void TearDown() override {
    if (old_tz_) {
      setenv("TZ", old_tz_->c_str(), 1);
    } else {
      unsetenv("TZ");
    }
    tzset();
  }

 private:
  std::optional<std::string> old_tz_;
};

TEST(PgTime, PgEpochIsUnix946684800) {
  EXPECT_EQ(ParseOk("2000-01-01 00:00:00+00"), 946684800000000LL);
  EXPECT_EQ(PgTimeToUnixUs(0), 946684800000000LL);
  EXPECT_EQ(PgTimeToUnixUs(-946684800000000LL), 0);
}

TEST(PgTime, ZuluAndNamedUtcForms) {
  EXPECT_EQ(ParseOk("2026-11-21 14:03:07Z"), k20261121T140307Z);
  EXPECT_EQ(ParseOk("2026-11-21T14:03:07Z"), k20261121T140307Z);
  EXPECT_EQ(ParseOk("2026-11-21 14:03:07 UTC"), k20261121T140307Z);
  EXPECT_EQ(ParseOk("2026-11-21 14:03:07utc"), k20261121T140307Z);
  EXPECT_EQ(ParseOk("2026-11-21 14:03:07 GMT"), k20261121T140307Z);
  EXPECT_EQ(ParseOk("2026-11-21 14:03:07 z"), k20261121T140307Z);
  EXPECT_EQ(ParseOk("2026-11-21 14:03:07+00:00"), k20261121T140307Z);
}

TEST(PgTime, HourOffset) {
  // 14:03:07+02 is 12:03:07 UTC.
  EXPECT_EQ(ParseOk("2026-11-21 14:03:07+02"), k20261121T140307Z - 2LL * 3600 * 1000000);
  EXPECT_EQ(ParseOk("2026-11-21 14:03:07 +02"), k20261121T140307Z - 2LL * 3600 * 1000000);
  EXPECT_EQ(ParseOk("2026-11-21 14:03:07-02"), k20261121T140307Z + 2LL * 3600 * 1000000);
}

TEST(PgTime, CompactAndColonMinuteOffsets) {
  const int64_t five_thirty = (5LL * 3600 + 30 * 60) * 1000000;
  EXPECT_EQ(ParseOk("2026-11-21 14:03:07-0530"), k20261121T140307Z + five_thirty);
  EXPECT_EQ(ParseOk("2026-11-21 14:03:07+05:30"), k20261121T140307Z - five_thirty);
  EXPECT_EQ(ParseOk("2026-11-21T14:03:07+0530"), k20261121T140307Z - five_thirty);
  EXPECT_EQ(ParseOk("2026-11-21 14:03:07 -05:30"), k20261121T140307Z + five_thirty);
}

TEST(PgTime, OffsetWithFractionAndTSeparator) {
  EXPECT_EQ(ParseOk("2026-11-21T14:03:07.123456+02"), 1795262587123456LL);
}

TEST(PgTime, FractionalDigitsOneToSix) {
  EXPECT_EQ(ParseOk("2026-11-21 14:03:07.1Z"), k20261121T140307Z + 100000);
  EXPECT_EQ(ParseOk("2026-11-21 14:03:07.12Z"), k20261121T140307Z + 120000);
  EXPECT_EQ(ParseOk("2026-11-21 14:03:07.123Z"), k20261121T140307Z + 123000);
  EXPECT_EQ(ParseOk("2026-11-21 14:03:07.1234Z"), k20261121T140307Z + 123400);
  EXPECT_EQ(ParseOk("2026-11-21 14:03:07.12345Z"), k20261121T140307Z + 123450);
  EXPECT_EQ(ParseOk("2026-11-21 14:03:07.123456Z"), k20261121T140307Z + 123456);
  EXPECT_EQ(ParseOk("2026-11-21 14:03:07.000001Z"), k20261121T140307Z + 1);
}

TEST(PgTime, SecondsAreOptional) {
  EXPECT_EQ(ParseOk("2026-11-21 14:03Z"), k20261121T140307Z - 7000000);
  EXPECT_EQ(ParseOk("2026-11-21 14:03+05:30"), 1795249980000000LL);
}

TEST(PgTime, DateWithOffsetIsMidnightThere) {
  EXPECT_EQ(ParseOk("2026-11-21 UTC"), 20778LL * 86400 * 1000000);
  EXPECT_EQ(ParseOk("2026-11-21+01"), (20778LL * 86400 - 3600) * 1000000);
}

TEST(PgTime, EpochAndNow) {
  EXPECT_EQ(ParseOk("epoch"), 0);
  EXPECT_EQ(ParseOk("EPOCH"), 0);
  auto now_us = [] {
    return std::chrono::duration_cast<std::chrono::microseconds>(
               std::chrono::system_clock::now().time_since_epoch())
        .count();
  };
  int64_t before = now_us();
  int64_t parsed = ParseOk(" now ");
  int64_t after = now_us();
  EXPECT_LE(before, parsed);
  EXPECT_LE(parsed, after);
}

TEST(PgTime, IgnoresSurroundingSpaces) {
  EXPECT_EQ(ParseOk("  2026-11-21 14:03:07Z  "), k20261121T140307Z);
  EXPECT_EQ(ParseOk("2026-11-21   14:03:07Z"), k20261121T140307Z);
}

TEST(PgTime, LeapDayAcceptedOnlyInLeapYears) {
  EXPECT_EQ(ParseOk("2024-02-29 00:00:00Z"), 1709164800000000LL);
  EXPECT_EQ(ParseOk("2000-02-29Z"), (11016LL * 86400) * 1000000);  // 2000 is leap (div by 400)
  ExpectRejected("2023-02-29");
  ExpectRejected("1900-02-29 00:00Z");  // 1900 is not (div by 100)
}

TEST(PgTime, PreEpochAndExtremeYears) {
  EXPECT_EQ(ParseOk("1969-07-20 20:17:40Z"), -14182940000000LL);
  EXPECT_EQ(ParseOk("1900-01-01Z"), -2208988800000000LL);
  EXPECT_EQ(ParseOk("0001-01-01 00:00:00Z"), -62135596800000000LL);
  EXPECT_EQ(ParseOk("9999-12-31 23:59:59.999999Z"), 253402300799999999LL);
}

TEST(PgTime, RejectsGarbage) {
  ExpectRejected("yesterday-ish");
  ExpectRejected("");
  ExpectRejected("   ");
  ExpectRejected("2026");
  ExpectRejected("2026-11");
  ExpectRejected("21.11.2026");
  ExpectRejected("2026-11-21 14:03:07 tomorrow");
  ExpectRejected("2026-11-21T");
  ExpectRejected("2026-11-21T+02");
  ExpectRejected("2026-11-21 1403");
  ExpectRejected("2026-11-21 14:03:07.");
  ExpectRejected("2026-11-21 14:03:07.1234567");
  ExpectRejected("2026-11-21 14:03:07+2");
  ExpectRejected("2026-11-21 14:03:07+02:3");
}

TEST(PgTime, RejectsOutOfRangeFields) {
  ExpectRejected("2026-13-01");
  ExpectRejected("2026-00-10");
  ExpectRejected("2026-04-31");
  ExpectRejected("2026-11-00");
  ExpectRejected("0000-01-01Z");
  ExpectRejected("2026-11-21 25:00");
  ExpectRejected("2026-11-21 24:00:00");
  ExpectRejected("2026-11-21 10:60");
  ExpectRejected("2026-11-21 10:00:60");
}

TEST(PgTime, RejectsOutOfRangeOffsets) {
  ExpectRejected("2026-11-21 10:00 +99");
  ExpectRejected("2026-11-21 10:00 +16");
  ExpectRejected("2026-11-21 10:00 +05:60");
}

TEST(PgTime, ErrorQuotesTheInputAsGiven) {
  Result<int64_t> r = ParseTimestamp(" 2026-13-01 ");
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().message(),
            "invalid time \" 2026-13-01 \": expected a timestamp like "
            "2026-11-21 14:03:07[.123456][+02:00]");
}

TEST_F(PgTimeLocal, WinterLocalTimeIsUtcPlusOne) {
  // 12:00 CET = 11:00 UTC.
  EXPECT_EQ(ParseOk("2026-01-15 12:00:00"), 1768474800000000LL);
}

TEST_F(PgTimeLocal, SummerLocalTimeIsUtcPlusTwo) {
  // 12:00 CEST = 10:00 UTC.
  EXPECT_EQ(ParseOk("2026-07-15 12:00:00"), 1784109600000000LL);
  EXPECT_EQ(ParseOk("2026-07-15T12:00:00.25"), 1784109600250000LL);
}

TEST_F(PgTimeLocal, DateAloneIsLocalMidnight) {
  // 2026-11-21 00:00 CET = 2026-11-20 23:00 UTC.
  EXPECT_EQ(ParseOk("2026-11-21"), 1795215600000000LL);
  EXPECT_EQ(ParseOk("2026-11-21 14:03:07"), k20261121T140307Z - 3600LL * 1000000);
}

TEST_F(PgTimeLocal, ExplicitOffsetIgnoresLocalZone) {
  EXPECT_EQ(ParseOk("2026-07-15 12:00:00+00"), 1784116800000000LL);
  EXPECT_EQ(ParseOk("2026-11-21 14:03:07Z"), k20261121T140307Z);
}

TEST(PgTime, FormatsUtcWithMicroseconds) {
  EXPECT_EQ(FormatTimestampUtc(0), "1970-01-01 00:00:00.000000+00");
  EXPECT_EQ(FormatTimestampUtc(946684800000000LL), "2000-01-01 00:00:00.000000+00");
  EXPECT_EQ(FormatTimestampUtc(k20261121T140307Z + 123456), "2026-11-21 14:03:07.123456+00");
  EXPECT_EQ(FormatTimestampUtc(k20261121T140307Z + 1), "2026-11-21 14:03:07.000001+00");
  EXPECT_EQ(FormatTimestampUtc(1709164800000000LL + 42000), "2024-02-29 00:00:00.042000+00");
}

TEST(PgTime, FormatsTimesBefore1970) {
  EXPECT_EQ(FormatTimestampUtc(-1), "1969-12-31 23:59:59.999999+00");
  EXPECT_EQ(FormatTimestampUtc(-14182940000000LL), "1969-07-20 20:17:40.000000+00");
  EXPECT_EQ(FormatTimestampUtc(-2208988800000000LL + 500000), "1900-01-01 00:00:00.500000+00");
  EXPECT_EQ(FormatTimestampUtc(-62135596800000000LL), "0001-01-01 00:00:00.000000+00");
}

TEST(PgTime, FormatThenParseRoundTrips) {
  for (int64_t us : {int64_t{0}, int64_t{-1}, int64_t{1795262587123456}, int64_t{-2208988799999999},
                     int64_t{253402300799999999}}) {
    EXPECT_EQ(ParseOk(FormatTimestampUtc(us)), us) << FormatTimestampUtc(us);
  }
}

}  // namespace
}  // namespace pgtrail
