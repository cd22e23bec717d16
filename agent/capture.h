// Capture: turns the decoded pgoutput stream into stored transactions.
//
// It assembles Begin..Commit into one transaction, keeps the relation layout
// current at each LSN, resolves unchanged TOAST values from the row's last
// image, maintains the row and truncate indexes, and groups committed
// transactions into one synced WriteBatch together with the new resume LSN
// (Flush). No network I/O: the agent feeds it messages and decides when to
// flush; tests can drive it with decoded fixtures.
#ifndef PGTRAIL_AGENT_CAPTURE_H_
#define PGTRAIL_AGENT_CAPTURE_H_

#include <rocksdb/write_batch.h>

#include <cstdint>
#include <memory>
#include <deque>
#include <optional>
#include <set>
#include <string>
#include <unordered_map>

#include "agent/pgoutput.h"
#include "proto/pgtrail.pb.h"
#include "storage/store.h"

namespace pgtrail {

// Appends to `chunk` (AppendChunkEntry) the pb::Change of an INSERT of
// `tuple` under the relation version (relid, relation_lsn, relation_seq),
// encoded straight from the wire values: the bytes SerializeToString gives
// for the Change the general path builds (op, relid, relation_lsn,
// relation_seq, new_tuple with one kind and one value per column). REQUIRES:
// no column of `tuple` is unchanged TOAST ('u').
void AppendInsertToChunk(std::string* chunk, uint32_t relid, uint64_t relation_lsn,
                         uint32_t relation_seq, const pgoutput::TupleData& tuple);

struct CaptureStats {
  uint64_t txns_stored = 0;
  uint64_t txns_skipped = 0;  // already stored: resent after a reconnect
  uint64_t changes_stored = 0;
  uint64_t flushes = 0;
  uint64_t unresolved_toast = 0;
};

class Capture {
 public:
  // REQUIRES: store outlives the Capture and is open for writing.
  explicit Capture(Store* store);
  Capture(const Capture&) = delete;
  Capture& operator=(const Capture&) = delete;

  // Loads the resume LSN and counters from the store's meta.
  Status Init();

  // Feeds one decoded message. kCorruption on a protocol violation (Begin
  // inside a transaction, a change for an unknown relation, ...).
  Status OnMessage(const pgoutput::Message& msg);

  // Forgets everything received but not flushed except complete
  // transactions, and the relation cache: called after the stream broke.
  // The server resends from the last flushed LSN.
  void ResetStream();

  // Writes the pending transactions and the new resume LSN in one synced
  // batch. After it returns OK, durable_lsn() may be reported to the server.
  //
  // unlogged (while catching up on a backlog): the batch goes to the
  // memtables without RocksDB's write-ahead log, which cost a quarter of
  // the capture thread's time (a second copy of every byte, software
  // CRC32C, fsync). The source's WAL, held by the slot until we confirm,
  // is the log: durable_lsn() advances when a flush of the memtables
  // (atomic across families) has written the batch to table files; see
  // PollDurable. A logged Flush after unlogged ones writes its batch
  // unlogged too and flushes the memtables, so everything is durable when it
  // returns and no logged write ever follows an unlogged one unflushed.
  Status Flush(bool unlogged = false);
  // Advances durable_lsn() over unlogged batches the store has flushed.
  void PollDurable();

  bool in_transaction() const { return txn_.has_value(); }
  // Unlogged batches may not be in table files yet (see Flush).
  bool unlogged() const { return unlogged_mode_; }
  // The source's clock (Unix µs) as of the last frame it sent.
  void set_source_clock(int64_t unix_us) { source_now_us_ = unix_us; }
  // A backlog is being drained: the last commit received is over a second
  // older than the source's clock. Both times come from the source, so a
  // skewed clock on the agent's host cannot fake it.
  bool CatchingUp() const {
    return source_now_us_ - meta_.last_commit_time_us() > kCatchUpAgeUs;
  }
  static constexpr int64_t kCatchUpAgeUs = 1000000;
  // Complete transactions waiting for Flush().
  size_t pending_txns() const { return pending_txns_; }
  size_t pending_bytes() const { return batch_.GetDataSize() + rowidx_.size(); }
  // End LSN of the last durable transaction (the resume LSN).
  uint64_t durable_lsn() const { return durable_lsn_; }
  // End LSN of the last complete transaction received (durable or pending).
  uint64_t received_lsn() const { return received_lsn_; }
  const pb::StoreMeta& meta() const { return meta_; }
  const CaptureStats& stats() const { return stats_; }

