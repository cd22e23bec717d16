// Decoder tests on byte fixtures. The fixtures are hex with one comment per
// field, written by hand from PGOUTPUT.md section 4 (and proto.c), so they do
// not depend on the test encoder; the encoder is checked against them too.
#include "agent/pgoutput.h"

#include <gtest/gtest.h>

#include <cstdint>
#include <deque>
#include <string>
#include <string_view>
#include <vector>

#include "tests/unit/pgoutput_encoder.h"

namespace pgtrail::pgoutput {
namespace {

namespace encoder = ::pgtrail::pgoutput::testing;

// ---------------------------------------------------------------------------
// Helpers

// Decoded tuple values point into the decoded bytes, so the bytes a test
// decodes are kept for the life of the test binary.
const std::string& Keep(std::string bytes) {
  static std::deque<std::string>* const kept = new std::deque<std::string>;
  return kept->emplace_back(std::move(bytes));
}

// Hex digits to bytes; spaces are ignored so a field's parts can be set apart.
const std::string& Hex(std::string_view hex) {
  auto nibble = [](char c) -> int {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
  };
  std::string bytes;
  int high = -1;
  for (char c : hex) {
    if (c == ' ') continue;
    int value = nibble(c);
    if (value < 0) {
      ADD_FAILURE() << "bad hex digit '" << c << "' in fixture";
      return Keep(std::move(bytes));
    }
    if (high < 0) {
      high = value;
    } else {
      bytes.push_back(static_cast<char>(high << 4 | value));
      high = -1;
    }
  }
  if (high >= 0) ADD_FAILURE() << "odd number of hex digits in fixture";
  return Keep(std::move(bytes));
}

Message MustDecode(std::string_view bytes) {
  Message message;
  Status status = Decode(Keep(std::string(bytes)), &message);
  EXPECT_TRUE(status.ok()) << status.ToString();
  return message;
}

// Decoding `bytes` fails with kCorruption and a message containing `expected`.
::testing::AssertionResult FailsWith(std::string_view bytes, std::string_view expected) {
  Message message;
  Status status = Decode(bytes, &message);
  if (status.ok()) return ::testing::AssertionFailure() << "decoded without error";
  if (status.code() != Status::kCorruption) {
    return ::testing::AssertionFailure()
           << "code " << status.CodeName() << ", not corruption: " << status.message();
  }
  if (status.message().find(expected) == std::string::npos) {
    return ::testing::AssertionFailure()
           << "message \"" << status.message() << "\" lacks \"" << expected << "\"";
  }
  return ::testing::AssertionSuccess();
}

// A tuple as a short string: n, u, t'text', b<hex>, separated by spaces.
std::string Describe(const TupleData& tuple) {
  std::string out;
  for (const TupleColumn& column : tuple.columns) {
    if (!out.empty()) out += ' ';
    switch (column.kind) {
      case TupleKind::kNull:
        out += 'n';
        break;
      case TupleKind::kUnchangedToast:
        out += 'u';
        break;
      case TupleKind::kText:
        out += "t'" + std::string(column.data) + "'";
        break;
      case TupleKind::kBinary: {
        out += "b<";
        for (unsigned char c : column.data) {
          const char* digits = "0123456789abcdef";
          out += digits[c >> 4];
          out += digits[c & 15];
        }
        out += '>';
        break;
      }
    }
  }
  return out;
}

// ---------------------------------------------------------------------------
// Fixtures: one table, public.accounts (relid 16385), with columns
// id int4 (the primary key), owner text, balance numeric(12,2).

constexpr uint64_t kFinalLsn = 0x00000016B374D848;  // 16/B374D848
constexpr uint64_t kEndLsn = 0x00000016B374D878;    // 16/B374D878
constexpr int64_t kCommitTime = 767880000123456;    // 2024-05-01 12:00:00.123456 UTC
constexpr uint32_t kAccountsRelid = 16385;

const char kBeginHex[] =
    "42"                // type 'B'
    "00000016B374D848"  // final_lsn 16/B374D848
    "0002BA61FEA33240"  // commit timestamp 2024-05-01 12:00:00.123456 UTC
    "000002EA";         // xid 746

const char kCommitHex[] =
    "43"                 // type 'C'
    "00"                 // flags 0
    "00000016B374D848"   // commit_lsn 16/B374D848
    "00000016B374D878"   // end_lsn 16/B374D878
    "0002BA61FEA33240";  // commit timestamp

const char kOriginHex[] =
    "4F"                   // type 'O'
    "0000000003000060"     // origin commit_lsn 0/3000060
    "70675F313633393000";  // name "pg_16390"

const char kRelationHex[] =
    "52"                  // type 'R'
    "00004001"            // relid 16385
    "7075626C696300"      // namespace "public"
    "6163636F756E747300"  // relname "accounts"
    "64"                  // replica identity 'd' (default)
    "0003"                // 3 columns
    "01"                  // id: flags 1, part of the key
    "696400"              //   name "id"
    "00000017"            //   type oid 23 (int4)
    "FFFFFFFF"            //   typmod -1
    "00"                  // owner: flags 0
    "6F776E657200"        //   name "owner"
    "00000019"            //   type oid 25 (text)
    "FFFFFFFF"            //   typmod -1
    "00"                  // balance: flags 0
    "62616C616E636500"    //   name "balance"
    "000006A4"            //   type oid 1700 (numeric)
    "000C0006";           //   typmod of numeric(12,2): (12 << 16 | 2) + 4

const char kTypeHex[] =
    "59"              // type 'Y'
    "00004006"        // type oid 16390
    "7075626C696300"  // namespace "public"
    "6D6F6F6400";     // name "mood"

const char kInsertHex[] =
    "49"                         // type 'I'
    "00004001"                   // relid 16385
    "4E"                         // 'N': new tuple follows
    "0003"                       // 3 columns
    "74 00000002 3432"           // id: 't', length 2, "42"
    "74 00000005 616C696365"     // owner: 't', length 5, "alice"
    "74 00000006 3130302E3530";  // balance: 't', length 6, "100.50"

const char kUpdateWithKeyHex[] =
    "55"                         // type 'U'
    "00004001"                   // relid 16385
    "4B"                         // 'K': old key tuple follows
    "0003"                       // 3 columns
    "74 00000002 3432"           // id: 't' "42"
    "6E"                         // owner: 'n', a placeholder for a non-key column
    "6E"                         // balance: 'n', placeholder
    "4E"                         // 'N': new tuple follows
    "0003"                       // 3 columns
    "74 00000002 3433"           // id: 't' "43"
    "74 00000005 616C696365"     // owner: 't' "alice"
    "74 00000006 3130302E3530";  // balance: 't' "100.50"

const char kUpdateWithOldRowHex[] =
    "55"                        // type 'U'
    "00004001"                  // relid 16385
    "4F"                        // 'O': whole old row follows (REPLICA IDENTITY FULL)
    "0003"                      // 3 columns
    "74 00000002 3432"          // id: 't' "42"
    "74 00000005 616C696365"    // owner: 't' "alice"
    "74 00000006 3130302E3530"  // balance: 't' "100.50"
    "4E"                        // 'N': new tuple follows
    "0003"                      // 3 columns
    "74 00000002 3432"          // id: 't' "42"
    "74 00000005 616C696365"    // owner: 't' "alice"
    "74 00000005 39302E3030";   // balance: 't' "90.00"

const char kUpdateWithoutOldHex[] =
    "55"                  // type 'U'
    "00004001"            // relid 16385
    "4E"                  // 'N': no old tuple, new tuple follows
    "0003"                // 3 columns
    "74 00000002 3432"    // id: 't' "42"
    "74 00000003 626F62"  // owner: 't' "bob"
    "75";                 // balance: 'u', unchanged TOAST value

const char kDeleteWithKeyHex[] =
    "44"                // type 'D'
    "00004001"          // relid 16385
    "4B"                // 'K': old key tuple follows
    "0003"              // 3 columns
    "74 00000002 3432"  // id: 't' "42"
    "6E"                // owner: 'n' placeholder
    "6E";               // balance: 'n' placeholder

const char kDeleteWithOldRowHex[] =
    "44"                         // type 'D'
    "00004001"                   // relid 16385
    "4F"                         // 'O': whole old row follows
    "0003"                       // 3 columns
    "74 00000002 3432"           // id: 't' "42"
    "74 00000005 616C696365"     // owner: 't' "alice"
    "74 00000006 3130302E3530";  // balance: 't' "100.50"

const char kTruncateHex[] =
    "54"         // type 'T'
    "00000002"   // 2 relations
    "03"         // flags: CASCADE (1) | RESTART IDENTITY (2)
    "00004001"   // relid 16385
    "00004008";  // relid 16392

const char kMessageHex[] =
    "4D"                // type 'M'
    "01"                // flags: transactional
    "00000016B374D000"  // lsn 16/B374D000
    "73657100"          // prefix "seq"
    "00000007"          // content length 7
    "7B2261223A317D";   // content {"a":1}

const char kAllTupleKindsHex[] =
    "49"                     // type 'I'
    "00004001"               // relid 16385
    "4E"                     // 'N'
    "0004"                   // 4 columns
    "6E"                     // 'n': NULL, no data
    "75"                     // 'u': unchanged TOAST, no data
    "74 00000002 3432"       // 't': length 2, "42"
    "62 00000004 0000002A";  // 'b': length 4, int4 42 in its send format

const char kControlCharsHex[] =
    "49"                     // type 'I'
    "00004001"               // relid 16385
    "4E"                     // 'N'
    "0001"                   // 1 column
    "74 00000007"            // 't', length 7
    "61 00 62 09 63 0A 64";  // "a", NUL, "b", tab, "c", newline, "d"

struct Fixture {
  const char* name;
  const char* hex;
};

const Fixture kFixtures[] = {
    {"Begin", kBeginHex},
    {"Commit", kCommitHex},
    {"Origin", kOriginHex},
    {"Relation", kRelationHex},
    {"Type", kTypeHex},
    {"Insert", kInsertHex},
    {"UpdateWithKey", kUpdateWithKeyHex},
    {"UpdateWithOldRow", kUpdateWithOldRowHex},
    {"UpdateWithoutOld", kUpdateWithoutOldHex},
    {"DeleteWithKey", kDeleteWithKeyHex},
    {"DeleteWithOldRow", kDeleteWithOldRowHex},
    {"Truncate", kTruncateHex},
    {"Message", kMessageHex},
    {"AllTupleKinds", kAllTupleKindsHex},
    {"ControlChars", kControlCharsHex},
};

// ---------------------------------------------------------------------------
// Decoding each message type from hand-written bytes

TEST(PgoutputDecodeTest, BeginDecodesLsnTimestampAndXid) {
  Message m = MustDecode(Hex(kBeginHex));
  ASSERT_EQ(m.type, MessageType::kBegin);
  EXPECT_EQ(m.begin.final_lsn, kFinalLsn);
  EXPECT_EQ(m.begin.commit_time, kCommitTime);
  EXPECT_EQ(m.begin.xid, 746u);
}

TEST(PgoutputDecodeTest, CommitDecodesCommitAndEndLsn) {
  Message m = MustDecode(Hex(kCommitHex));
  ASSERT_EQ(m.type, MessageType::kCommit);
  EXPECT_EQ(m.commit.flags, 0);
  EXPECT_EQ(m.commit.commit_lsn, kFinalLsn);
  EXPECT_EQ(m.commit.end_lsn, kEndLsn);
  EXPECT_EQ(m.commit.commit_time, kCommitTime);
}

TEST(PgoutputDecodeTest, OriginDecodesLsnAndName) {
  Message m = MustDecode(Hex(kOriginHex));
  ASSERT_EQ(m.type, MessageType::kOrigin);
  EXPECT_EQ(m.origin.commit_lsn, 0x3000060u);
  EXPECT_EQ(m.origin.name, "pg_16390");
}

TEST(PgoutputDecodeTest, RelationDecodesColumnsWithKeyFlagsAndTypmods) {
  Message m = MustDecode(Hex(kRelationHex));
  ASSERT_EQ(m.type, MessageType::kRelation);
  const Relation& r = m.relation;
  EXPECT_EQ(r.relid, kAccountsRelid);
  EXPECT_EQ(r.nspname, "public");
  EXPECT_EQ(r.relname, "accounts");
  EXPECT_EQ(r.replica_identity, 'd');
  ASSERT_EQ(r.columns.size(), 3u);
  EXPECT_EQ(r.columns[0].name, "id");
  EXPECT_TRUE(r.columns[0].is_key());
  EXPECT_EQ(r.columns[0].type_oid, 23u);
  EXPECT_EQ(r.columns[0].type_mod, -1);
  EXPECT_EQ(r.columns[1].name, "owner");
  EXPECT_FALSE(r.columns[1].is_key());
  EXPECT_EQ(r.columns[1].type_oid, 25u);
  EXPECT_EQ(r.columns[2].name, "balance");
  EXPECT_EQ(r.columns[2].type_oid, 1700u);
  EXPECT_EQ(r.columns[2].type_mod, (12 << 16 | 2) + 4);
}

TEST(PgoutputDecodeTest, RelationInPgCatalogKeepsEmptyNamespace) {
  Relation relation;
  relation.relid = 1259;
  relation.relname = "pg_class";
  Message m = MustDecode(encoder::EncodeRelation(relation));
  EXPECT_EQ(m.relation.nspname, "");
  EXPECT_EQ(m.relation.relname, "pg_class");
  EXPECT_TRUE(m.relation.columns.empty());
}

TEST(PgoutputDecodeTest, RelationAcceptsEveryKnownReplicaIdentity) {
  for (char identity : {'d', 'n', 'f', 'i'}) {
    Relation relation;
    relation.replica_identity = identity;
    Message m = MustDecode(encoder::EncodeRelation(relation));
    EXPECT_EQ(m.relation.replica_identity, identity);
  }
}

TEST(PgoutputDecodeTest, TypeDecodesOidNamespaceAndName) {
  Message m = MustDecode(Hex(kTypeHex));
  ASSERT_EQ(m.type, MessageType::kType);
  EXPECT_EQ(m.type_info.type_oid, 16390u);
  EXPECT_EQ(m.type_info.nspname, "public");
  EXPECT_EQ(m.type_info.name, "mood");
}

TEST(PgoutputDecodeTest, InsertDecodesNewTuple) {
  Message m = MustDecode(Hex(kInsertHex));
  ASSERT_EQ(m.type, MessageType::kInsert);
  EXPECT_EQ(m.insert.relid, kAccountsRelid);
  EXPECT_EQ(Describe(m.insert.new_tuple), "t'42' t'alice' t'100.50'");
}

TEST(PgoutputDecodeTest, UpdateWithOldKeyTupleDecodesBothTuples) {
  Message m = MustDecode(Hex(kUpdateWithKeyHex));
  ASSERT_EQ(m.type, MessageType::kUpdate);
  EXPECT_EQ(m.update.relid, kAccountsRelid);
  EXPECT_EQ(m.update.old_kind, 'K');
  EXPECT_EQ(Describe(m.update.old_tuple), "t'42' n n");
  EXPECT_EQ(Describe(m.update.new_tuple), "t'43' t'alice' t'100.50'");
}

TEST(PgoutputDecodeTest, UpdateWithOldRowTupleDecodesBothTuples) {
  Message m = MustDecode(Hex(kUpdateWithOldRowHex));
  ASSERT_EQ(m.type, MessageType::kUpdate);
  EXPECT_EQ(m.update.old_kind, 'O');
  EXPECT_EQ(Describe(m.update.old_tuple), "t'42' t'alice' t'100.50'");
  EXPECT_EQ(Describe(m.update.new_tuple), "t'42' t'alice' t'90.00'");
}

TEST(PgoutputDecodeTest, UpdateWithoutOldTupleHasNoOldKind) {
  Message m = MustDecode(Hex(kUpdateWithoutOldHex));
  ASSERT_EQ(m.type, MessageType::kUpdate);
  EXPECT_EQ(m.update.old_kind, 0);
  EXPECT_TRUE(m.update.old_tuple.columns.empty());
  EXPECT_EQ(Describe(m.update.new_tuple), "t'42' t'bob' u");
}

TEST(PgoutputDecodeTest, DeleteWithKeyTupleDecodesKeyAndPlaceholders) {
  Message m = MustDecode(Hex(kDeleteWithKeyHex));
  ASSERT_EQ(m.type, MessageType::kDelete);
  EXPECT_EQ(m.del.relid, kAccountsRelid);
  EXPECT_EQ(m.del.old_kind, 'K');
  EXPECT_EQ(Describe(m.del.old_tuple), "t'42' n n");
}

TEST(PgoutputDecodeTest, DeleteWithOldRowTupleDecodesWholeRow) {
  Message m = MustDecode(Hex(kDeleteWithOldRowHex));
  ASSERT_EQ(m.type, MessageType::kDelete);
  EXPECT_EQ(m.del.old_kind, 'O');
  EXPECT_EQ(Describe(m.del.old_tuple), "t'42' t'alice' t'100.50'");
}

TEST(PgoutputDecodeTest, TruncateDecodesFlagsAndRelids) {
  Message m = MustDecode(Hex(kTruncateHex));
  ASSERT_EQ(m.type, MessageType::kTruncate);
  EXPECT_EQ(m.truncate.flags, 3);
  EXPECT_EQ(m.truncate.relids, (std::vector<uint32_t>{16385, 16392}));
}

TEST(PgoutputDecodeTest, TruncateOfNoRelationsHasEmptyRelids) {
  Message m = MustDecode(Hex("54 00000000 00"));  // 'T', 0 relations, flags 0
  EXPECT_TRUE(m.truncate.relids.empty());
}

TEST(PgoutputDecodeTest, TransactionalMessageDecodesPrefixAndContent) {
  Message m = MustDecode(Hex(kMessageHex));
  ASSERT_EQ(m.type, MessageType::kMessage);
  EXPECT_TRUE(m.message.transactional());
  EXPECT_EQ(m.message.lsn, 0x16B374D000u);
  EXPECT_EQ(m.message.prefix, "seq");
  EXPECT_EQ(m.message.content, "{\"a\":1}");
}

TEST(PgoutputDecodeTest, NonTransactionalMessageKeepsBinaryContent) {
  LogicalMessage message;
  message.flags = 0;
  message.prefix = "cdc.ddl";
  message.content = std::string("\0\xff\n", 3);
  Message m = MustDecode(encoder::EncodeMessage(message));
  EXPECT_FALSE(m.message.transactional());
  EXPECT_EQ(m.message.content, std::string("\0\xff\n", 3));
}

// ---------------------------------------------------------------------------
// Tuple values

TEST(PgoutputDecodeTest, TupleDecodesEveryColumnKind) {
  Message m = MustDecode(Hex(kAllTupleKindsHex));
  const std::vector<TupleColumn>& columns = m.insert.new_tuple.columns;
  ASSERT_EQ(columns.size(), 4u);
  EXPECT_EQ(columns[0].kind, TupleKind::kNull);
  EXPECT_EQ(columns[1].kind, TupleKind::kUnchangedToast);
  EXPECT_EQ(columns[2].kind, TupleKind::kText);
  EXPECT_EQ(columns[2].data, "42");
  EXPECT_EQ(columns[3].kind, TupleKind::kBinary);
  EXPECT_EQ(columns[3].data, std::string("\0\0\0\x2a", 4));
}

TEST(PgoutputDecodeTest, TextValueKeepsZeroBytesTabsAndNewlines) {
  Message m = MustDecode(Hex(kControlCharsHex));
  ASSERT_EQ(m.insert.new_tuple.columns.size(), 1u);
  EXPECT_EQ(m.insert.new_tuple.columns[0].data, std::string("a\0b\tc\nd", 7));
}

TEST(PgoutputDecodeTest, EmptyTextValueIsEmptyStringNotNull) {
  Message m = MustDecode(Hex("49 00004001 4E 0001 74 00000000"));  // 't', length 0
  ASSERT_EQ(m.insert.new_tuple.columns.size(), 1u);
  EXPECT_EQ(m.insert.new_tuple.columns[0].kind, TupleKind::kText);
  EXPECT_EQ(m.insert.new_tuple.columns[0].data, "");
}

TEST(PgoutputDecodeTest, TupleWithNoColumnsDecodes) {
  Message m = MustDecode(Hex("49 00004001 4E 0000"));  // a table without columns
  EXPECT_TRUE(m.insert.new_tuple.columns.empty());
}

TEST(PgoutputDecodeTest, LargeValueDecodesWhole) {
  const std::string big(1 << 20, 'x');
  Insert insert;
  insert.new_tuple = encoder::Tuple({encoder::Text(big)});
  Message m = MustDecode(encoder::EncodeInsert(insert));
  EXPECT_EQ(m.insert.new_tuple.columns[0].data, big);
}

// ---------------------------------------------------------------------------
// Reusing one Message across calls

TEST(PgoutputDecodeTest, ReusedMessageDropsColumnsOfPreviousRow) {
  Message m;
  ASSERT_TRUE(Decode(Hex(kInsertHex), &m).ok());
  ASSERT_TRUE(Decode(Hex(kControlCharsHex), &m).ok());
  EXPECT_EQ(m.insert.new_tuple.columns.size(), 1u);
}

TEST(PgoutputDecodeTest, ReusedMessageClearsDataOfColumnThatBecomesNull) {
  Message m;
  ASSERT_TRUE(Decode(Hex(kInsertHex), &m).ok());
  ASSERT_TRUE(Decode(Hex("49 00004001 4E 0003 6E 75 6E"), &m).ok());  // 'n', 'u', 'n'
  EXPECT_EQ(Describe(m.insert.new_tuple), "n u n");
  for (const TupleColumn& column : m.insert.new_tuple.columns) EXPECT_EQ(column.data, "");
}

TEST(PgoutputDecodeTest, UpdateWithoutOldTupleClearsOldTupleOfPreviousUpdate) {
  Message m;
  ASSERT_TRUE(Decode(Hex(kUpdateWithKeyHex), &m).ok());
  ASSERT_TRUE(Decode(Hex(kUpdateWithoutOldHex), &m).ok());
  EXPECT_EQ(m.update.old_kind, 0);
  EXPECT_TRUE(m.update.old_tuple.columns.empty());
}

TEST(PgoutputDecodeTest, ReusedMessageTakesTypeOfLatestMessage) {
  Message m;
  ASSERT_TRUE(Decode(Hex(kBeginHex), &m).ok());
  ASSERT_TRUE(Decode(Hex(kCommitHex), &m).ok());
  EXPECT_EQ(m.type, MessageType::kCommit);
}

TEST(PgoutputDecodeTest, MessageTypeNameNamesEveryType) {
  EXPECT_STREQ(MessageTypeName(MessageType::kBegin), "Begin");
  EXPECT_STREQ(MessageTypeName(MessageType::kCommit), "Commit");
  EXPECT_STREQ(MessageTypeName(MessageType::kOrigin), "Origin");
  EXPECT_STREQ(MessageTypeName(MessageType::kRelation), "Relation");
  EXPECT_STREQ(MessageTypeName(MessageType::kType), "Type");
  EXPECT_STREQ(MessageTypeName(MessageType::kInsert), "Insert");
  EXPECT_STREQ(MessageTypeName(MessageType::kUpdate), "Update");
  EXPECT_STREQ(MessageTypeName(MessageType::kDelete), "Delete");
  EXPECT_STREQ(MessageTypeName(MessageType::kTruncate), "Truncate");
  EXPECT_STREQ(MessageTypeName(MessageType::kMessage), "Message");
  EXPECT_STREQ(MessageTypeName(static_cast<MessageType>('Z')), "unknown");
}

// ---------------------------------------------------------------------------
// Round trips through the test encoder

TEST(PgoutputRoundTripTest, EncoderReproducesEveryHandWrittenFixture) {
  for (const Fixture& fixture : kFixtures) {
    SCOPED_TRACE(fixture.name);
    const std::string bytes = Hex(fixture.hex);
    EXPECT_EQ(encoder::Encode(MustDecode(bytes)), bytes);
  }
}

TEST(PgoutputRoundTripTest, ExtremeValuesSurviveEncodeAndDecode) {
  std::vector<Message> messages(8);
  messages[0].type = MessageType::kBegin;
  messages[0].begin = {UINT64_MAX, INT64_MIN, UINT32_MAX};
  messages[1].type = MessageType::kCommit;
  messages[1].commit = {0, UINT64_MAX, UINT64_MAX, -1};  // a timestamp before 2000
  messages[2].type = MessageType::kOrigin;
  messages[2].origin = {1, ""};
  messages[3].type = MessageType::kRelation;
  messages[3].relation.relid = UINT32_MAX;
  messages[3].relation.replica_identity = 'f';
  messages[3].relation.columns = {{1, "a", UINT32_MAX, INT32_MIN}, {1, "", 0, INT32_MAX}};
  messages[4].type = MessageType::kUpdate;
  messages[4].update.old_kind = 'O';
  messages[4].update.old_tuple = encoder::Tuple({encoder::Binary(""), encoder::Null()});
  messages[4].update.new_tuple = encoder::Tuple({encoder::UnchangedToast(), encoder::Text("")});
  messages[5].type = MessageType::kTruncate;
  messages[5].truncate = {1, {0, UINT32_MAX}};
  messages[6].type = MessageType::kMessage;
  messages[6].message = {1, UINT64_MAX, "", std::string(3, '\0')};
  messages[7].type = MessageType::kDelete;
  messages[7].del.old_kind = 'O';
  for (int i = 0; i < 300; i++) {
    messages[7].del.old_tuple.columns.push_back(encoder::Text(std::to_string(i)));
  }
  for (const Message& message : messages) {
    SCOPED_TRACE(MessageTypeName(message.type));
    const std::string bytes = encoder::Encode(message);
    EXPECT_EQ(encoder::Encode(MustDecode(bytes)), bytes);
  }
}

TEST(PgoutputRoundTripTest, DecodedFieldsEqualEncodedFields) {
  Begin begin{kFinalLsn, kCommitTime, 746};
  Message m = MustDecode(encoder::EncodeBegin(begin));
  EXPECT_EQ(m.begin.final_lsn, begin.final_lsn);
  EXPECT_EQ(m.begin.commit_time, begin.commit_time);
  EXPECT_EQ(m.begin.xid, begin.xid);

  Update update;
  update.relid = 7;
  update.old_kind = 'K';
  update.old_tuple = encoder::Tuple({encoder::Text("1")});
  update.new_tuple = encoder::Tuple({encoder::Text("2"), encoder::Binary("\x01")});
  m = MustDecode(encoder::EncodeUpdate(update));
  EXPECT_EQ(m.update.relid, 7u);
  EXPECT_EQ(m.update.old_kind, 'K');
  EXPECT_EQ(Describe(m.update.old_tuple), "t'1'");
  EXPECT_EQ(Describe(m.update.new_tuple), "t'2' b<01>");
}

// ---------------------------------------------------------------------------
// Rejection of bad bytes, each with its specific reason

TEST(PgoutputRejectTest, EmptyPayloadIsTruncatedMessageType) {
  EXPECT_TRUE(FailsWith("", "pgoutput: truncated message type: need 1 bytes, have 0"));
}

TEST(PgoutputRejectTest, TruncationAtEveryBytePositionIsReported) {
  for (const Fixture& fixture : kFixtures) {
    const std::string bytes = Hex(fixture.hex);
    for (size_t length = 0; length < bytes.size(); length++) {
      SCOPED_TRACE(std::string(fixture.name) + " cut to " + std::to_string(length) + " bytes");
      Message message;
      Status status = Decode(std::string_view(bytes).substr(0, length), &message);
      ASSERT_EQ(status.code(), Status::kCorruption) << status.ToString();
      const std::string& reason = status.message();
      EXPECT_TRUE(reason.find("truncated") != std::string::npos ||
                  reason.find("unterminated") != std::string::npos)
          << reason;
      EXPECT_EQ(reason.rfind("pgoutput", 0), 0u) << reason;
    }
  }
}

TEST(PgoutputRejectTest, TruncatedFieldIsNamedWithMessageType) {
  const std::string begin = Hex(kBeginHex);
  EXPECT_TRUE(FailsWith(begin.substr(0, begin.size() - 1),
                        "pgoutput Begin: truncated xid: need 4 bytes, have 3"));
  EXPECT_TRUE(FailsWith(Hex("49 00004001 4E 0001 74 0000"),  // length cut after 2 bytes
                        "pgoutput Insert: truncated tuple column length: need 4 bytes, have 2"));
  EXPECT_TRUE(FailsWith(Hex("49 00004001 4E 0001 74 00000005 6162"),  // 2 of 5 bytes
                        "pgoutput Insert: truncated tuple column data: need 5 bytes, have 2"));
  EXPECT_TRUE(FailsWith(Hex("52 00004001 7075626C696300 6163"),  // relname lacks its NUL
                        "pgoutput Relation: unterminated relation name"));
}

TEST(PgoutputRejectTest, TrailingBytesAreRejected) {
  for (const Fixture& fixture : kFixtures) {
    SCOPED_TRACE(fixture.name);
    EXPECT_TRUE(FailsWith(Hex(fixture.hex) + '\0', " trailing bytes"));
  }
  EXPECT_TRUE(FailsWith(Hex(kBeginHex) + "xy", "pgoutput Begin: 2 trailing bytes"));
}

TEST(PgoutputRejectTest, UnknownMessageTypeIsShownInHex) {
  EXPECT_TRUE(FailsWith("Z", "pgoutput: unknown message type 0x5a"));
  EXPECT_TRUE(FailsWith(std::string(1, '\0'), "pgoutput: unknown message type 0x00"));
  EXPECT_TRUE(FailsWith("\xff", "pgoutput: unknown message type 0xff"));
}

TEST(PgoutputRejectTest, StreamingAndTwoPhaseMessagesAreUnknownInProtocolV1) {
  // Stream Start/Stop/Commit/Abort (v2), Begin Prepare/Prepare/Commit
  // Prepared/Rollback Prepared/Stream Prepare (v3).
  for (char type : {'S', 'E', 'c', 'A', 'b', 'P', 'K', 'r', 'p'}) {
    SCOPED_TRACE(type);
    EXPECT_TRUE(FailsWith(std::string(1, type) + std::string(8, '\0'),
                          "pgoutput: unknown message type 0x"));
  }
}

TEST(PgoutputRejectTest, UnknownTupleKindIsRejectedByName) {
  EXPECT_TRUE(FailsWith(Hex("49 00004001 4E 0001 78"),  // 'x'
                        "pgoutput Insert: unknown tuple column kind 'x'"));
  EXPECT_TRUE(FailsWith(Hex("49 00004001 4E 0001 00"),  // a NUL kind byte
                        "pgoutput Insert: unknown tuple column kind 0x00"));
  EXPECT_TRUE(FailsWith(Hex("44 00004001 4B 0001 4E"),  // 'N' is a marker, not a kind
                        "pgoutput Delete: unknown tuple column kind 'N'"));
}

TEST(PgoutputRejectTest, NegativeTupleColumnCountIsCorruption) {
  EXPECT_TRUE(
      FailsWith(Hex("49 00004001 4E FFFF"), "pgoutput Insert: negative tuple column count -1"));
}

TEST(PgoutputRejectTest, NegativeTupleColumnLengthIsCorruption) {
  EXPECT_TRUE(FailsWith(Hex("49 00004001 4E 0001 74 FFFFFFFF"),
                        "pgoutput Insert: negative tuple column length -1"));
  EXPECT_TRUE(FailsWith(Hex("49 00004001 4E 0001 62 80000000"),
                        "pgoutput Insert: negative tuple column length -2147483648"));
}

TEST(PgoutputRejectTest, InsertWithoutNewTupleMarkerIsRejected) {
  EXPECT_TRUE(FailsWith(Hex("49 00004001 4B 0000"),  // 'K' where 'N' belongs
                        "pgoutput Insert: expected 'N' before new tuple, got 'K'"));
}

TEST(PgoutputRejectTest, UpdateWithWrongMarkerAfterOldTupleIsRejected) {
  EXPECT_TRUE(FailsWith(Hex("55 00004001 4B 0000 4B 0000"),  // 'K' tuple, then 'K' again
                        "pgoutput Update: expected 'N' before new tuple, got 'K'"));
  EXPECT_TRUE(FailsWith(Hex("55 00004001 4F 0000 01 0000"),  // 'O' tuple, then 0x01
                        "pgoutput Update: expected 'N' before new tuple, got 0x01"));
}

TEST(PgoutputRejectTest, UpdateWithUnknownFirstMarkerIsRejected) {
  EXPECT_TRUE(FailsWith(Hex("55 00004001 58 0000"),  // 'X'
                        "pgoutput Update: expected 'N' before new tuple, got 'X'"));
}

TEST(PgoutputRejectTest, DeleteWithBadMarkerIsRejected) {
  EXPECT_TRUE(FailsWith(Hex("44 00004001 4E 0000"),  // 'N': a Delete has no new tuple
                        "pgoutput Delete: expected 'K' or 'O' before old tuple, got 'N'"));
  Delete del;
  del.old_kind = 'k';
  EXPECT_TRUE(FailsWith(encoder::EncodeDelete(del),
                        "pgoutput Delete: expected 'K' or 'O' before old tuple, got 'k'"));
}

TEST(PgoutputRejectTest, UnknownReplicaIdentityIsRejected) {
  Relation relation;
  relation.replica_identity = 'x';
  EXPECT_TRUE(FailsWith(encoder::EncodeRelation(relation),
                        "pgoutput Relation: unknown replica identity 'x', expected one of "
                        "d, n, f, i"));
  relation.replica_identity = 'D';
  EXPECT_TRUE(FailsWith(encoder::EncodeRelation(relation), "unknown replica identity 'D'"));
}

TEST(PgoutputRejectTest, UnknownRelationColumnFlagsAreRejected) {
  Relation relation;
  relation.columns = {{2, "id", 23, -1}};
  EXPECT_TRUE(
      FailsWith(encoder::EncodeRelation(relation), "pgoutput Relation: unknown column flags 0x02"));
}

TEST(PgoutputRejectTest, NegativeRelationColumnCountIsCorruption) {
  EXPECT_TRUE(FailsWith(Hex("52 00004001 00 00 64 8000"),  // "", "", 'd', ncols -32768
                        "pgoutput Relation: negative column count -32768"));
}

TEST(PgoutputRejectTest, CommitWithNonzeroFlagsIsRejected) {
  Commit commit;
  commit.flags = 1;
  EXPECT_TRUE(
      FailsWith(encoder::EncodeCommit(commit), "pgoutput Commit: unknown flags 0x01, expected 0"));
}

TEST(PgoutputRejectTest, TruncateWithUnknownFlagsIsRejected) {
  EXPECT_TRUE(FailsWith(Hex("54 00000000 04"), "pgoutput Truncate: unknown flags 0x04"));
}

TEST(PgoutputRejectTest, NegativeTruncateRelationCountIsCorruption) {
  EXPECT_TRUE(FailsWith(Hex("54 FFFFFFFF 00"), "pgoutput Truncate: negative relation count -1"));
}

TEST(PgoutputRejectTest, HugeTruncateRelationCountIsTruncatedNotAllocated) {
  EXPECT_TRUE(FailsWith(Hex("54 7FFFFFFF 00 00004001"),
                        "pgoutput Truncate: truncated relids: need 8589934588 bytes, have 4"));
}

TEST(PgoutputRejectTest, MessageWithUnknownFlagsIsRejected) {
  LogicalMessage message;
  message.flags = 3;
  EXPECT_TRUE(FailsWith(encoder::EncodeMessage(message), "pgoutput Message: unknown flags 0x03"));
}

TEST(PgoutputRejectTest, NegativeMessageContentLengthIsCorruption) {
  EXPECT_TRUE(FailsWith(Hex("4D 01 0000000000000001 00 FFFFFFFE"),
                        "pgoutput Message: negative content length -2"));
}

TEST(PgoutputRejectTest, MessageContentLongerThanPayloadIsTruncated) {
  EXPECT_TRUE(FailsWith(Hex("4D 01 0000000000000001 00 00000010 6162"),
                        "pgoutput Message: truncated content: need 16 bytes, have 2"));
}

}  // namespace
}  // namespace pgtrail::pgoutput
