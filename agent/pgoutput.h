// pgoutput logical replication messages (protocol version 1, PostgreSQL 15),
// and the decoder: a pure function from the bytes of one XLogData payload to a
// typed message. No I/O. See ../shared/docs/PGOUTPUT.md section 4.
//
// The enum values of MessageType and TupleKind are the wire bytes.
#ifndef PGTRAIL_AGENT_PGOUTPUT_H_
#define PGTRAIL_AGENT_PGOUTPUT_H_

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "storage/status.h"

namespace pgtrail::pgoutput {

enum class MessageType : char {
  kBegin = 'B',
  kCommit = 'C',
  kOrigin = 'O',
  kRelation = 'R',
  kType = 'Y',
  kInsert = 'I',
  kUpdate = 'U',
  kDelete = 'D',
  kTruncate = 'T',
  kMessage = 'M',
};

enum class TupleKind : char {
  kNull = 'n',
  kUnchangedToast = 'u',
  kText = 't',
  kBinary = 'b',
};

struct TupleColumn {
  TupleKind kind = TupleKind::kNull;
  // kText / kBinary: the value's bytes, in place in the decoded payload (see
  // Decode); empty for the other kinds.
  std::string_view data;
};

struct TupleData {
  std::vector<TupleColumn> columns;
};

struct RelationColumn {
  uint8_t flags = 0;  // bit 1: part of the replica identity key
  std::string name;
  uint32_t type_oid = 0;
  int32_t type_mod = -1;
  bool is_key() const { return (flags & 1) != 0; }
};

struct Begin {
  uint64_t final_lsn = 0;
  int64_t commit_time = 0;  // µs since 2000-01-01 UTC (PostgreSQL epoch)
  uint32_t xid = 0;
};

struct Commit {
  uint8_t flags = 0;
  uint64_t commit_lsn = 0;
  uint64_t end_lsn = 0;
  int64_t commit_time = 0;  // µs since 2000-01-01 UTC
};

struct Origin {
  uint64_t commit_lsn = 0;
  std::string name;
};

struct Relation {
  uint32_t relid = 0;
  std::string nspname;  // "" on the wire means pg_catalog; kept as sent
  std::string relname;
  char replica_identity = 'd';
  std::vector<RelationColumn> columns;
};

struct Type {
  uint32_t type_oid = 0;
  std::string nspname;
  std::string name;
};

struct Insert {
  uint32_t relid = 0;
  TupleData new_tuple;
};

struct Update {
  uint32_t relid = 0;
  char old_kind = 0;  // 0 (no old tuple), 'K' (key) or 'O' (old row)
  TupleData old_tuple;
  TupleData new_tuple;
};

struct Delete {
  uint32_t relid = 0;
  char old_kind = 'K';  // 'K' or 'O'
  TupleData old_tuple;
};

struct Truncate {
  uint8_t flags = 0;  // 1 = CASCADE, 2 = RESTART IDENTITY
  std::vector<uint32_t> relids;
};

struct LogicalMessage {
  uint8_t flags = 0;  // 1 = transactional
  uint64_t lsn = 0;
  std::string prefix;
  std::string content;
  bool transactional() const { return (flags & 1) != 0; }
};

// One decoded message. Exactly the member named by `type` is meaningful.
struct Message {
  MessageType type = MessageType::kBegin;
  Begin begin;
  Commit commit;
  Origin origin;
  Relation relation;
  Type type_info;
  Insert insert;
  Update update;
  Delete del;
  Truncate truncate;
  LogicalMessage message;
};

// Decodes one pgoutput message (the payload after the 25-byte XLogData header).
// On success *out holds the message; the whole input must be consumed.
// Errors are kCorruption with a message naming the message type and the field,
// e.g. "pgoutput Insert: truncated tuple column length", "pgoutput: unknown
// message type 0x5a", "pgoutput Update: expected 'N' before new tuple, got 'X'".
// `out` is reused between calls to avoid reallocating; its previous contents
// are overwritten. Tuple column values are not copied: they point into
// `payload` and are valid as long as it is (copying them cost ~5% of a
// capture's instructions).
Status Decode(std::string_view payload, Message* out);

// Human-readable name of a message type ("Insert"), for errors and logs.
const char* MessageTypeName(MessageType type);

}  // namespace pgtrail::pgoutput

#endif  // PGTRAIL_AGENT_PGOUTPUT_H_
