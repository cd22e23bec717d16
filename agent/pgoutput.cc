// pgoutput protocol version 1 decoder (PostgreSQL 15, proto.c).
//
// Grammar of one XLogData payload; every integer is big-endian, String is
// NUL-terminated, and the whole payload must be consumed:
//
//   message   := 'B' final_lsn:Int64 commit_time:Int64 xid:Int32
//              | 'C' flags:Int8(=0) commit_lsn:Int64 end_lsn:Int64 commit_time:Int64
//              | 'O' commit_lsn:Int64 name:String
//              | 'R' relid:Int32 nspname:String relname:String
//                    replica_identity:Int8(d|n|f|i) ncols:Int16 column{ncols}
//              | 'Y' type_oid:Int32 nspname:String name:String
//              | 'I' relid:Int32 'N' tuple
//              | 'U' relid:Int32 [('K'|'O') tuple] 'N' tuple
//              | 'D' relid:Int32 ('K'|'O') tuple
//              | 'T' nrels:Int32 flags:Int8(1 cascade|2 restart identity) relid:Int32{nrels}
//              | 'M' flags:Int8(1 transactional) lsn:Int64 prefix:String n:Int32 content:Byte{n}
//   column    := flags:Int8(1 key) name:String type_oid:Int32 type_mod:Int32
//   tuple     := ncols:Int16 value{ncols}
//   value     := 'n' | 'u' | 't' len:Int32 Byte{len} | 'b' len:Int32 Byte{len}
//
// Streaming (v2) and two-phase (v3) messages are not accepted: pgtrail asks
// for proto_version '1', so seeing one means the stream is not what we asked for.
#include "agent/pgoutput.h"

#include <cstdio>

#include "storage/coding.h"

