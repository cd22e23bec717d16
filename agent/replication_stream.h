// A logical replication connection (replication=database): the replication
// commands pgtrail uses, and the CopyBoth stream with its feedback messages.
// See ../shared/docs/PGOUTPUT.md sections 1-3.
#ifndef PGTRAIL_AGENT_REPLICATION_STREAM_H_
#define PGTRAIL_AGENT_REPLICATION_STREAM_H_

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

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
  // From here until Finish() a receiver thread owns the connection: it reads
  // ahead into a bounded queue, so the walsender keeps sending while the
  // caller stores what came before, and it sends the caller's status
  // updates. Reading on the caller's thread instead cost ~30% of a
  // backlog's drain time when capture was heavier. Measured again with
  // today's capture, it saved ~1 s of CPU and ~5% of a drain over a Unix
  // socket, but over TCP the drain took 16.1 s instead of 12.3-13.4 s
  // (docs/BENCHMARKS.md).
  Status Start(const std::string& slot, uint64_t start_lsn, const std::string& publication);

  // Waits up to timeout_ms for a frame; kind kNone on timeout. kEnd when the
  // server ended the copy. kUnavailable if the connection broke, kCorruption
  // for a malformed frame. Frames come in the order the server sent them,
  // and an error only after every frame received before it.
  Status Read(int timeout_ms, StreamFrame* frame);
  // Standby status update: write = received, flush = apply = flushed. Queued
  // for the receiver thread, which sends it at once; a failure to send shows
  // as a broken stream in Read.
  Status SendStatus(uint64_t received, uint64_t flushed, bool reply_requested);
  // Ends the copy cleanly (CopyDone, then drains the server's results).
  Status Finish();

  // Not to be used while streaming (between Start and Finish).
  PgConn* conn() { return conn_.get(); }

  // The receiver stops reading while this many bytes of frames wait.
  static constexpr size_t kMaxQueuedBytes = 16u << 20;
  // While frames pour in (this many bytes since the last wait), the
  // receiver naps this long instead of waiting for the socket.
  static constexpr size_t kBusyBytes = 4096;
  static constexpr long kBusyNapNs = 200 * 1000;

 private:
  // One item of the receive queue: a PQgetCopyData buffer, or the end of the
  // stream (buffer null, status OK), or an error (buffer null).
  struct Item {
    char* buffer = nullptr;
    int length = 0;
    Status status;
  };

  explicit ReplicationStream(std::unique_ptr<PgConn> conn) : conn_(std::move(conn)) {}
  Status Broken(const std::string& what);
  void Receive();           // the receiver thread
  Status ReceiveOnce(bool* done);
  void Push(Item item);
  void Wake();
  void StopReceiver(bool finish);

  std::unique_ptr<PgConn> conn_;
  char* buffer_ = nullptr;  // the frame returned by the last Read
  bool streaming_ = false;

  // Shared with the receiver thread, under mu_.
  std::mutex mu_;
  std::condition_variable ready_;
  std::deque<Item> queue_;
  size_t queued_bytes_ = 0;
  std::vector<std::string> outbox_;  // status messages to send
  bool finish_ = false;              // send CopyDone, drain, exit
  // The receiver's own state.
  bool copy_end_sent_ = false;
  std::chrono::steady_clock::time_point finish_deadline_;
  bool abort_ = false;               // exit now
  size_t read_since_wait_ = 0;       // bytes handed over since the last wait
  std::thread receiver_;
  int wake_fd_ = -1;                 // eventfd: wakes the receiver's poll

  std::deque<Item> taken_;  // taken from queue_ by Read, not yet returned
  bool ended_ = false;      // Read returned the end or an error
};

// Parses the fixed part of one CopyData message ('w' or 'k').
Status ParseStreamFrame(std::string_view data, StreamFrame* frame);

}  // namespace pgtrail

#endif  // PGTRAIL_AGENT_REPLICATION_STREAM_H_
