#include "agent/agent.h"

#include <malloc.h>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <chrono>
#include <random>
#include <thread>

#include "agent/capture.h"
#include "agent/ddl_capture.h"
#include "agent/pgoutput.h"
#include "agent/replication_stream.h"
#include "agent/snapshotter.h"
#include "storage/cli.h"
#include "storage/coding.h"
#include "storage/keys.h"
#include "storage/pg.h"
#include "storage/pg_time.h"
#include "storage/store.h"

namespace pgtrail {
namespace {


using Clock = std::chrono::steady_clock;
// Stream(): frames between clock reads while frames pour in.
constexpr int kClockFrames = 32;

int64_t MsSince(Clock::time_point t) {
  return std::chrono::duration_cast<std::chrono::milliseconds>(Clock::now() - t).count();
}

// Errors that a reconnect cannot fix end the agent.
bool IsFatal(const Status& st) {
  return st.code() == Status::kFailedPrecondition || st.code() == Status::kInvalidArgument ||
         st.code() == Status::kNotFound || st.code() == Status::kIOError;
}

class Agent {
 public:
  Agent(const AgentOptions& options, const std::atomic<bool>* stop)
      : options_(options), stop_(stop) {}

  Status Run() {
    ASSIGN_OR_RETURN(store_, Store::OpenForWrite(options_.store_path, /*create=*/true));
    capture_ = std::make_unique<Capture>(store_.get());
    RETURN_IF_ERROR(capture_->Init());
    spdlog::info("pgtrail-agent starting: store {}, slot {}, publication {}", options_.store_path,
                 options_.slot, options_.publication);
    int backoff_ms = 1000;
    std::mt19937 rng(std::random_device{}());
    while (!stop_->load() && !endpos_reached_) {
      const auto session_start = Clock::now();
      Status st = Session();
      if (st.ok()) break;  // clean stop
      // Keep what was completely received; the rest is resent.
      capture_->ResetStream();
      Status flushed = capture_->Flush();
      if (!flushed.ok()) return flushed;
      if (reread_) {
        reread_ = false;
        continue;
      }
      if (IsFatal(st)) return st;
      if (MsSince(session_start) > 60000) backoff_ms = 1000;
      const int wait = backoff_ms + static_cast<int>(rng() % 250);
      spdlog::warn("{}; reconnecting in {:.1f} s", st.message(), wait / 1000.0);
      for (int waited = 0; waited < wait && !stop_->load(); waited += 50) {
        std::this_thread::sleep_for(std::chrono::milliseconds(50));
      }
      backoff_ms = std::min(backoff_ms * 2, options_.max_backoff_ms);
    }
    RETURN_IF_ERROR(store_->FlushMemtables());
    spdlog::info("pgtrail-agent stopped at {} ({} transactions stored in this run, in {} synced "
                 "writes)",
                 FormatLsn(capture_->durable_lsn()), capture_->stats().txns_stored,
                 capture_->stats().flushes);
    return Status::OK();
  }

