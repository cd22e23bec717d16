// Pins the exact bytes of every store key layout (storage/keys.h). A change
// here is an on-disk format change.
#include "storage/keys.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cstdint>
#include <limits>
#include <string>
#include <vector>

namespace pgtrail::keys {
namespace {

std::string Hex(std::string_view bytes) {
  static constexpr char kDigits[] = "0123456789abcdef";
  std::string out;
  for (char c : bytes) {
    unsigned char b = static_cast<unsigned char>(c);
    out.push_back(kDigits[b >> 4]);
    out.push_back(kDigits[b & 0xf]);
  }
  return out;
}

KeyValue T(std::string_view text) { return KeyValue{false, text}; }
KeyValue N() { return KeyValue{true, {}}; }

std::string RowKey(const std::vector<KeyValue>& values) {
  std::string out;
  AppendRowKey(&out, values);
  return out;
}

constexpr uint64_t kLsn = 0x0000000116B374D8ULL;  // 1/16B374D8

TEST(Keys, MetaKeyIsTheWordMeta) { EXPECT_EQ(std::string(kMetaKey), "meta"); }

TEST(Keys, TxnKeyIsBigEndianLsn) {
  EXPECT_EQ(Hex(TxnKey(kLsn)), "0000000116b374d8");
  EXPECT_EQ(Hex(TxnKey(0x0102030405060708ULL)), "0102030405060708");
  uint64_t lsn = 0;
  ASSERT_TRUE(ParseTxnKey(TxnKey(kLsn), &lsn).ok());
  EXPECT_EQ(lsn, kLsn);
}

TEST(Keys, ChangeKeyIsLsnThenSeq) {
  EXPECT_EQ(Hex(ChangeKey(kLsn, 7)),
            "0000000116b374d8"
            "00000007");
  EXPECT_EQ(Hex(ChangeKey(1, 0xA0B0C0D0)),
            "0000000000000001"
            "a0b0c0d0");
  uint64_t lsn = 0;
  uint32_t seq = 0;
  ASSERT_TRUE(ParseChangeKey(ChangeKey(kLsn, 0xA0B0C0D0), &lsn, &seq).ok());
  EXPECT_EQ(lsn, kLsn);
  EXPECT_EQ(seq, 0xA0B0C0D0u);
}

TEST(Keys, RelationKeyIsRelidThenLsnThenSeq) {
  EXPECT_EQ(Hex(RelationKey(16384, kLsn, 7)),
            "00004000"
            "0000000116b374d8"
            "00000007");
  uint32_t relid = 0;
  uint64_t lsn = 0;
  uint32_t seq = 0;
  ASSERT_TRUE(ParseRelationKey(RelationKey(16384, kLsn, 7), &relid, &lsn, &seq).ok());
  EXPECT_EQ(relid, 16384u);
  EXPECT_EQ(lsn, kLsn);
  EXPECT_EQ(seq, 7u);
}

TEST(Keys, TimeKeyBiasesTheSignBit) {
  EXPECT_EQ(Hex(TimeKey(0, kLsn)),
            "8000000000000000"
            "0000000116b374d8");
  EXPECT_EQ(Hex(TimeKey(1, 2)),
            "8000000000000001"
            "0000000000000002");
  EXPECT_EQ(Hex(TimeKey(-1, 2)),
            "7fffffffffffffff"
            "0000000000000002");
  EXPECT_EQ(Hex(TimeKey(std::numeric_limits<int64_t>::min(), 0)),
            "0000000000000000"
            "0000000000000000");
  EXPECT_EQ(Hex(TimeKey(std::numeric_limits<int64_t>::max(), 0)),
            "ffffffffffffffff"
            "0000000000000000");
}

TEST(Keys, TimeKeysSortByTimeIncludingNegativeThenLsn) {
  std::vector<std::string> ordered = {
      TimeKey(std::numeric_limits<int64_t>::min(), 9),
      TimeKey(-2208988800000000LL, 0),  // 1900
      TimeKey(-1, 5),
      TimeKey(0, 0),
      TimeKey(0, 1),
      TimeKey(1, 0),
      TimeKey(1795269787000000LL, 3),
      TimeKey(std::numeric_limits<int64_t>::max(), 0),
  };
  for (size_t i = 1; i < ordered.size(); i++) {
    EXPECT_LT(ordered[i - 1], ordered[i]) << "at " << i;
  }
}

TEST(Keys, TimeKeyRoundTripsNegativeTimes) {
  for (int64_t t : {std::numeric_limits<int64_t>::min(), int64_t{-1}, int64_t{0},
                    int64_t{1795269787123456}, std::numeric_limits<int64_t>::max()}) {
    int64_t parsed_time = 0;
    uint64_t lsn = 0;
    ASSERT_TRUE(ParseTimeKey(TimeKey(t, kLsn), &parsed_time, &lsn).ok());
    EXPECT_EQ(parsed_time, t);
    EXPECT_EQ(lsn, kLsn);
    EXPECT_EQ(UnbiasTime(BiasTime(t)), t);
  }
}

TEST(Keys, MarkKeyIsNameNulThenLsnThenSeq) {
  EXPECT_EQ(Hex(MarkKey("pre-v2", kLsn, 3)),
            "7072652d7632"  // "pre-v2"
            "00"
            "0000000116b374d8"
            "00000003");
  std::string name;
  uint64_t lsn = 0;
  uint32_t seq = 0;
  ASSERT_TRUE(ParseMarkKey(MarkKey("pre-v2", kLsn, 3), &name, &lsn, &seq).ok());
  EXPECT_EQ(name, "pre-v2");
  EXPECT_EQ(lsn, kLsn);
  EXPECT_EQ(seq, 3u);
  EXPECT_EQ(ParseMarkKey(std::string(13, 'x'), &name, &lsn, &seq).message(), "bad mark key");
  EXPECT_EQ(ParseMarkKey("name" + std::string(13, 'x'), &name, &lsn, &seq).message(),
            "bad mark key");
}

TEST(Keys, MarkNamesAreShortAndPlain) {
  EXPECT_TRUE(IsValidMarkName("before-release_42.v1:a"));
  EXPECT_TRUE(IsValidMarkName(std::string(63, 'a')));
  EXPECT_FALSE(IsValidMarkName(""));
  EXPECT_FALSE(IsValidMarkName(std::string(64, 'a')));
  EXPECT_FALSE(IsValidMarkName("has space"));
  EXPECT_FALSE(IsValidMarkName("quote\""));
  EXPECT_FALSE(IsValidMarkName(std::string("nul\0", 4)));
}

TEST(Keys, SnapshotKeyIsBigEndianId) {
  EXPECT_EQ(Hex(SnapshotKey(3)), "0000000000000003");
  uint64_t id = 0;
  ASSERT_TRUE(ParseSnapshotKey(SnapshotKey(0x1122334455667788ULL), &id).ok());
  EXPECT_EQ(id, 0x1122334455667788ULL);
}

TEST(Keys, SnapRowKeyWithoutOrdinal) {
  std::string rowkey = RowKey({T("a")});
  EXPECT_EQ(Hex(SnapRowPrefix(3, 16384)),
            "0000000000000003"
            "00004000");
  EXPECT_EQ(Hex(SnapRowKey(3, 16384, rowkey, -1)),
            "0000000000000003"
            "00004000"
            "02610001");
}

TEST(Keys, SnapRowKeyWithOrdinal) {
  std::string rowkey = RowKey({T("a"), N()});
  EXPECT_EQ(Hex(SnapRowKey(3, 16384, rowkey, 0)),
            "0000000000000003"
            "00004000"
            "0261000101"
            "0000000000000000");
  EXPECT_EQ(Hex(SnapRowKey(3, 16384, rowkey, 258)),
            "0000000000000003"
            "00004000"
            "0261000101"
            "0000000000000102");
}

TEST(Keys, RowIdxKeyIsRelidRowkeyLsnSeq) {
  std::string rowkey = RowKey({T("42")});
  EXPECT_EQ(Hex(RowIdxPrefix(16384)), "00004000");
  EXPECT_EQ(Hex(RowIdxKey(16384, rowkey, kLsn, 2)),
            "00004000"
            "0234320001"
            "0000000116b374d8"
            "00000002");
}

TEST(Keys, RowIdxKeyRoundTrips) {
  std::string rowkey = RowKey({T(std::string_view("x\0y", 3)), N(), T("")});
  uint32_t relid = 0;
  std::string_view parsed_rowkey;
  uint64_t lsn = 0;
  uint32_t seq = 0;
  std::string key = RowIdxKey(77, rowkey, kLsn, 9);
  ASSERT_TRUE(ParseRowIdxKey(key, &relid, &parsed_rowkey, &lsn, &seq).ok());
  EXPECT_EQ(relid, 77u);
  EXPECT_EQ(parsed_rowkey, rowkey);
  EXPECT_EQ(lsn, kLsn);
  EXPECT_EQ(seq, 9u);
}

TEST(Keys, RowIdxKeyWithEmptyRowkeyIsSixteenBytes) {
  uint32_t relid = 0;
  std::string_view rowkey = "unset";
  uint64_t lsn = 0;
  uint32_t seq = 0;
  ASSERT_TRUE(ParseRowIdxKey(RowIdxKey(5, "", 6, 7), &relid, &rowkey, &lsn, &seq).ok());
  EXPECT_EQ(relid, 5u);
  EXPECT_EQ(rowkey, "");
  EXPECT_EQ(lsn, 6u);
  EXPECT_EQ(seq, 7u);
}

TEST(Keys, TruncateKeyIsRelidLsnSeq) {
  EXPECT_EQ(Hex(TruncatePrefix(16384)), "00004000");
  EXPECT_EQ(Hex(TruncateKey(16384, kLsn, 1)),
            "00004000"
            "0000000116b374d8"
            "00000001");
  uint32_t relid = 0;
  uint64_t lsn = 0;
  uint32_t seq = 0;
  ASSERT_TRUE(ParseTruncateKey(TruncateKey(16384, kLsn, 1), &relid, &lsn, &seq).ok());
  EXPECT_EQ(relid, 16384u);
  EXPECT_EQ(lsn, kLsn);
  EXPECT_EQ(seq, 1u);
}

TEST(Keys, FixedSizeParsersRejectWrongLengthsByName) {
  uint64_t u64 = 0;
  uint32_t u32 = 0;
  int64_t i64 = 0;
  Status st = ParseTxnKey(std::string(7, '\0'), &u64);
  EXPECT_EQ(st.code(), Status::kCorruption);
  EXPECT_EQ(st.message(), "bad txn key: 7 bytes, expected 8");
  EXPECT_EQ(ParseChangeKey(std::string(13, '\0'), &u64, &u32).message(),
            "bad change key: 13 bytes, expected 12");
  EXPECT_EQ(ParseRelationKey("", &u32, &u64, &u32).message(),
            "bad relation key: 0 bytes, expected 16");
  EXPECT_EQ(ParseTimeKey(std::string(8, '\0'), &i64, &u64).message(),
            "bad time key: 8 bytes, expected 16");
  EXPECT_EQ(ParseSnapshotKey(std::string(9, '\0'), &u64).message(),
            "bad snapshot key: 9 bytes, expected 8");
  EXPECT_EQ(ParseTruncateKey(std::string(15, '\0'), &u32, &u64, &u32).message(),
            "bad truncate key: 15 bytes, expected 16");
}

TEST(Keys, ParseRowIdxKeyRejectsShortKey) {
  uint32_t relid = 0;
  std::string_view rowkey;
  uint64_t lsn = 0;
  uint32_t seq = 0;
  Status st = ParseRowIdxKey(std::string(15, '\0'), &relid, &rowkey, &lsn, &seq);
  EXPECT_EQ(st.code(), Status::kCorruption);
  EXPECT_EQ(st.message(), "bad rowidx key: too short");
}

TEST(RowKey, EncodesNullEmptyAndNulDistinctly) {
  EXPECT_EQ(Hex(RowKey({N()})), "01");
  EXPECT_EQ(Hex(RowKey({T("")})), "020001");
  EXPECT_EQ(Hex(RowKey({T(std::string_view())})), "020001");  // no bytes at all
  EXPECT_EQ(Hex(RowKey({T(std::string_view("\0", 1))})), "0200ff0001");
  EXPECT_EQ(Hex(RowKey({T(std::string_view("a\0b", 3))})), "026100ff620001");
  EXPECT_EQ(Hex(RowKey({T("\xff\x01")})), "02ff010001");
  EXPECT_EQ(Hex(RowKey({T("a"), N(), T("b")})),
            "0261000101"
            "02620001");
  EXPECT_EQ(Hex(RowKey({})), "");
}

TEST(RowKey, AppendsToExistingBytes) {
  std::string dst = "pre";
  AppendRowKey(&dst, {T("a")});
  EXPECT_EQ(Hex(dst),
            "707265"
            "02610001");
}

TEST(RowKey, DifferentRowsNeverShareAnEncoding) {
  std::vector<std::string> keys = {
      RowKey({T("a")}),         RowKey({T("ab")}),
      RowKey({T("a"), T("b")}), RowKey({T("ab"), T("")}),
      RowKey({T(""), T("ab")}), RowKey({T("a"), N()}),
      RowKey({N(), T("a")}),    RowKey({N()}),
      RowKey({T("")}),          RowKey({T(std::string_view("\0", 1))}),
  };
  for (size_t i = 0; i < keys.size(); i++) {
    for (size_t j = i + 1; j < keys.size(); j++) {
      EXPECT_NE(keys[i], keys[j]) << i << " vs " << j;
    }
  }
}

// For a fixed column count, no row key is a prefix of another.
void ExpectPrefixFree(const std::vector<std::string>& keys) {
  for (size_t i = 0; i < keys.size(); i++) {
    for (size_t j = 0; j < keys.size(); j++) {
      if (i == j) continue;
      EXPECT_NE(keys[j].compare(0, keys[i].size(), keys[i]), 0)
          << Hex(keys[i]) << " is a prefix of " << Hex(keys[j]);
    }
  }
}

TEST(RowKey, OneColumnKeysArePrefixFree) {
  ExpectPrefixFree({
      RowKey({N()}),
      RowKey({T("")}),
      RowKey({T("a")}),
      RowKey({T("ab")}),
      RowKey({T(std::string_view("a\0", 2))}),
      RowKey({T(std::string_view("a\0\x01", 3))}),
      RowKey({T(std::string_view("\0", 1))}),
      RowKey({T("\xff")}),
  });
}

TEST(RowKey, TwoColumnKeysArePrefixFree) {
  ExpectPrefixFree({
      RowKey({T("a"), T("b")}),
      RowKey({T("ab"), T("")}),
      RowKey({T("a"), T("")}),
      RowKey({T(""), T("ab")}),
      RowKey({T("a"), N()}),
      RowKey({N(), T("a")}),
      RowKey({N(), N()}),
      RowKey({T("a"), T("bc")}),
  });
}

// All entries of one rowkey must be one contiguous run in bytewise order (the
// order of std::string and of RocksDB's default comparator), whatever the LSNs.
TEST(RowKey, RowIdxEntriesOfOneRowkeyAreContiguous) {
  std::vector<std::string> rowkeys = {
      RowKey({N()}),
      RowKey({T("")}),
      RowKey({T("a")}),
      RowKey({T("ab")}),
      RowKey({T("b")}),
      RowKey({T(std::string_view("a\0", 2))}),
      RowKey({T(std::string_view("\0", 1))}),
      RowKey({T("\x01")}),
      RowKey({T("\xff\xff")}),
  };
  struct Pos {
    uint64_t lsn;
    uint32_t seq;
  };
  std::vector<Pos> positions = {{0, 0},
                                {1, 0},
                                {0x0100000000000000ULL, 5},
                                {0xffffffffffffffffULL, 0xffffffff},
                                {0x0001ff0000000000ULL, 1}};
  std::vector<std::string> entries;
  for (const std::string& rk : rowkeys) {
    for (const Pos& p : positions) entries.push_back(RowIdxKey(9, rk, p.lsn, p.seq));
  }
  std::sort(entries.begin(), entries.end());

  std::vector<std::string> run_order;  // rowkey of each run, in sorted order
  uint64_t prev_lsn = 0;
  uint32_t prev_seq = 0;
  for (const std::string& key : entries) {
    uint32_t relid = 0;
    std::string_view rk;
    uint64_t lsn = 0;
    uint32_t seq = 0;
    ASSERT_TRUE(ParseRowIdxKey(key, &relid, &rk, &lsn, &seq).ok());
    if (run_order.empty() || run_order.back() != rk) {
      run_order.emplace_back(rk);
    } else {
      EXPECT_TRUE(lsn > prev_lsn || (lsn == prev_lsn && seq > prev_seq)) << "LSN order in a run";
    }
    prev_lsn = lsn;
    prev_seq = seq;
  }
  // One run per rowkey means every rowkey's entries are contiguous.
  ASSERT_EQ(run_order.size(), rowkeys.size());
  std::vector<std::string> sorted_rowkeys = rowkeys;
  std::sort(sorted_rowkeys.begin(), sorted_rowkeys.end());
  EXPECT_EQ(run_order, sorted_rowkeys);
}

TEST(RowKey, ParseRoundTripsAndReportsConsumed) {
  std::vector<KeyValue> values = {T("x"), N(), T(""), T(std::string_view("\0a\0", 3)), T("\xff")};
  std::string encoded = RowKey(values);
  std::string with_suffix = encoded + std::string("\x00\x00\x00\x07tail", 8);
  std::vector<std::string> texts;
  std::vector<bool> nulls;
  size_t consumed = 0;
  ASSERT_TRUE(ParseRowKey(with_suffix, values.size(), &texts, &nulls, &consumed).ok());
  EXPECT_EQ(consumed, encoded.size());
  ASSERT_EQ(texts.size(), values.size());
  ASSERT_EQ(nulls.size(), values.size());
  for (size_t i = 0; i < values.size(); i++) {
    EXPECT_EQ(nulls[i], values[i].is_null) << i;
    EXPECT_EQ(texts[i], values[i].is_null ? "" : values[i].text) << i;
  }
}

TEST(RowKey, ParseValueDecodesOneColumnAndMovesPastIt) {
  // NULL, "", "a\0b\xff" (its zero escaped), then a trailing byte.
  const std::string in("\x01"
                       "\x02\x00\x01"
                       "\x02"
                       "a\x00\xff"
                       "b\xff\x00\x01"
                       "z",
                       13);
  std::string text = "stale";
  bool is_null = false;
  size_t pos = 0;
  ASSERT_TRUE(ParseRowKeyValue(in, &pos, &is_null, &text).ok());
  EXPECT_TRUE(is_null);
  EXPECT_EQ(text, "");
  EXPECT_EQ(pos, 1u);
  ASSERT_TRUE(ParseRowKeyValue(in, &pos, &is_null, &text).ok());
  EXPECT_FALSE(is_null);
  EXPECT_EQ(text, "");
  EXPECT_EQ(pos, 4u);
  ASSERT_TRUE(ParseRowKeyValue(in, &pos, &is_null, &text).ok());
  EXPECT_FALSE(is_null);
  EXPECT_EQ(text, std::string("a\0b\xff", 4));
  EXPECT_EQ(pos, 12u);
  Status st = ParseRowKeyValue(in, &pos, &is_null, &text);
  EXPECT_EQ(st.code(), Status::kCorruption);
  EXPECT_EQ(st.message(), "bad row key column tag");
}

TEST(RowKey, ParseReusesItsStringsAcrossRows) {
  std::vector<std::string> texts;
  std::vector<bool> nulls;
  size_t consumed = 0;
  const std::string long_text(100, 'x');
  ASSERT_TRUE(ParseRowKey(RowKey({T(long_text), N()}), 2, &texts, &nulls, &consumed).ok());
  const char* storage = texts[0].data();
  ASSERT_TRUE(ParseRowKey(RowKey({T("short"), T("b")}), 2, &texts, &nulls, &consumed).ok());
  EXPECT_EQ(texts, (std::vector<std::string>{"short", "b"}));
  EXPECT_EQ(nulls, (std::vector<bool>{false, false}));
  EXPECT_EQ(texts[0].data(), storage);
  // A NULL after a text leaves no stale text behind.
  ASSERT_TRUE(ParseRowKey(RowKey({N(), T("")}), 2, &texts, &nulls, &consumed).ok());
  EXPECT_EQ(texts, (std::vector<std::string>{"", ""}));
  EXPECT_EQ(nulls, (std::vector<bool>{true, false}));
}

TEST(RowKey, ParseOfZeroColumnsConsumesNothing) {
  std::vector<std::string> texts = {"stale"};
  std::vector<bool> nulls = {true};
  size_t consumed = 99;
  ASSERT_TRUE(ParseRowKey("\x02", 0, &texts, &nulls, &consumed).ok());
  EXPECT_EQ(consumed, 0u);
  EXPECT_TRUE(texts.empty());
  EXPECT_TRUE(nulls.empty());
}

Status ParseBytes(std::string_view in, size_t columns) {
  std::vector<std::string> texts;
  std::vector<bool> nulls;
  size_t consumed = 0;
  return ParseRowKey(in, columns, &texts, &nulls, &consumed);
}

TEST(RowKey, ParseOfEveryTruncationFailsCleanly) {
  const std::string encoded =
      RowKey({T(std::string_view("\0\xff\0", 3)), N(), T(""), T("\xff\x01")});
  for (size_t len = 0; len < encoded.size(); len++) {
    Status st = ParseBytes(encoded.substr(0, len), 4);
    EXPECT_EQ(st.code(), Status::kCorruption) << len;
  }
  EXPECT_TRUE(ParseBytes(encoded, 4).ok());
}

TEST(RowKey, ParseRejectsCorruptEncodings) {
  struct Case {
    std::string bytes;
    size_t columns;
    const char* message;
  };
  const std::vector<Case> cases = {
      {"", 1, "truncated row key"},
      {"\x01", 2, "truncated row key"},
      {std::string("\x03", 1), 1, "bad row key column tag"},
      {std::string("\x00", 1), 1, "bad row key column tag"},
      {"\x02", 1, "unterminated row key column"},
      {"\x02"
       "ab",
       1, "unterminated row key column"},
      {std::string("\x02"
                   "a\x00",
                   3),
       1, "unterminated row key column"},
      {std::string("\x02"
                   "a\x00\x02",
                   4),
       1, "bad row key escape"},
      {std::string("\x02\x00\x00", 3), 1, "bad row key escape"},
  };
  for (const Case& c : cases) {
    Status st = ParseBytes(c.bytes, c.columns);
    EXPECT_EQ(st.code(), Status::kCorruption) << Hex(c.bytes);
    EXPECT_EQ(st.message(), c.message) << Hex(c.bytes);
  }
}

TEST(Keys, PrefixSuccessorIncrementsLastNonFfByte) {
  EXPECT_EQ(PrefixSuccessor("abc"), "abd");
  EXPECT_EQ(Hex(PrefixSuccessor("a\xff")), "62");
  EXPECT_EQ(Hex(PrefixSuccessor(std::string("\x01\xff\xff", 3))), "02");
  EXPECT_EQ(Hex(PrefixSuccessor(std::string("\x00", 1))), "01");
  EXPECT_EQ(Hex(PrefixSuccessor(std::string("\x7f", 1))), "80");
  EXPECT_EQ(PrefixSuccessor("\xff\xff"), "");
  EXPECT_EQ(PrefixSuccessor(""), "");
}

TEST(Keys, PrefixSuccessorBoundsEveryKeyWithThePrefix) {
  std::string prefix = RowIdxPrefix(0x000000ff);
  std::string end = PrefixSuccessor(prefix);
  EXPECT_EQ(Hex(end), "000001");  // the trailing 0xff is dropped, not carried
  for (const std::string& key :
       {RowIdxKey(0xff, RowKey({T("\xff\xff")}), ~uint64_t{0}, ~uint32_t{0}),
        RowIdxKey(0xff, RowKey({N()}), 0, 0), TruncateKey(0xff, ~uint64_t{0}, 1)}) {
    EXPECT_LT(key, end);
    EXPECT_GE(key, prefix);
  }
  EXPECT_GE(RowIdxKey(0x100, RowKey({N()}), 0, 0), end);
}

}  // namespace
}  // namespace pgtrail::keys
