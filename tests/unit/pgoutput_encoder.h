// Test-only pgoutput encoder: the inverse of pgoutput::Decode, used to build
// wire bytes for decoder tests (and for tests of code that consumes pgoutput
// messages). It writes whatever the structs hold, including values the decoder
// must reject (nonzero Commit flags, an unknown replica identity, ...), so
// tests can produce bad input on purpose. Not linked into any binary.
#ifndef PGTRAIL_TESTS_UNIT_PGOUTPUT_ENCODER_H_
#define PGTRAIL_TESTS_UNIT_PGOUTPUT_ENCODER_H_

#include <initializer_list>
#include <string>
#include <string_view>

#include "agent/pgoutput.h"

namespace pgtrail::pgoutput::testing {

std::string EncodeBegin(const Begin& begin);
std::string EncodeCommit(const Commit& commit);
std::string EncodeOrigin(const Origin& origin);
std::string EncodeRelation(const Relation& relation);
std::string EncodeType(const Type& type);
std::string EncodeInsert(const Insert& insert);
// Writes old_kind and old_tuple only when old_kind != 0.
std::string EncodeUpdate(const Update& update);
std::string EncodeDelete(const Delete& del);
std::string EncodeTruncate(const Truncate& truncate);
std::string EncodeMessage(const LogicalMessage& message);

// Encodes the member of `message` named by message.type.
std::string Encode(const Message& message);

// Appends TupleData: Int16 ncols, then each column's kind byte and, for 't'
// and 'b', Int32 length and the bytes.
void AppendTuple(std::string* dst, const TupleData& tuple);

// Builders for short test tuples: Tuple({Text("1"), Null(), UnchangedToast()}).
TupleColumn Null();
TupleColumn UnchangedToast();
TupleColumn Text(std::string_view value);
TupleColumn Binary(std::string_view value);
TupleData Tuple(std::initializer_list<TupleColumn> columns);

}  // namespace pgtrail::pgoutput::testing

#endif  // PGTRAIL_TESTS_UNIT_PGOUTPUT_ENCODER_H_