  // A transaction grows past this many bytes of pending writes: everything
  // complete is flushed and the transaction's changes so far are written
  // ahead (invisible to readers until its header is written), so memory stays
  // bounded whatever the transaction's size.
  static constexpr size_t kSpillBytes = 8u << 20;

 private:
  struct OpenTxn {
    uint32_t xid = 0;
    uint64_t commit_lsn = 0;
    int64_t commit_time_us = 0;
    std::string origin;
    uint64_t origin_lsn = 0;
    bool skip = false;
    uint32_t next_seq = 0;
    // The tables it changed so far (TxnHeader.tables), and which one last.
    std::vector<pb::TxnTable> tables;
    size_t last_table = 0;
  };

  Status OnBegin(const pgoutput::Begin& begin);
  Status OnCommit(const pgoutput::Commit& commit);
  Status OnRelation(const pgoutput::Relation& rel);
  Status OnInsert(const pgoutput::Insert& ins);
  Status OnUpdate(const pgoutput::Update& upd);
  Status OnDelete(const pgoutput::Delete& del);
  Status OnTruncate(const pgoutput::Truncate& trunc);
  Status OnLogicalMessage(const pgoutput::LogicalMessage& msg);

  Result<const pb::Relation*> RelationFor(uint32_t relid, const char* what);
  // Converts a wire tuple and checks its width; 'u' columns stay 'u'.
  Status ConvertNewTuple(const pb::Relation& rel, const pgoutput::TupleData& wire,
                         pb::Tuple* out);
  // Resolves the 'u' columns of *out from old_tuple or the row's previous image.
  Status ResolveUnchanged(const pb::Relation& rel, const pb::Tuple* old_tuple, char old_kind,
                          const std::string* rowkey, pb::Tuple* out);
  Result<std::optional<pb::Tuple>> PreviousImage(uint32_t relid, const std::string& rowkey,
                                                 uint32_t seq);
  void PutRowIndex(const pb::Relation& rel, const std::string& rowkey, uint32_t seq,
                   keys::RowOp op);
  Status PutChange(uint32_t seq, const pb::Change& change);
  // An INSERT without unchanged TOAST, stored without building a pb::Change:
  // the wire values go straight into the row key and the chunk (the general
  // path copied each value twice and serialized through protobuf).
  Status PutWireInsert(const pb::Relation& rel, const pgoutput::TupleData& tuple);
  // Around each change appended to the open chunk.
  void StartChunkEntry(uint32_t seq) {
    if (chunk_count_ == 0) chunk_first_seq_ = seq;
  }
  Status EndChunkEntry();
  // Writes the open chunk of changes to batch_ (see kChunkChanges).
  void CloseChunk();
  // Moves the pending row-index entries into batch_, sorted by key.
  void SortRowIndexIntoBatch();
  // Writes batch_ (row index included) to the store, unlogged in unlogged
  // mode; *last_seqno (if given) is the batch's last sequence number.
  Status WriteBatch(bool sync, uint64_t* last_seqno = nullptr);
  // The open chunk's change at (lsn, seq), for PreviousImage.
  Status PendingChange(uint64_t lsn, uint32_t seq, pb::Change* out, bool* found);
  Status MaybeSpill();
  void WarnOnce(uint32_t relid, const std::string& message);