 private:
  // One connection's life. Returns OK only for a requested stop.
  Status Session() {
    ASSIGN_OR_RETURN(stream_, ReplicationStream::Connect(options_.source));
    ASSIGN_OR_RETURN(SystemIdentity id, stream_->IdentifySystem());
    pb::StoreMeta meta = capture_->meta();
    if (!meta.system_id().empty() &&
        (meta.system_id() != id.system_id || meta.dbname() != id.dbname)) {
      return Status::FailedPrecondition(
          "the store at " + options_.store_path + " belongs to database \"" + meta.dbname() +
          "\" of system " + meta.system_id() + ", but the source is database \"" + id.dbname +
          "\" of system " + id.system_id + "\nHINT: use a new --store for a different database");
    }
    if (!meta.slot().empty() && meta.slot() != options_.slot) {
      return Status::FailedPrecondition("the store was filled from slot \"" + meta.slot() +
                                        "\", not \"" + options_.slot + "\"");
    }
    spdlog::info("connected to {} (system {}, timeline {}, WAL at {})", stream_->conn()->Describe(),
                 id.system_id, id.timeline, FormatLsn(id.xlogpos));

    ASSIGN_OR_RETURN(SlotInfo slot, stream_->GetSlot(options_.slot));
    if (capture_->durable_lsn() != 0 && !ddl_checked_) {
      // Later starts: report (or repair, when allowed) missing DDL capture.
      ASSIGN_OR_RETURN(auto sql, PgConn::Connect(options_.source, SourceSessionSettings()));
      ASSIGN_OR_RETURN(bool ddl, EnsureDdlCapture(sql.get()));
      (void)ddl;
      ddl_checked_ = true;
    }
    if (capture_->durable_lsn() == 0) {
      RETURN_IF_ERROR(FirstStart(id, slot));
      ASSIGN_OR_RETURN(slot, stream_->GetSlot(options_.slot));
    } else if (!slot.exists) {
      return Status::FailedPrecondition(
          "replication slot \"" + options_.slot + "\" is gone: the history after " +
          FormatLsn(capture_->durable_lsn()) +
          " cannot be captured\nHINT: start a new store; this one stays readable");
    } else if (slot.wal_status == "lost") {
      return Status::FailedPrecondition("replication slot \"" + options_.slot +
                                        "\" was invalidated (wal_status lost): the history has a "
                                        "gap\nHINT: drop the slot and start a new store");
    }
    if (slot.active) {
      return Status::Unavailable("replication slot \"" + options_.slot +
                                 "\" is in use by another connection");
    }
    RETURN_IF_ERROR(stream_->Start(options_.slot, capture_->durable_lsn(), options_.publication));
    // Never report below the slot's confirmed position (PG15 would move it back).
    reported_ = std::max(capture_->durable_lsn(), slot.confirmed_flush_lsn);
    spdlog::info("streaming from {} (slot confirmed at {})", FormatLsn(capture_->durable_lsn()),
                 FormatLsn(slot.confirmed_flush_lsn));
    return Stream();
  }

  Status FirstStart(const SystemIdentity& id, const SlotInfo& slot) {
    // The publication first: PG15 decodes with historic catalogs, so it must
    // exist before the slot's consistent point.
    ConnOverrides settings = SourceSessionSettings();
    ASSIGN_OR_RETURN(auto sql, PgConn::Connect(options_.source, settings));
    ASSIGN_OR_RETURN(PgResult pub,
                     sql->QueryParams("SELECT 1 FROM pg_catalog.pg_publication WHERE pubname = $1",
                                      {options_.publication}));
    if (pub.rows() == 0) {
      Status st = sql->Exec("CREATE PUBLICATION " + QuoteIdent(options_.publication) +
                            " FOR ALL TABLES");
      if (!st.ok()) {
        return Status::FailedPrecondition(
            "cannot create publication \"" + options_.publication + "\": " + st.message() +
            "\nHINT: as a superuser run: CREATE PUBLICATION " + QuoteIdent(options_.publication) +
            " FOR ALL TABLES;");
      }
      spdlog::info("created publication \"{}\" FOR ALL TABLES", options_.publication);
    }
    // DDL capture must be in place before the slot's consistent point, so
    // every schema change after the base snapshot is in the stream.
    ASSIGN_OR_RETURN(bool ddl, EnsureDdlCapture(sql.get()));
    (void)ddl;
    if (slot.exists) {
      if (slot.active) {
        return Status::FailedPrecondition("replication slot \"" + options_.slot +
                                          "\" exists and is in use, but this store is new"
                                          "\nHINT: choose another --slot");
      }
      // A slot without a complete snapshot in the store (an interrupted first
      // start): its exported snapshot is gone, so start over.
      spdlog::warn("dropping replication slot \"{}\" left by an interrupted first start",
                   options_.slot);
      RETURN_IF_ERROR(stream_->DropSlot(options_.slot));
    }
    ASSIGN_OR_RETURN(CreatedSlot created, stream_->CreateSlot(options_.slot));
    spdlog::info("created replication slot \"{}\" at {} (snapshot {})", options_.slot,
                 FormatLsn(created.consistent_point), created.snapshot_name);

    pb::StoreMeta meta = capture_->meta();
    meta.set_system_id(id.system_id);
    meta.set_dbname(id.dbname);
    meta.set_timeline(id.timeline);
    meta.set_slot(options_.slot);
    meta.set_publication(options_.publication);
    meta.set_resume_lsn(created.consistent_point);
    SnapshotRequest req;
    req.conninfo = options_.source;
    req.snapshot_name = created.snapshot_name;
    req.consistent_lsn = created.consistent_point;
    req.publication = options_.publication;
    req.snapshot_id = 1;
    pb::Snapshot snap;
    RETURN_IF_ERROR(TakeSnapshot(req, store_.get(), meta, &snap));
    RETURN_IF_ERROR(store_->FlushMemtables());
    // Reload: meta and layouts now come from the store.
    capture_ = std::make_unique<Capture>(store_.get());
    return capture_->Init();
  }

