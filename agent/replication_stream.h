// A logical replication connection (replication=database): the replication
// commands pgtrail uses, and the CopyBoth stream with its feedback messages.
// See ../shared/docs/PGOUTPUT.md sections 1-3.
#ifndef PGTRAIL_AGENT_REPLICATION_STREAM_H_
#define PGTRAIL_AGENT_REPLICATION_STREAM_H_

#include <cstdint>
#include <memory>
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
  // The connection is then non-blocking until Finish(). The caller's thread
  // reads the stream itself: a separate receiver thread that read ahead
  // into a queue cost ~1 s more CPU per backlog drain (one hand-over and
  // one wake-up per frame batch) and woke on the walsender's own CPU, where
  // it waited for a slice; see docs/BENCHMARKS.md.
  Status Start(const std::string& slot, uint64_t start_lsn, const std::string& publication);

  // Waits up to timeout_ms for a frame; kind kNone on timeout. kEnd when the
  // server ended the copy. kUnavailable if the connection broke, kCorruption
  // for a malformed frame. Frames come in the order the server sent them,
  // and an error only after every complete frame received before it.
  Status Read(int timeout_ms, StreamFrame* frame);
  // Standby status update: write = received, flush = apply = flushed. Sent
  // at once; what the socket cannot take yet goes with the next Read.
  Status SendStatus(uint64_t received, uint64_t flushed, bool reply_requested);
  // Ends the copy cleanly: CopyDone, then the server's frames and results
  // are read and dropped until its own CopyDone (at most 2 s).
  Status Finish();

  // Not to be used while streaming (between Start and Finish).
  PgConn* conn() { return conn_.get(); }

 private:
  explicit ReplicationStream(std::unique_ptr<PgConn> conn) : conn_(std::move(conn)) {}
  Status Broken(const std::string& what);
  // Sends what libpq holds, then reads what the socket has, without waiting.
  // False once the connection is lost.
  bool Exchange();
  // Waits up to timeout_ms for the socket to be readable (or writable, while
  // libpq holds unsent bytes).
  Status Wait(int timeout_ms);

  std::unique_ptr<PgConn> conn_;
  char* buffer_ = nullptr;  // the frame returned by the last Read
  bool streaming_ = false;
  bool ended_ = false;      // Read returned the end or an error
  bool lost_ = false;       // reading failed: an error once libpq's frames are out
};

// Parses the fixed part of one CopyData message ('w' or 'k').
Status ParseStreamFrame(std::string_view data, StreamFrame* frame);

}  // namespace pgtrail

#endif  // PGTRAIL_AGENT_REPLICATION_STREAM_H_
