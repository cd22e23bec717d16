#include "agent/replication_stream.h"

#include <poll.h>
#include <pthread.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>

#include "storage/coding.h"
#include "storage/pg_time.h"

namespace pgtrail {

ConnOverrides SourceSessionSettings() {
  return {
      {"client_encoding", "UTF8"},
      {"options",
       "-c datestyle=ISO -c intervalstyle=postgres -c extra_float_digits=3 -c timezone=UTC "
       "-c bytea_output=hex"},
  };
}

Result<std::unique_ptr<ReplicationStream>> ReplicationStream::Connect(const std::string& conninfo) {
  ConnOverrides overrides = SourceSessionSettings();
  overrides.emplace_back("replication", "database");
  ASSIGN_OR_RETURN(auto conn, PgConn::Connect(conninfo, overrides));
  return std::unique_ptr<ReplicationStream>(new ReplicationStream(std::move(conn)));
}

ReplicationStream::~ReplicationStream() {
  StopReceiver(/*finish=*/false);
  if (buffer_ != nullptr) PQfreemem(buffer_);
  for (Item& item : taken_) PQfreemem(item.buffer);  // null-safe
  for (Item& item : queue_) PQfreemem(item.buffer);
  if (wake_fd_ >= 0) ::close(wake_fd_);
}

Status ReplicationStream::Broken(const std::string& what) {
  return Status::Unavailable(what + ": " + conn_->LastError());
}

Result<SystemIdentity> ReplicationStream::IdentifySystem() {
  ASSIGN_OR_RETURN(PgResult res, conn_->Query("IDENTIFY_SYSTEM"));
  if (res.rows() != 1 || res.cols() < 4) {
    return Status::Corruption("IDENTIFY_SYSTEM returned an unexpected result");
  }
  SystemIdentity id;
  id.system_id = res.GetString(0, 0);
  id.timeline = static_cast<uint32_t>(std::stoul(res.GetString(0, 1)));
  RETURN_IF_ERROR(ParseLsn(res.Get(0, 2), &id.xlogpos));
  if (res.IsNull(0, 3)) {
    return Status::InvalidArgument(
        "the source connection is not bound to a database\nHINT: name the database in the "
        "connection string (dbname=...)");
  }
  id.dbname = res.GetString(0, 3);
  return id;
}

Result<SlotInfo> ReplicationStream::GetSlot(const std::string& slot) {
  // Plain SQL is allowed on a replication=database connection; the simple
  // query protocol only, so the name is quoted as a literal.
  ASSIGN_OR_RETURN(
      PgResult res,
      conn_->Query("SELECT plugin, database, confirmed_flush_lsn, wal_status, active "
                   "FROM pg_catalog.pg_replication_slots WHERE slot_name = " +
                   QuoteLiteral(slot)));
  SlotInfo info;
  if (res.rows() == 0) return info;
  info.exists = true;
  info.plugin = res.GetString(0, 0);
  info.database = res.GetString(0, 1);
  if (!res.IsNull(0, 2)) RETURN_IF_ERROR(ParseLsn(res.Get(0, 2), &info.confirmed_flush_lsn));
  info.wal_status = res.GetString(0, 3);
  info.active = res.Get(0, 4) == "t";
  return info;
}

Result<CreatedSlot> ReplicationStream::CreateSlot(const std::string& slot) {
  ASSIGN_OR_RETURN(PgResult res, conn_->Query("CREATE_REPLICATION_SLOT " + slot +
                                              " LOGICAL pgoutput (SNAPSHOT 'export')"));
  if (res.rows() != 1 || res.cols() < 3 || res.IsNull(0, 2)) {
    return Status::Corruption("CREATE_REPLICATION_SLOT returned an unexpected result");
  }
  CreatedSlot created;
  RETURN_IF_ERROR(ParseLsn(res.Get(0, 1), &created.consistent_point));
  created.snapshot_name = res.GetString(0, 2);
  return created;
}

Status ReplicationStream::DropSlot(const std::string& slot) {
  return conn_->Exec("DROP_REPLICATION_SLOT " + slot);
}

Status ReplicationStream::Start(const std::string& slot, uint64_t start_lsn,
                                const std::string& publication) {
  const std::string cmd = "START_REPLICATION SLOT " + slot + " LOGICAL " + FormatLsn(start_lsn) +
                          " (proto_version '1', publication_names " +
                          QuoteLiteral(QuoteIdent(publication)) + ", messages 'true')";
  PGresult* res = PQexec(conn_->get(), cmd.c_str());
  const ExecStatusType st = PQresultStatus(res);
  std::string err = PQresultErrorMessage(res);
  PQclear(res);
  if (st != PGRES_COPY_BOTH) {
    while (!err.empty() && (err.back() == '\n' || err.back() == ' ')) err.pop_back();
    if (PQstatus(conn_->get()) == CONNECTION_BAD) return Status::Unavailable("START_REPLICATION: " + err);
    return Status::FailedPrecondition("START_REPLICATION failed: " + err);
  }
  if (PQsetnonblocking(conn_->get(), 1) != 0) return Broken("cannot make the connection non-blocking");
  wake_fd_ = ::eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
  if (wake_fd_ < 0) return Status::IOError("cannot create an eventfd for the stream");
  streaming_ = true;
  receiver_ = std::thread(&ReplicationStream::Receive, this);
  return Status::OK();
}

void ReplicationStream::Wake() {
  const uint64_t one = 1;
  // A full counter (impossible in practice) still leaves the fd readable.
  [[maybe_unused]] ssize_t n = ::write(wake_fd_, &one, sizeof(one));
}

void ReplicationStream::Push(Item item) {
  {
    std::lock_guard<std::mutex> lock(mu_);
    queued_bytes_ += static_cast<size_t>(item.length);
    queue_.push_back(std::move(item));
  }
  ready_.notify_one();
}

void ReplicationStream::Receive() {
  pthread_setname_np(pthread_self(), "pgtrail-recv");  // shows in top -H, perf
  bool done = false;
  while (!done) {
    Status st = ReceiveOnce(&done);
    if (!st.ok()) {
      Push(Item{nullptr, 0, st});
      return;
    }
  }
}

Status ReplicationStream::ReceiveOnce(bool* done) {
  PGconn* conn = conn_->get();
  std::vector<std::string> out;
  bool finish, room;
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (abort_) {
      *done = true;
      return Status::OK();
    }
    out.swap(outbox_);
    finish = finish_;
    room = queued_bytes_ < kMaxQueuedBytes;
  }
  for (const std::string& msg : out) {
    if (PQputCopyData(conn, msg.data(), static_cast<int>(msg.size())) != 1) {
      return Broken("cannot send status to the source");
    }
  }
  if (finish && !copy_end_sent_) {
    if (PQputCopyEnd(conn, nullptr) != 1) return Broken("cannot end the copy");
    copy_end_sent_ = true;
    finish_deadline_ = std::chrono::steady_clock::now() + std::chrono::seconds(2);
  }
  const int unsent = PQflush(conn);  // 1: more to send once the socket allows
  if (unsent < 0) return Broken("cannot send status to the source");