  // more_coming: the stream has more right now (the group hit a size or
  // time limit): while catching up, the group is written unlogged.
  Status Flush(bool more_coming = false) {
    RETURN_IF_ERROR(capture_->Flush(/*unlogged=*/more_coming && capture_->CatchingUp()));
    if (capture_->durable_lsn() > reported_) reported_ = capture_->durable_lsn();
    RETURN_IF_ERROR(stream_->SendStatus(std::max(reported_, capture_->received_lsn()), reported_,
                                        false));
    last_status_ = Clock::now();
    return Status::OK();
  }

  // A clean stop keeps what the server has already sent: ask for a
  // keepalive, which follows everything sent before it, and store what comes
  // until it arrives outside a transaction (at most a few seconds).
  Status DrainBeforeStop(pgoutput::Message* msg, StreamFrame* frame) {
    RETURN_IF_ERROR(stream_->SendStatus(std::max(reported_, capture_->received_lsn()), reported_,
                                        /*reply_requested=*/true));
    const auto deadline = Clock::now() + std::chrono::seconds(3);
    while (Clock::now() < deadline) {
      RETURN_IF_ERROR(stream_->Read(100, frame));
      if (frame->kind == StreamFrame::kXLogData) {
        RETURN_IF_ERROR(pgoutput::Decode(frame->payload, msg));
        RETURN_IF_ERROR(capture_->OnMessage(*msg));
        if (capture_->pending_bytes() >= options_.max_group_bytes) RETURN_IF_ERROR(Flush());
      } else if (frame->kind == StreamFrame::kKeepalive && !capture_->in_transaction()) {
        return Status::OK();
      } else if (frame->kind == StreamFrame::kEnd) {
        return Status::OK();
      }
    }
    return Status::OK();
  }

  // --endpos (a transaction is in when its commit ends at or before it;
  // commits come in LSN order): called for each message before capture takes
  // it. Sets *passed when this message shows that every commit up to
  // --endpos has been taken, and then stops the session.
  Status AtEndpos(const pgoutput::Message& msg, const StreamFrame& frame, bool* passed) {
    *passed = false;
    if (msg.type == pgoutput::MessageType::kCommit && msg.commit.end_lsn > options_.endpos) {
      // --endpos falls inside this commit record, so its transaction is
      // after it. It cannot be taken out of the group it is mixed into: read
      // again from what is written, and stop before this commit.
      spdlog::info("--endpos {} falls inside the commit record at {}: its transaction is left "
                   "for the next run",
                   FormatLsn(options_.endpos), FormatLsn(msg.commit.commit_lsn));
      endpos_commit_ = msg.commit.commit_lsn;
      reread_ = true;
      return Status::Unavailable("reading again up to the commit before --endpos");
    }
    if (capture_->in_transaction()) return Status::OK();
    const uint64_t starts_at =
        msg.type == pgoutput::MessageType::kBegin ? msg.begin.final_lsn : frame.wal_start;
    if (starts_at < std::min(options_.endpos, endpos_commit_)) return Status::OK();
    *passed = true;
    // Confirming past a commit record's start would skip its transaction
    // for good.
    return StopAtEndpos(std::min(options_.endpos, endpos_commit_));
  }

