// A logical replication connection (replication=database): the replication
// commands pgtrail uses, and the CopyBoth stream with its feedback messages.
// See ../shared/docs/PGOUTPUT.md sections 1-3.
#ifndef PGTRAIL_AGENT_REPLICATION_STREAM_H_
#define PGTRAIL_AGENT_REPLICATION_STREAM_H_

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>

#include "storage/pg.h"
#include "storage/status.h"

namespace pgtrail {

// The session settings every pgtrail connection to the source uses, so that
// text values (pgoutput and COPY alike) come in one exact, stable form.
ConnOverrides SourceSessionSettings();

struct SystemIdentity {
  std::string system_id;
  uint32_t timeline = 0;
  uint64_t xlogpos = 0;
  std::string dbname;
};

struct SlotInfo {
  bool exists = false;
  std::string plugin;
  std::string database;
  uint64_t confirmed_flush_lsn = 0;
  std::string wal_status;
  bool active = false;
};

struct CreatedSlot {
  uint64_t consistent_point = 0;
  std::string snapshot_name;
};

// One frame read from the stream.
struct StreamFrame {
  enum Kind { kNone, kXLogData, kKeepalive, kEnd };
  Kind kind = kNone;
  uint64_t wal_start = 0;
  uint64_t wal_end = 0;
  int64_t send_time = 0;
  bool reply_requested = false;
  std::string_view payload;  // kXLogData: valid until the next Read
};

class ReplicationStream {
 public:
  // Connects to conninfo with replication=database and the source settings.
  static Result<std::unique_ptr<ReplicationStream>> Connect(const std::string& conninfo);
  ~ReplicationStream();
  ReplicationStream(const ReplicationStream&) = delete;
  ReplicationStream& operator=(const ReplicationStream&) = delete;

  Result<SystemIdentity> IdentifySystem();
  Result<SlotInfo> GetSlot(const std::string& slot);
  // CREATE_REPLICATION_SLOT slot LOGICAL pgoutput (SNAPSHOT 'export'). The
  // exported snapshot lives until the next command on this connection.
  Result<CreatedSlot> CreateSlot(const std::string& slot);
  Status DropSlot(const std::string& slot);
  // START_REPLICATION ... (proto_version '1', publication_names, messages 'true').
  Status Start(const std::string& slot, uint64_t start_lsn, const std::string& publication);

  // Waits up to timeout_ms for a frame; kind kNone on timeout. kEnd when the
  // server ended the copy. kUnavailable if the connection broke, kCorruption
  // for a malformed frame.
  Status Read(int timeout_ms, StreamFrame* frame);
  // Standby status update: write = received, flush = apply = flushed.
  Status SendStatus(uint64_t received, uint64_t flushed, bool reply_requested);
  // Ends the copy cleanly (CopyDone, then drains the server's results).
  Status Finish();

  PgConn* conn() { return conn_.get(); }

 private:
  explicit ReplicationStream(std::unique_ptr<PgConn> conn) : conn_(std::move(conn)) {}
  Status Broken(const std::string& what);

  std::unique_ptr<PgConn> conn_;
  char* buffer_ = nullptr;  // last PQgetCopyData buffer
  bool streaming_ = false;
};

// Parses the fixed part of one CopyData message ('w' or 'k').
Status ParseStreamFrame(std::string_view data, StreamFrame* frame);

}  // namespace pgtrail

#endif  // PGTRAIL_AGENT_REPLICATION_STREAM_H_