  if (room || finish) {
    // Every complete frame libpq holds, handed over in one batch.
    std::deque<Item> got;
    size_t bytes = 0;
    Status failed;
    for (;;) {
      char* buffer = nullptr;
      const int n = PQgetCopyData(conn, &buffer, /*async=*/1);
      if (n > 0) {
        got.push_back(Item{buffer, n, Status::OK()});
        bytes += static_cast<size_t>(n);
        if (bytes >= (1u << 20)) break;
        continue;
      }
      if (n == -1) {
        // CopyDone from the server: drain the results and report the end.
        while (PGresult* res = PQgetResult(conn)) PQclear(res);
        got.push_back(Item{nullptr, 0, Status::OK()});
        *done = true;
      } else if (n == -2) {
        failed = Broken("replication stream failed");
      }
      break;
    }
    if (!got.empty()) {
      {
        std::lock_guard<std::mutex> lock(mu_);
        for (Item& item : got) {
          queued_bytes_ += static_cast<size_t>(item.length);
          queue_.push_back(std::move(item));
        }
      }
      ready_.notify_one();
    }
    if (!failed.ok() || *done) return failed;
    read_since_wait_ += bytes;
    if (bytes > 0) {
      // The socket may hold more: read on until it runs dry.
      if (PQconsumeInput(conn) == 0) return Broken("lost the source connection");
      return Status::OK();
    }
  }
  if (copy_end_sent_ && std::chrono::steady_clock::now() > finish_deadline_) {
    Push(Item{nullptr, 0, Status::OK()});  // the agent is stopping anyway
    *done = true;
    return Status::OK();
  }

  // Frames pouring in (a backlog): nap instead of waiting for the socket, and
  // read what gathered meanwhile. Woken by every message the walsender
  // sends, the receiver switched 58,000-98,000 times in the benchmark's
  // drain (as often again for the capture thread it wakes); napping, 18,000
  // times, ~130 messages a read, and the agent's CPU time drops by a tenth
  // (lab: 6.0-7.3 s -> 5.1-6.0 s). The socket holds ~270 such
  // messages, over a millisecond of the walsender's output. A trickle (live
  // streaming) still waits on the socket: no added latency.
  const bool busy = read_since_wait_ >= kBusyBytes && (room || finish);
  read_since_wait_ = 0;
  pollfd fds[2] = {
      {PQsocket(conn),
       static_cast<short>(((room || finish) && !busy ? POLLIN : 0) | (unsent ? POLLOUT : 0)), 0},
      {wake_fd_, POLLIN, 0},
  };
  const timespec nap = {0, kBusyNapNs};
  const timespec wait = {0, 100 * 1000 * 1000};
  int rc = ::ppoll(fds, 2, busy ? &nap : &wait, nullptr);
  if (busy && rc == 0) {
    fds[0].revents = POLLIN;
    rc = 1;
  }
  if (rc < 0 && errno != EINTR) return Status::Unavailable("poll failed on the source connection");
  if (rc <= 0) return Status::OK();
  if (fds[1].revents & POLLIN) {
    uint64_t count;
    [[maybe_unused]] ssize_t n = ::read(wake_fd_, &count, sizeof(count));
  }
  if (fds[0].revents & (POLLIN | POLLERR | POLLHUP)) {
    if (PQconsumeInput(conn) == 0) return Broken("lost the source connection");
  }
  return Status::OK();
}