  // Makes everything taken durable, confirms up to `confirm` (when above what
  // is durable: only positions no stored transaction's commit lies beyond),
  // and ends the stream.
  Status StopAtEndpos(uint64_t confirm) {
    RETURN_IF_ERROR(Flush());
    reported_ = std::max(reported_, confirm);
    RETURN_IF_ERROR(stream_->SendStatus(std::max(reported_, capture_->received_lsn()), reported_,
                                        false));
    RETURN_IF_ERROR(stream_->Finish());
    endpos_reached_ = true;
    spdlog::info("reached --endpos {}: every transaction committed up to it is stored; slot "
                 "confirmed at {}",
                 FormatLsn(options_.endpos), FormatLsn(reported_));
    return Status::OK();
  }

  Status Stream() {
    pgoutput::Message msg;
    StreamFrame frame;
    last_status_ = Clock::now();
    auto last_progress = Clock::now();
    auto group_start = Clock::now();
    uint64_t txns_at_last_progress = capture_->stats().txns_stored;
    uint64_t server_wal_end = 0;
    auto now = Clock::now();
    int frames_since_clock = 0;
    for (;;) {
      if (stop_->load()) {
        RETURN_IF_ERROR(DrainBeforeStop(&msg, &frame));
        RETURN_IF_ERROR(Flush());
        RETURN_IF_ERROR(stream_->Finish());
        return Status::OK();
      }
      const bool have_pending = capture_->pending_txns() > 0;
      // A group is written when the stream runs dry. Streaming live, that is
      // at once: the lag stays a few ms. Catching up on a backlog (the last
      // commit is over a second old), the walsender's output only pauses
      // for a moment, so wait a little first: one synced write per group of
      // thousands of transactions instead of one per pause (3,133 writes
      // against 73 for the benchmark's backlog), and fewer fsyncs of the
      // slot by the walsender, which follows each reported flush.
      RETURN_IF_ERROR(stream_->Read(have_pending ? 0 : 200, &frame));
      if (frame.kind == StreamFrame::kNone && have_pending && capture_->CatchingUp()) {
        RETURN_IF_ERROR(stream_->Read(10, &frame));
      }
      bool group_started = false;
      switch (frame.kind) {
        case StreamFrame::kXLogData: {
          capture_->set_source_clock(PgTimeToUnixUs(frame.send_time));
          Status st = pgoutput::Decode(frame.payload, &msg);
          if (!st.ok()) return st.WithContext("at " + FormatLsn(frame.wal_start));
          if (options_.endpos != 0) {
            bool passed = false;
            RETURN_IF_ERROR(AtEndpos(msg, frame, &passed));
            if (passed) return Status::OK();
          }
          const bool was_empty = capture_->pending_txns() == 0;
          RETURN_IF_ERROR(capture_->OnMessage(msg));
          if (options_.endpos != 0 && msg.type == pgoutput::MessageType::kCommit &&
              msg.commit.end_lsn == options_.endpos) {
            // The last commit that can end at or before it: nothing to wait for.
            return StopAtEndpos(options_.endpos);
          }
          group_started = was_empty && capture_->pending_txns() > 0;
          server_wal_end = std::max(server_wal_end, frame.wal_end);
          // A large transaction spilled its batch, and with it every complete
          // transaction before it: the slot may move on now, not at the end
          // of the group (which, in a backlog of large transactions, would
          // be the end of the backlog). Unlogged groups become durable as
          // RocksDB flushes them.
          capture_->PollDurable();
          if (capture_->durable_lsn() > reported_) {
            reported_ = capture_->durable_lsn();
            RETURN_IF_ERROR(stream_->SendStatus(std::max(reported_, capture_->received_lsn()),
                                                reported_, false));
            last_status_ = Clock::now();
          }
          break;
        }
        case StreamFrame::kKeepalive: {
          capture_->set_source_clock(PgTimeToUnixUs(frame.send_time));
          server_wal_end = std::max(server_wal_end, frame.wal_end);
          // Idle advance: nothing open or pending, everything received is
          // durable, so the slot may move on to the server's WAL end.
          bool advanced = false;
          if (!capture_->in_transaction() && capture_->pending_txns() == 0 &&
              capture_->received_lsn() == capture_->durable_lsn() && frame.wal_end > reported_) {
            reported_ = frame.wal_end;
            advanced = true;
          }
          if (options_.endpos != 0 && !capture_->in_transaction() &&
              frame.wal_end >= options_.endpos) {
            // Everything before wal_end is decoded and was sent before this
            // keepalive: every commit ending at or before --endpos is here.
            return StopAtEndpos(std::min(frame.wal_end, endpos_commit_));
          }
          // The walsender pings when our flush position trails what it has
          // sent; answering at once lets the slot follow an idle server.
          if (frame.reply_requested || advanced) {
            RETURN_IF_ERROR(stream_->SendStatus(std::max(reported_, capture_->received_lsn()),
                                                reported_, false));
            last_status_ = Clock::now();
          }
          break;
        }
        case StreamFrame::kEnd:
          return Status::Unavailable("the server ended the replication stream");
        case StreamFrame::kNone:
          if (options_.endpos != 0 && !capture_->in_transaction() &&
              MsSince(last_reply_request_) >= 1000) {
            // Idle short of --endpos: a keepalive tells how far the server
            // has decoded (an idle walsender sends none by itself).
            RETURN_IF_ERROR(stream_->SendStatus(std::max(reported_, capture_->received_lsn()),
                                                reported_, /*reply_requested=*/true));
            last_reply_request_ = last_status_ = Clock::now();
          }
          break;
      }
      // The clock is read on every pause of the stream but only once per
      // kClockFrames frames while they pour in: one read per frame was 1.6%
      // of the agent's CPU in the benchmark's drain (perf). Frames queued
      // back to back take microseconds each, so `now` is never stale by
      // more than a fraction of a millisecond.
      if (frame.kind != StreamFrame::kXLogData || ++frames_since_clock >= kClockFrames) {
        now = Clock::now();
        frames_since_clock = 0;
      }
      if (group_started) group_start = now;
      auto ms_since = [&now](Clock::time_point t) {
        return std::chrono::duration_cast<std::chrono::milliseconds>(now - t).count();
      };
      if ((capture_->pending_txns() > 0 &&
           (frame.kind == StreamFrame::kNone ||
            capture_->pending_txns() >= options_.max_group_txns ||
            capture_->pending_bytes() >= options_.max_group_bytes ||
            ms_since(group_start) >= options_.max_group_delay_ms)) ||
          (frame.kind == StreamFrame::kNone && capture_->unlogged())) {
        // Dry: everything goes durable now (unlogged groups by a flush).
        RETURN_IF_ERROR(Flush(/*more_coming=*/frame.kind != StreamFrame::kNone));
      }
      if (ms_since(last_status_) >= options_.status_interval_ms) {
        RETURN_IF_ERROR(stream_->SendStatus(std::max(reported_, capture_->received_lsn()),
                                            reported_, false));
        last_status_ = Clock::now();
      }
      if (ms_since(last_progress) >= options_.progress_interval_ms) {
        const double secs = ms_since(last_progress) / 1000.0;
        const uint64_t txns = capture_->stats().txns_stored;
        const uint64_t confirmed = std::max(reported_, capture_->durable_lsn());
        const uint64_t lag = server_wal_end > confirmed ? server_wal_end - confirmed : 0;
        spdlog::info("progress: durable at {}, confirmed {}, server at {}, lag {} bytes, "
                     "{:.1f} txn/s, {} txns stored, {} resent txns skipped",
                     FormatLsn(capture_->durable_lsn()), FormatLsn(confirmed),
                     FormatLsn(server_wal_end), lag,
                     (txns - txns_at_last_progress) / secs, txns, capture_->stats().txns_skipped);
        txns_at_last_progress = txns;
        last_progress = Clock::now();
      }
    }
  }