namespace pgtrail::pgoutput {
namespace {

constexpr uint8_t kColumnFlagKey = 1;
constexpr uint8_t kTruncateKnownFlags = 1 | 2;  // CASCADE, RESTART IDENTITY
constexpr uint8_t kMessageKnownFlags = 1;       // transactional

std::string HexByte(uint8_t byte) {
  char buf[8];
  std::snprintf(buf, sizeof(buf), "0x%02x", byte);
  return buf;
}

// A wire byte as it reads best in an error: 'N' when printable, else 0x01.
std::string ByteName(uint8_t byte) {
  if (byte >= 0x20 && byte < 0x7f) return std::string{'\'', static_cast<char>(byte), '\''};
  return HexByte(byte);
}

void Assign(std::string_view from, std::string* to) { to->assign(from.data(), from.size()); }

Status ReadString(ByteReader* reader, const char* what, std::string* out) {
  std::string_view view;
  RETURN_IF_ERROR(reader->ReadCString(what, &view));
  Assign(view, out);
  return Status::OK();
}

Status ReadTuple(ByteReader* reader, TupleData* tuple) {
  int16_t ncols;
  RETURN_IF_ERROR(reader->ReadI16BE("tuple column count", &ncols));
  if (ncols < 0) {
    return Status::Corruption("negative tuple column count " + std::to_string(ncols));
  }
  tuple->columns.resize(static_cast<size_t>(ncols));
  for (TupleColumn& column : tuple->columns) {
    uint8_t kind;
    RETURN_IF_ERROR(reader->ReadU8("tuple column kind", &kind));
    switch (static_cast<TupleKind>(kind)) {
      case TupleKind::kNull:
      case TupleKind::kUnchangedToast:
        column.data = {};
        break;
      case TupleKind::kText:
      case TupleKind::kBinary: {
        int32_t length;
        RETURN_IF_ERROR(reader->ReadI32BE("tuple column length", &length));
        if (length < 0) {
          return Status::Corruption("negative tuple column length " + std::to_string(length));
        }
        std::string_view data;
        RETURN_IF_ERROR(reader->ReadBytes("tuple column data", static_cast<size_t>(length), &data));
        column.data = data;
        break;
      }
      default:
        return Status::Corruption("unknown tuple column kind " + ByteName(kind));
    }
    column.kind = static_cast<TupleKind>(kind);
  }
  return Status::OK();
}

Status ExpectNewTupleMarker(uint8_t marker) {
  if (marker != 'N') {
    return Status::Corruption("expected 'N' before new tuple, got " + ByteName(marker));
  }
  return Status::OK();
}

Status DecodeBegin(ByteReader* reader, Begin* begin) {
  RETURN_IF_ERROR(reader->ReadU64BE("final_lsn", &begin->final_lsn));
  RETURN_IF_ERROR(reader->ReadI64BE("commit timestamp", &begin->commit_time));
  return reader->ReadU32BE("xid", &begin->xid);
}

Status DecodeCommit(ByteReader* reader, Commit* commit) {
  RETURN_IF_ERROR(reader->ReadU8("flags", &commit->flags));
  if (commit->flags != 0) {
    return Status::Corruption("unknown flags " + HexByte(commit->flags) + ", expected 0");
  }
  RETURN_IF_ERROR(reader->ReadU64BE("commit_lsn", &commit->commit_lsn));
  RETURN_IF_ERROR(reader->ReadU64BE("end_lsn", &commit->end_lsn));
  return reader->ReadI64BE("commit timestamp", &commit->commit_time);
}

Status DecodeOrigin(ByteReader* reader, Origin* origin) {
  RETURN_IF_ERROR(reader->ReadU64BE("origin commit_lsn", &origin->commit_lsn));
  return ReadString(reader, "origin name", &origin->name);
}

Status DecodeRelation(ByteReader* reader, Relation* relation) {
  RETURN_IF_ERROR(reader->ReadU32BE("relid", &relation->relid));
  RETURN_IF_ERROR(ReadString(reader, "namespace", &relation->nspname));
  RETURN_IF_ERROR(ReadString(reader, "relation name", &relation->relname));
  uint8_t identity;
  RETURN_IF_ERROR(reader->ReadU8("replica identity", &identity));
  switch (identity) {
    case 'd':
    case 'n':
    case 'f':
    case 'i':
      relation->replica_identity = static_cast<char>(identity);
      break;
    default:
      return Status::Corruption("unknown replica identity " + ByteName(identity) +
                                ", expected one of d, n, f, i");
  }
  int16_t ncols;
  RETURN_IF_ERROR(reader->ReadI16BE("column count", &ncols));
  if (ncols < 0) return Status::Corruption("negative column count " + std::to_string(ncols));
  relation->columns.resize(static_cast<size_t>(ncols));
  for (RelationColumn& column : relation->columns) {
    RETURN_IF_ERROR(reader->ReadU8("column flags", &column.flags));
    if ((column.flags & ~kColumnFlagKey) != 0) {
      return Status::Corruption("unknown column flags " + HexByte(column.flags));
    }
    RETURN_IF_ERROR(ReadString(reader, "column name", &column.name));
    RETURN_IF_ERROR(reader->ReadU32BE("column type oid", &column.type_oid));
    RETURN_IF_ERROR(reader->ReadI32BE("column type modifier", &column.type_mod));
  }
  return Status::OK();
}

Status DecodeType(ByteReader* reader, Type* type) {
  RETURN_IF_ERROR(reader->ReadU32BE("type oid", &type->type_oid));
  RETURN_IF_ERROR(ReadString(reader, "type namespace", &type->nspname));
  return ReadString(reader, "type name", &type->name);
}

Status DecodeInsert(ByteReader* reader, Insert* insert) {
  RETURN_IF_ERROR(reader->ReadU32BE("relid", &insert->relid));
  uint8_t marker;
  RETURN_IF_ERROR(reader->ReadU8("tuple marker", &marker));
  RETURN_IF_ERROR(ExpectNewTupleMarker(marker));
  return ReadTuple(reader, &insert->new_tuple);
}

Status DecodeUpdate(ByteReader* reader, Update* update) {
  RETURN_IF_ERROR(reader->ReadU32BE("relid", &update->relid));
  uint8_t marker;
  RETURN_IF_ERROR(reader->ReadU8("tuple marker", &marker));
  if (marker == 'K' || marker == 'O') {
    update->old_kind = static_cast<char>(marker);
    RETURN_IF_ERROR(ReadTuple(reader, &update->old_tuple));
    RETURN_IF_ERROR(reader->ReadU8("new tuple marker", &marker));
  } else {
    update->old_kind = 0;
    update->old_tuple.columns.clear();
  }
  RETURN_IF_ERROR(ExpectNewTupleMarker(marker));
  return ReadTuple(reader, &update->new_tuple);
}

Status DecodeDelete(ByteReader* reader, Delete* del) {
  RETURN_IF_ERROR(reader->ReadU32BE("relid", &del->relid));
  uint8_t marker;
  RETURN_IF_ERROR(reader->ReadU8("tuple marker", &marker));
  if (marker != 'K' && marker != 'O') {
    return Status::Corruption("expected 'K' or 'O' before old tuple, got " + ByteName(marker));
  }
  del->old_kind = static_cast<char>(marker);
  return ReadTuple(reader, &del->old_tuple);
}

Status DecodeTruncate(ByteReader* reader, Truncate* truncate) {
  int32_t nrels;
  RETURN_IF_ERROR(reader->ReadI32BE("relation count", &nrels));
  if (nrels < 0) return Status::Corruption("negative relation count " + std::to_string(nrels));
  RETURN_IF_ERROR(reader->ReadU8("flags", &truncate->flags));
  if ((truncate->flags & ~kTruncateKnownFlags) != 0) {
    return Status::Corruption("unknown flags " + HexByte(truncate->flags));
  }
  // Take all the relids in one bounded read first, so a corrupt count cannot
  // make us allocate more than the payload could hold.
  std::string_view relid_bytes;
  RETURN_IF_ERROR(reader->ReadBytes("relids", static_cast<size_t>(nrels) * 4, &relid_bytes));
  ByteReader relids(relid_bytes);
  truncate->relids.resize(static_cast<size_t>(nrels));
  for (uint32_t& relid : truncate->relids) RETURN_IF_ERROR(relids.ReadU32BE("relid", &relid));
  return Status::OK();
}

Status DecodeMessage(ByteReader* reader, LogicalMessage* message) {
  RETURN_IF_ERROR(reader->ReadU8("flags", &message->flags));
  if ((message->flags & ~kMessageKnownFlags) != 0) {
    return Status::Corruption("unknown flags " + HexByte(message->flags));
  }
  RETURN_IF_ERROR(reader->ReadU64BE("lsn", &message->lsn));
  RETURN_IF_ERROR(ReadString(reader, "prefix", &message->prefix));
  int32_t length;
  RETURN_IF_ERROR(reader->ReadI32BE("content length", &length));
  if (length < 0) return Status::Corruption("negative content length " + std::to_string(length));
  std::string_view content;
  RETURN_IF_ERROR(reader->ReadBytes("content", static_cast<size_t>(length), &content));
  Assign(content, &message->content);
  return Status::OK();
}

}  // namespace

Status Decode(std::string_view payload, Message* out) {
  ByteReader reader(payload);
  uint8_t type_byte;
  Status status = reader.ReadU8("message type", &type_byte);
  if (!status.ok()) return status.WithContext("pgoutput");
  const auto type = static_cast<MessageType>(type_byte);
  switch (type) {
    case MessageType::kBegin:
      status = DecodeBegin(&reader, &out->begin);
      break;
    case MessageType::kCommit:
      status = DecodeCommit(&reader, &out->commit);
      break;
    case MessageType::kOrigin:
      status = DecodeOrigin(&reader, &out->origin);
      break;
    case MessageType::kRelation:
      status = DecodeRelation(&reader, &out->relation);
      break;
    case MessageType::kType:
      status = DecodeType(&reader, &out->type_info);
      break;
    case MessageType::kInsert:
      status = DecodeInsert(&reader, &out->insert);
      break;
    case MessageType::kUpdate:
      status = DecodeUpdate(&reader, &out->update);
      break;
    case MessageType::kDelete:
      status = DecodeDelete(&reader, &out->del);
      break;
    case MessageType::kTruncate:
      status = DecodeTruncate(&reader, &out->truncate);
      break;
    case MessageType::kMessage:
      status = DecodeMessage(&reader, &out->message);
      break;
    default:
      return Status::Corruption("pgoutput: unknown message type " + HexByte(type_byte));
  }
  out->type = type;
  if (status.ok() && reader.empty()) return Status::OK();
  // Only the error path pays for building the context string.
  const std::string context = std::string("pgoutput ") + MessageTypeName(type);
  if (!status.ok()) return status.WithContext(context);
  return reader.ExpectEnd(context.c_str());
}

const char* MessageTypeName(MessageType type) {
  switch (type) {
    case MessageType::kBegin:
      return "Begin";
    case MessageType::kCommit:
      return "Commit";
    case MessageType::kOrigin:
      return "Origin";
    case MessageType::kRelation:
      return "Relation";
    case MessageType::kType:
      return "Type";
    case MessageType::kInsert:
      return "Insert";
    case MessageType::kUpdate:
      return "Update";
    case MessageType::kDelete:
      return "Delete";
    case MessageType::kTruncate:
      return "Truncate";
    case MessageType::kMessage:
      return "Message";
  }
  return "unknown";
}

}  // namespace pgtrail::pgoutput