  // A cleared Change reused for every row change. Change::Clear() deletes
  // its tuples, so they are taken out first and kept for the next change
  // (NewTuple, OldTuple): a cleared Tuple keeps its value strings, and steady
  // state allocates nothing per row (it allocated every value of every row:
  // 12% of the capture thread's instructions).
  pb::Change& Scratch() {
    if (scratch_.has_new_tuple()) spare_new_.reset(scratch_.release_new_tuple());
    if (scratch_.has_old_tuple()) spare_old_.reset(scratch_.release_old_tuple());
    scratch_.Clear();
    return scratch_;
  }
  static pb::Tuple* Reattach(std::unique_ptr<pb::Tuple>* spare, pb::Tuple* (pb::Change::*get)(),
                             void (pb::Change::*set)(pb::Tuple*), pb::Change* change) {
    if (*spare != nullptr) {
      (*spare)->Clear();
      (change->*set)(spare->release());
    }
    return (change->*get)();
  }
  // The scratch change's new (old) tuple, made from a kept one if there is.
  pb::Tuple* NewTuple(pb::Change* change) {
    return Reattach(&spare_new_, &pb::Change::mutable_new_tuple,
                    &pb::Change::set_allocated_new_tuple, change);
  }
  pb::Tuple* OldTuple(pb::Change* change) {
    return Reattach(&spare_old_, &pb::Change::mutable_old_tuple,
                    &pb::Change::set_allocated_old_tuple, change);
  }

  Store* store_;
  pb::Change scratch_;
  std::unique_ptr<pb::Tuple> spare_new_, spare_old_;  // see Scratch
  pb::StoreMeta meta_;          // as it will be after the next Flush
  uint64_t durable_lsn_ = 0;    // meta as last written
  uint64_t received_lsn_ = 0;
  rocksdb::WriteBatch batch_;
  size_t pending_txns_ = 0;
  std::optional<OpenTxn> txn_;
  CaptureStats stats_;

  // Layouts as last received (R messages), and as last stored.
  std::unordered_map<uint32_t, pb::Relation> relcache_;
  std::unordered_map<uint32_t, pb::Relation> stored_layout_;
  // batch_ was written to the store without a sync since the last Flush
  // (to look up a previous image): the next Flush must sync.
  bool unsynced_ = false;
  // Unlogged batches not yet known to be flushed, oldest first: the
  // sequence number of each batch's meta entry, its resume LSN and meta.
  struct NotYetDurable {
    uint64_t meta_seqno = 0;
    uint64_t resume_lsn = 0;
    pb::StoreMeta meta;
  };
  std::deque<NotYetDurable> not_yet_durable_;
  bool unlogged_mode_ = false;  // unlogged writes may be unflushed
  int64_t source_now_us_ = 0;
  pb::StoreMeta durable_meta_;  // meta as of durable_lsn_
  Status LeaveUnlogged();
  // The open transaction's changes not yet in batch_: whole chunks go in,
  // so their keys do not depend on when the batch is written.
  std::string chunk_;
  uint32_t chunk_first_seq_ = 0;
  size_t chunk_count_ = 0;
  // Row-index entries not yet in batch_: each is key + op byte in rowidx_,
  // at (offset, size). They go into the batch sorted, so that consecutive
  // memtable inserts land next to each other (the store's finger skip list,
  // storage/memtable.h, then makes a few comparisons instead of a search
  // from the top).
  std::string rowidx_;
  std::vector<std::pair<uint32_t, uint32_t>> rowidx_entries_;
  std::vector<size_t> rowidx_runs_;  // SortRowIndexIntoBatch's scratch
  // Reused buffers: no allocation per change in the steady state.
  std::string rowidx_key_;
  std::string old_rowkey_;
  std::string new_rowkey_;
  std::set<std::pair<uint32_t, std::string>> warned_;
};

// Prefix of the logical messages that record named restore points.
inline constexpr char kMarkPrefix[] = "pgtrail.mark";
// The name in a mark message's content ("" if malformed).
std::string MarkNameFromContent(std::string_view content);

}  // namespace pgtrail

#endif  // PGTRAIL_AGENT_CAPTURE_H_