  AgentOptions options_;
  const std::atomic<bool>* stop_;
  std::unique_ptr<Store> store_;
  std::unique_ptr<Capture> capture_;
  std::unique_ptr<ReplicationStream> stream_;
  uint64_t reported_ = 0;
  bool ddl_checked_ = false;
  bool endpos_reached_ = false;
  // --endpos falls inside the commit record that starts here (UINT64_MAX:
  // not seen): its transaction is not stored, and the session that found
  // it is read again (reread_) up to it.
  uint64_t endpos_commit_ = UINT64_MAX;
  bool reread_ = false;
  Clock::time_point last_status_;
  Clock::time_point last_reply_request_;
};

}  // namespace

Status ValidateAgentOptions(const AgentOptions& options) {
  if (options.store_path.empty()) return Status::InvalidArgument("--store is required");
  auto valid_slot = [](const std::string& s) {
    if (s.empty() || s.size() > 63) return false;
    return std::all_of(s.begin(), s.end(), [](char c) {
      return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_';
    });
  };
  if (!valid_slot(options.slot)) {
    return Status::InvalidArgument("invalid --slot \"" + options.slot +
                                   "\": expected 1-63 characters of a-z, 0-9 and _");
  }
  if (options.publication.empty()) return Status::InvalidArgument("--publication is empty");
  RETURN_IF_ERROR(ValidateCpuScheduling(options.cpu_scheduling));
  // A malformed connection string is refused before anything is created.
  if (!options.source.empty()) RETURN_IF_ERROR(ConninfoValue(options.source, "dbname").status());
  return Status::OK();
}

Result<RecordedMark> RecordMark(const std::string& source, const std::string& name) {
  if (!keys::IsValidMarkName(name)) {
    return Status::InvalidArgument("invalid mark name \"" + name +
                                   "\": expected 1-63 characters of A-Z, a-z, 0-9, _ . : -");
  }
  ASSIGN_OR_RETURN(auto conn, PgConn::Connect(source, SourceSessionSettings()));
  RETURN_IF_ERROR(conn->Exec("BEGIN"));
  ASSIGN_OR_RETURN(
      PgResult res,
      conn->QueryParams("SELECT pg_catalog.pg_logical_emit_message(true, $1, $2)::text, "
                        "to_char(now() AT TIME ZONE 'UTC', 'YYYY-MM-DD HH24:MI:SS.US') || '+00', "
                        "pg_catalog.txid_current()::text",
                        {kMarkPrefix, "{\"name\":\"" + name + "\"}"}));
  RETURN_IF_ERROR(conn->Exec("COMMIT"));
  RecordedMark mark;
  mark.name = name;
  RETURN_IF_ERROR(ParseLsn(res.Get(0, 0), &mark.lsn));
  mark.commit_time = res.GetString(0, 1);
  mark.xid = res.GetString(0, 2);
  return mark;
}

Status RunAgent(const AgentOptions& options, const std::atomic<bool>* stop) {
  RETURN_IF_ERROR(ValidateAgentOptions(options));
  ApplyCpuScheduling(options.cpu_scheduling);  // before any thread starts: they inherit it
  // Memtables take their memory in arena blocks of a few MB and free them
  // at each flush. By default glibc hands freed memory at the top of its
  // heap back to the kernel beyond a few MB, so each new memtable faulted
  // its pages in again, zeroed: 56,000 page faults in a drain of the
  // benchmark's backlog, 19,000 with these (about the peak RSS, faulted
  // in once). Peak RSS rose ~3 MB (benchmark: 92 -> 95 MB); the memtable
  // budget bounds what the heap keeps.
  mallopt(M_MMAP_THRESHOLD, 32 << 20);
  mallopt(M_TRIM_THRESHOLD, 256 << 20);
  Agent agent(options, stop);
  return agent.Run();
}

}  // namespace pgtrail