void ReplicationStream::StopReceiver(bool finish) {
  if (!receiver_.joinable()) return;
  {
    std::lock_guard<std::mutex> lock(mu_);
    (finish ? finish_ : abort_) = true;
  }
  Wake();
  receiver_.join();
}

Status ParseStreamFrame(std::string_view data, StreamFrame* frame) {
  ByteReader r(data);
  uint8_t type;
  RETURN_IF_ERROR(r.ReadU8("stream message type", &type));
  if (type == 'w') {
    frame->kind = StreamFrame::kXLogData;
    RETURN_IF_ERROR(r.ReadU64BE("XLogData start", &frame->wal_start));
    RETURN_IF_ERROR(r.ReadU64BE("XLogData end", &frame->wal_end));
    RETURN_IF_ERROR(r.ReadI64BE("XLogData send time", &frame->send_time));
    frame->payload = data.substr(r.position());
    return Status::OK();
  }
  if (type == 'k') {
    frame->kind = StreamFrame::kKeepalive;
    uint8_t reply;
    RETURN_IF_ERROR(r.ReadU64BE("keepalive end", &frame->wal_end));
    RETURN_IF_ERROR(r.ReadI64BE("keepalive send time", &frame->send_time));
    RETURN_IF_ERROR(r.ReadU8("keepalive reply flag", &reply));
    RETURN_IF_ERROR(r.ExpectEnd("keepalive"));
    frame->reply_requested = reply != 0;
    return Status::OK();
  }
  return Status::Corruption("replication stream: unknown message type 0x" +
                            std::to_string(static_cast<int>(type)));
}

Status ReplicationStream::Read(int timeout_ms, StreamFrame* frame) {
  frame->kind = StreamFrame::kNone;
  if (buffer_ != nullptr) {
    PQfreemem(buffer_);
    buffer_ = nullptr;
  }
  if (ended_ || !streaming_) {
    frame->kind = StreamFrame::kEnd;
    return Status::OK();
  }
  if (taken_.empty()) {
    std::unique_lock<std::mutex> lock(mu_);
    if (queue_.empty() && timeout_ms > 0) {
      ready_.wait_for(lock, std::chrono::milliseconds(timeout_ms),
                      [this] { return !queue_.empty(); });
    }
    if (queue_.empty()) return Status::OK();
    const bool was_full = queued_bytes_ >= kMaxQueuedBytes;
    taken_.swap(queue_);
    queued_bytes_ = 0;
    lock.unlock();
    if (was_full) Wake();  // room again: the receiver reads on
  }
  Item item = std::move(taken_.front());
  taken_.pop_front();
  if (item.buffer == nullptr) {
    ended_ = true;
    if (!item.status.ok()) return item.status;
    frame->kind = StreamFrame::kEnd;
    return Status::OK();
  }
  buffer_ = item.buffer;
  return ParseStreamFrame(std::string_view(buffer_, static_cast<size_t>(item.length)), frame);
}

Status ReplicationStream::SendStatus(uint64_t received, uint64_t flushed, bool reply_requested) {
  std::string msg;
  AppendU8(&msg, 'r');
  AppendU64BE(&msg, received);
  AppendU64BE(&msg, flushed);
  AppendU64BE(&msg, flushed);
  const int64_t now_us = NowUnixUs();
  AppendU64BE(&msg, static_cast<uint64_t>(now_us - kPgEpochOffsetUs));
  AppendU8(&msg, reply_requested ? 1 : 0);
  if (!receiver_.joinable()) return Status::FailedPrecondition("the stream is not started");
  {
    std::lock_guard<std::mutex> lock(mu_);
    outbox_.push_back(std::move(msg));
  }
  Wake();
  return Status::OK();
}

Status ReplicationStream::Finish() {
  if (!streaming_) return Status::OK();
  // The receiver sends CopyDone and reads on until the server's CopyDone
  // (at most 2 s: the agent is stopping anyway); frames still queued are
  // dropped, as the caller has stored what it needs.
  StopReceiver(/*finish=*/true);
  streaming_ = false;
  return Status::OK();
}

}  // namespace pgtrail
