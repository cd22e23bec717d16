#include "tests/unit/pgoutput_encoder.h"

#include <deque>
#include <string>

#include "storage/coding.h"

namespace pgtrail::pgoutput::testing {
namespace {

// Starts a message with its type byte; the enum values are the wire bytes.
std::string Start(MessageType type) {
  std::string dst;
  AppendU8(&dst, static_cast<uint8_t>(type));
  return dst;
}

void AppendChar(std::string* dst, char c) { AppendU8(dst, static_cast<uint8_t>(c)); }

// A decoded column's value points into the message's bytes; a test's column
// points into a copy kept for the life of the test binary.
TupleColumn Column(TupleKind kind, std::string_view value) {
  static std::deque<std::string>* const kept = new std::deque<std::string>;
  TupleColumn column;
  column.kind = kind;
  column.data = kept->emplace_back(value);
  return column;
}

}  // namespace

void AppendTuple(std::string* dst, const TupleData& tuple) {
  AppendU16BE(dst, static_cast<uint16_t>(tuple.columns.size()));
  for (const TupleColumn& column : tuple.columns) {
    AppendChar(dst, static_cast<char>(column.kind));
    if (column.kind == TupleKind::kText || column.kind == TupleKind::kBinary) {
      AppendU32BE(dst, static_cast<uint32_t>(column.data.size()));
      dst->append(column.data);
    }
  }
}

std::string EncodeBegin(const Begin& begin) {
  std::string dst = Start(MessageType::kBegin);
  AppendU64BE(&dst, begin.final_lsn);
  AppendU64BE(&dst, static_cast<uint64_t>(begin.commit_time));
  AppendU32BE(&dst, begin.xid);
  return dst;
}

std::string EncodeCommit(const Commit& commit) {
  std::string dst = Start(MessageType::kCommit);
  AppendU8(&dst, commit.flags);
  AppendU64BE(&dst, commit.commit_lsn);
  AppendU64BE(&dst, commit.end_lsn);
  AppendU64BE(&dst, static_cast<uint64_t>(commit.commit_time));
  return dst;
}

std::string EncodeOrigin(const Origin& origin) {
  std::string dst = Start(MessageType::kOrigin);
  AppendU64BE(&dst, origin.commit_lsn);
  AppendCString(&dst, origin.name);
  return dst;
}

std::string EncodeRelation(const Relation& relation) {
  std::string dst = Start(MessageType::kRelation);
  AppendU32BE(&dst, relation.relid);
  AppendCString(&dst, relation.nspname);
  AppendCString(&dst, relation.relname);
  AppendChar(&dst, relation.replica_identity);
  AppendU16BE(&dst, static_cast<uint16_t>(relation.columns.size()));
  for (const RelationColumn& column : relation.columns) {
    AppendU8(&dst, column.flags);
    AppendCString(&dst, column.name);
    AppendU32BE(&dst, column.type_oid);
    AppendU32BE(&dst, static_cast<uint32_t>(column.type_mod));
  }
  return dst;
}

std::string EncodeType(const Type& type) {
  std::string dst = Start(MessageType::kType);
  AppendU32BE(&dst, type.type_oid);
  AppendCString(&dst, type.nspname);
  AppendCString(&dst, type.name);
  return dst;
}

std::string EncodeInsert(const Insert& insert) {
  std::string dst = Start(MessageType::kInsert);
  AppendU32BE(&dst, insert.relid);
  AppendChar(&dst, 'N');
  AppendTuple(&dst, insert.new_tuple);
  return dst;
}

std::string EncodeUpdate(const Update& update) {
  std::string dst = Start(MessageType::kUpdate);
  AppendU32BE(&dst, update.relid);
  if (update.old_kind != 0) {
    AppendChar(&dst, update.old_kind);
    AppendTuple(&dst, update.old_tuple);
  }
  AppendChar(&dst, 'N');
  AppendTuple(&dst, update.new_tuple);
  return dst;
}

std::string EncodeDelete(const Delete& del) {
  std::string dst = Start(MessageType::kDelete);
  AppendU32BE(&dst, del.relid);
  AppendChar(&dst, del.old_kind);
  AppendTuple(&dst, del.old_tuple);
  return dst;
}

std::string EncodeTruncate(const Truncate& truncate) {
  std::string dst = Start(MessageType::kTruncate);
  AppendU32BE(&dst, static_cast<uint32_t>(truncate.relids.size()));
  AppendU8(&dst, truncate.flags);
  for (uint32_t relid : truncate.relids) AppendU32BE(&dst, relid);
  return dst;
}

std::string EncodeMessage(const LogicalMessage& message) {
  std::string dst = Start(MessageType::kMessage);
  AppendU8(&dst, message.flags);
  AppendU64BE(&dst, message.lsn);
  AppendCString(&dst, message.prefix);
  AppendU32BE(&dst, static_cast<uint32_t>(message.content.size()));
  dst.append(message.content);
  return dst;
}

std::string Encode(const Message& message) {
  switch (message.type) {
    case MessageType::kBegin:
      return EncodeBegin(message.begin);
    case MessageType::kCommit:
      return EncodeCommit(message.commit);
    case MessageType::kOrigin:
      return EncodeOrigin(message.origin);
    case MessageType::kRelation:
      return EncodeRelation(message.relation);
    case MessageType::kType:
      return EncodeType(message.type_info);
    case MessageType::kInsert:
      return EncodeInsert(message.insert);
    case MessageType::kUpdate:
      return EncodeUpdate(message.update);
    case MessageType::kDelete:
      return EncodeDelete(message.del);
    case MessageType::kTruncate:
      return EncodeTruncate(message.truncate);
    case MessageType::kMessage:
      return EncodeMessage(message.message);
  }
  // An out-of-range type: emit just the byte, which is what a test asking for
  // an unknown message type wants.
  return Start(message.type);
}

TupleColumn Null() { return Column(TupleKind::kNull, ""); }
TupleColumn UnchangedToast() { return Column(TupleKind::kUnchangedToast, ""); }
TupleColumn Text(std::string_view value) { return Column(TupleKind::kText, value); }
TupleColumn Binary(std::string_view value) { return Column(TupleKind::kBinary, value); }

TupleData Tuple(std::initializer_list<TupleColumn> columns) {
  TupleData tuple;
  tuple.columns.assign(columns.begin(), columns.end());
  return tuple;
}

}  // namespace pgtrail::pgoutput::testing
