#include "agent/replication_stream.h"

#include <poll.h>

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
  if (buffer_ != nullptr) PQfreemem(buffer_);
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
  streaming_ = true;
  ended_ = false;
  lost_ = false;
  return Status::OK();
}

bool ReplicationStream::Exchange() {
  PGconn* conn = conn_->get();
  if (PQflush(conn) < 0) return false;  // 1: the rest once the socket allows
  return PQconsumeInput(conn) != 0;
}

Status ReplicationStream::Wait(int timeout_ms) {
  PGconn* conn = conn_->get();
  pollfd fd{PQsocket(conn), POLLIN, 0};
  if (PQflush(conn) == 1) fd.events |= POLLOUT;
  const int rc = ::poll(&fd, 1, timeout_ms);
  if (rc < 0 && errno != EINTR) return Status::Unavailable("poll failed on the source connection");
  return Status::OK();
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
  PGconn* conn = conn_->get();
  // Complete frames libpq holds come first; then what the socket has; then,
  // once, a wait.
  bool exchanged = false, waited = false;
  for (;;) {
    char* buffer = nullptr;
    const int n = PQgetCopyData(conn, &buffer, /*async=*/1);
    if (n > 0) {
      buffer_ = buffer;
      return ParseStreamFrame(std::string_view(buffer_, static_cast<size_t>(n)), frame);
    }
    if (n == -1) {
      // CopyDone from the server: drain its results and report the end.
      while (PGresult* res = PQgetResult(conn)) PQclear(res);
      ended_ = true;
      frame->kind = StreamFrame::kEnd;
      return Status::OK();
    }
    if (n == -2 || lost_) {
      ended_ = true;
      return Broken(n == -2 ? "replication stream failed" : "lost the source connection");
    }
    if (!exchanged) {
      lost_ = !Exchange();
      exchanged = true;
      continue;
    }
    if (waited || timeout_ms <= 0) return Status::OK();
    RETURN_IF_ERROR(Wait(timeout_ms));
    waited = true;
    exchanged = false;
  }
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
  if (!streaming_ || ended_) return Status::FailedPrecondition("the stream is not started");
  PGconn* conn = conn_->get();
  if (PQputCopyData(conn, msg.data(), static_cast<int>(msg.size())) != 1 || PQflush(conn) < 0) {
    return Broken("cannot send status to the source");
  }
  return Status::OK();
}

Status ReplicationStream::Finish() {
  if (!streaming_) return Status::OK();
  streaming_ = false;
  if (ended_) return Status::OK();
  ended_ = true;
  // Frames the server sends until its CopyDone are dropped: the caller has
  // stored what it needs, and the agent is stopping anyway.
  PGconn* conn = conn_->get();
  if (PQputCopyEnd(conn, nullptr) != 1) return Broken("cannot end the copy");
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(2);
  bool exchanged = false;
  while (std::chrono::steady_clock::now() < deadline) {
    char* buffer = nullptr;
    const int n = PQgetCopyData(conn, &buffer, /*async=*/1);
    if (n > 0) {
      PQfreemem(buffer);
      continue;
    }
    if (n == -1) {
      while (PGresult* res = PQgetResult(conn)) PQclear(res);
      return Status::OK();
    }
    if (n == -2) return Broken("the copy did not end cleanly");
    if (exchanged) RETURN_IF_ERROR(Wait(100));
    if (!Exchange()) return Broken("the copy did not end cleanly");
    exchanged = true;
  }
  return Status::OK();
}

}  // namespace pgtrail
