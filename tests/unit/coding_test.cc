#include "storage/coding.h"

#include <gtest/gtest.h>

#include <cstdint>
#include <string>
#include <string_view>

namespace pgtrail {
namespace {

// Asserts a Status is kCorruption with exactly `expected` as its message.
void ExpectCorruption(const Status& status, const std::string& expected) {
  EXPECT_EQ(status.code(), Status::kCorruption) << status.ToString();
  EXPECT_EQ(status.message(), expected);
}

// ---------------------------------------------------------------------------
// Append* and Decode*

TEST(CodingTest, AppendWritesBigEndianBytes) {
  std::string dst;
  AppendU8(&dst, 0xAB);
  AppendU16BE(&dst, 0x1234);
  AppendU32BE(&dst, 0x89ABCDEF);
  AppendU64BE(&dst, 0x0102030405060708);
  EXPECT_EQ(dst, std::string("\xAB"
                             "\x12\x34"
                             "\x89\xAB\xCD\xEF"
                             "\x01\x02\x03\x04\x05\x06\x07\x08",
                             15));
}

TEST(CodingTest, AppendCStringAddsOneNul) {
  std::string dst;
  AppendCString(&dst, "ab");
  AppendCString(&dst, "");
  EXPECT_EQ(dst, std::string("ab\0\0", 4));
}

TEST(CodingTest, DecodeReadsBigEndianWithHighBitsSet) {
  EXPECT_EQ(DecodeU32BE("\xFF\xFE\xFD\xFC"), 0xFFFEFDFCu);
  EXPECT_EQ(DecodeU64BE("\x80\x00\x00\x00\x00\x00\x00\x01"), 0x8000000000000001u);
}

TEST(CodingTest, AppendedValuesReadBackUnchanged) {
  std::string dst;
  AppendU8(&dst, 0xFF);
  AppendU16BE(&dst, 0xFFFF);
  AppendU32BE(&dst, 0xFFFFFFFF);
  AppendU64BE(&dst, UINT64_MAX);
  AppendCString(&dst, "name");
  ByteReader reader(dst);
  uint8_t u8;
  uint16_t u16;
  uint32_t u32;
  uint64_t u64;
  std::string_view text;
  ASSERT_TRUE(reader.ReadU8("u8", &u8).ok());
  ASSERT_TRUE(reader.ReadU16BE("u16", &u16).ok());
  ASSERT_TRUE(reader.ReadU32BE("u32", &u32).ok());
  ASSERT_TRUE(reader.ReadU64BE("u64", &u64).ok());
  ASSERT_TRUE(reader.ReadCString("name", &text).ok());
  EXPECT_EQ(u8, 0xFF);
  EXPECT_EQ(u16, 0xFFFF);
  EXPECT_EQ(u32, 0xFFFFFFFFu);
  EXPECT_EQ(u64, UINT64_MAX);
  EXPECT_EQ(text, "name");
  EXPECT_TRUE(reader.ExpectEnd("values").ok());
}

// ---------------------------------------------------------------------------
// ByteReader

TEST(ByteReaderTest, ReadU8ReturnsByteAndAdvances) {
  ByteReader reader(std::string_view("\x80\x01", 2));
  uint8_t value;
  ASSERT_TRUE(reader.ReadU8("flags", &value).ok());
  EXPECT_EQ(value, 0x80);
  EXPECT_EQ(reader.position(), 1u);
  EXPECT_EQ(reader.remaining(), 1u);
}

TEST(ByteReaderTest, ReadU16BEIsBigEndian) {
  ByteReader reader(std::string_view("\x12\x34\xFF\xFE", 4));
  uint16_t value;
  ASSERT_TRUE(reader.ReadU16BE("a", &value).ok());
  EXPECT_EQ(value, 0x1234);
  ASSERT_TRUE(reader.ReadU16BE("b", &value).ok());
  EXPECT_EQ(value, 0xFFFE);
}

TEST(ByteReaderTest, ReadU32BEIsBigEndian) {
  ByteReader reader(std::string_view("\x00\x00\x40\x01", 4));
  uint32_t value;
  ASSERT_TRUE(reader.ReadU32BE("relid", &value).ok());
  EXPECT_EQ(value, 16385u);
  EXPECT_TRUE(reader.empty());
}

TEST(ByteReaderTest, ReadU64BEIsBigEndian) {
  ByteReader reader(std::string_view("\x00\x00\x00\x16\xB3\x74\xD8\x48", 8));
  uint64_t value;
  ASSERT_TRUE(reader.ReadU64BE("lsn", &value).ok());
  EXPECT_EQ(value, 0x16B374D848u);
}

TEST(ByteReaderTest, SignedReadsAreTwosComplement) {
  ByteReader reader(
      std::string_view("\xFF\xFF"
                       "\x80\x00\x00\x00"
                       "\xFF\xFF\xFF\xFF\xFF\xFF\xFF\xFE"
                       "\x7F\xFF",
                       16));
  int16_t i16;
  int32_t i32;
  int64_t i64;
  ASSERT_TRUE(reader.ReadI16BE("i16", &i16).ok());
  EXPECT_EQ(i16, -1);
  ASSERT_TRUE(reader.ReadI32BE("i32", &i32).ok());
  EXPECT_EQ(i32, INT32_MIN);
  ASSERT_TRUE(reader.ReadI64BE("i64", &i64).ok());
  EXPECT_EQ(i64, -2);
  ASSERT_TRUE(reader.ReadI16BE("i16", &i16).ok());
  EXPECT_EQ(i16, INT16_MAX);
}

TEST(ByteReaderTest, EachReadPastEndNamesFieldAndSizes) {
  const std::string_view three("\x01\x02\x03", 3);
  uint8_t u8;
  uint16_t u16;
  uint32_t u32;
  uint64_t u64;
  int16_t i16;
  int32_t i32;
  int64_t i64;
  ExpectCorruption(ByteReader("").ReadU8("kind", &u8), "truncated kind: need 1 bytes, have 0");
  ExpectCorruption(ByteReader(three.substr(0, 1)).ReadU16BE("count", &u16),
                   "truncated count: need 2 bytes, have 1");
  ExpectCorruption(ByteReader(three).ReadU32BE("relid", &u32),
                   "truncated relid: need 4 bytes, have 3");
  ExpectCorruption(ByteReader(three).ReadU64BE("lsn", &u64), "truncated lsn: need 8 bytes, have 3");
  ExpectCorruption(ByteReader(three.substr(0, 1)).ReadI16BE("ncols", &i16),
                   "truncated ncols: need 2 bytes, have 1");
  ExpectCorruption(ByteReader(three).ReadI32BE("length", &i32),
                   "truncated length: need 4 bytes, have 3");
  ExpectCorruption(ByteReader(three).ReadI64BE("time", &i64),
                   "truncated time: need 8 bytes, have 3");
}

TEST(ByteReaderTest, FailedReadDoesNotAdvance) {
  ByteReader reader(std::string_view("\x01\x02\x03", 3));
  uint32_t u32;
  EXPECT_FALSE(reader.ReadU32BE("relid", &u32).ok());
  EXPECT_EQ(reader.position(), 0u);
  uint8_t u8;
  ASSERT_TRUE(reader.ReadU8("kind", &u8).ok());
  EXPECT_EQ(u8, 1);
}

TEST(ByteReaderTest, ReadCStringStopsAtNulAndSkipsIt) {
  ByteReader reader(std::string_view("public\0\0x", 9));
  std::string_view text;
  ASSERT_TRUE(reader.ReadCString("namespace", &text).ok());
  EXPECT_EQ(text, "public");
  EXPECT_EQ(reader.position(), 7u);
  ASSERT_TRUE(reader.ReadCString("name", &text).ok());
  EXPECT_EQ(text, "");
  EXPECT_EQ(reader.remaining(), 1u);
}

TEST(ByteReaderTest, ReadCStringWithoutNulIsUnterminated) {
  std::string_view text;
  ExpectCorruption(ByteReader("public").ReadCString("namespace", &text), "unterminated namespace");
  ExpectCorruption(ByteReader("").ReadCString("name", &text), "unterminated name");
}

TEST(ByteReaderTest, ReadBytesReturnsExactlyNBytesIncludingNuls) {
  ByteReader reader(std::string_view("a\0b\tc", 5));
  std::string_view bytes;
  ASSERT_TRUE(reader.ReadBytes("data", 4, &bytes).ok());
  EXPECT_EQ(bytes, std::string_view("a\0b\t", 4));
  ASSERT_TRUE(reader.ReadBytes("data", 1, &bytes).ok());
  EXPECT_EQ(bytes, "c");
  ASSERT_TRUE(reader.ReadBytes("nothing", 0, &bytes).ok());
  EXPECT_TRUE(bytes.empty());
}

TEST(ByteReaderTest, ReadBytesPastEndIsTruncated) {
  std::string_view bytes;
  ExpectCorruption(ByteReader("abcd").ReadBytes("content", 5, &bytes),
                   "truncated content: need 5 bytes, have 4");
  ExpectCorruption(ByteReader("abcd").ReadBytes("content", SIZE_MAX, &bytes),
                   "truncated content: need " + std::to_string(SIZE_MAX) + " bytes, have 4");
}

TEST(ByteReaderTest, ExpectEndAcceptsFullyConsumedInput) {
  EXPECT_TRUE(ByteReader("").ExpectEnd("message").ok());
  ByteReader reader("ab");
  std::string_view bytes;
  ASSERT_TRUE(reader.ReadBytes("data", 2, &bytes).ok());
  EXPECT_TRUE(reader.ExpectEnd("message").ok());
}

TEST(ByteReaderTest, ExpectEndCountsTrailingBytes) {
  ByteReader reader("abc");
  uint8_t u8;
  ASSERT_TRUE(reader.ReadU8("kind", &u8).ok());
  ExpectCorruption(reader.ExpectEnd("pgoutput Begin"), "pgoutput Begin: 2 trailing bytes");
}

// ---------------------------------------------------------------------------
// FormatLsn / ParseLsn

uint64_t MustParseLsn(std::string_view text) {
  uint64_t lsn = 0;
  Status status = ParseLsn(text, &lsn);
  EXPECT_TRUE(status.ok()) << text << ": " << status.ToString();
  return lsn;
}

TEST(LsnTest, FormatWritesUpperCaseHalvesWithoutPadding) {
  EXPECT_EQ(FormatLsn(0), "0/0");
  EXPECT_EQ(FormatLsn(0x16B374D848), "16/B374D848");
  EXPECT_EQ(FormatLsn(0x100000000), "1/0");
  EXPECT_EQ(FormatLsn(0x0000000A), "0/A");
  EXPECT_EQ(FormatLsn(UINT64_MAX), "FFFFFFFF/FFFFFFFF");
}

TEST(LsnTest, ParseReadsBothHalves) {
  EXPECT_EQ(MustParseLsn("0/0"), 0u);
  EXPECT_EQ(MustParseLsn("16/B374D848"), 0x16B374D848u);
  EXPECT_EQ(MustParseLsn("FFFFFFFF/FFFFFFFF"), UINT64_MAX);
}

TEST(LsnTest, ParseAcceptsLowerCaseAndZeroPadding) {
  EXPECT_EQ(MustParseLsn("16/b374d848"), 0x16B374D848u);
  EXPECT_EQ(MustParseLsn("0/0000000A"), 0xAu);  // newer servers pad the low half
  EXPECT_EQ(MustParseLsn("00000001/00000000"), 0x100000000u);
}

TEST(LsnTest, FormatThenParseRoundTrips) {
  for (uint64_t lsn : {uint64_t{0}, uint64_t{1}, uint64_t{0xFFFFFFFF}, uint64_t{0x100000000},
                       uint64_t{0x16B374D848}, uint64_t{0xDEADBEEFCAFEBABE}, UINT64_MAX}) {
    SCOPED_TRACE(FormatLsn(lsn));
    EXPECT_EQ(MustParseLsn(FormatLsn(lsn)), lsn);
  }
}

TEST(LsnTest, ParseRejectsMalformedText) {
  for (std::string_view text : {"", "/", "1/", "/1", "G/1", "1/G", "123456789/0", "0/123456789",
                                "1/2/3", "16B374D848", " 1/2", "1/2 ", "-1/0", "0x1/0"}) {
    SCOPED_TRACE(std::string(text));
    uint64_t lsn = 42;
    Status status = ParseLsn(text, &lsn);
    EXPECT_EQ(status.code(), Status::kInvalidArgument) << status.ToString();
    EXPECT_NE(status.message().find("invalid LSN \"" + std::string(text) + "\""), std::string::npos)
        << status.message();
  }
}

}  // namespace
}  // namespace pgtrail
