// pgtrail-agent: first start (publication, slot, base snapshot), then
// streaming forever with group commit, feedback, reconnects and clean stop.
#ifndef PGTRAIL_AGENT_AGENT_H_
#define PGTRAIL_AGENT_AGENT_H_

#include <atomic>
#include <string>

#include "storage/status.h"

namespace pgtrail {

struct AgentOptions {
  std::string source;  // libpq conninfo or URI; "" = PG* environment
  std::string store_path;
  std::string slot = "pgtrail";
  std::string publication = "pgtrail";
  int status_interval_ms = 10000;    // unprompted standby status updates
  int progress_interval_ms = 30000;  // progress log lines
  int max_backoff_ms = 30000;
  // Group commit: flush once the stream is drained, or at these bounds.
  size_t max_group_txns = 4096;
  size_t max_group_bytes = 16u << 20;
  int max_group_delay_ms = 200;
  std::string cpu_scheduling = "batch";  // see ApplyCpuScheduling (storage/cli.h)
  // Nonzero: stop, as pg_recvlogical --endpos does, once every transaction
  // whose commit record starts at or before this LSN is durable in the store
  // and confirmed to the slot; RunAgent then returns OK. A transaction that
  // commits after it is not stored (the slot sends it again next time).
  uint64_t endpos = 0;
};

// Checks what can be checked before connecting (slot name syntax, ...).
Status ValidateAgentOptions(const AgentOptions& options);

// Runs until *stop becomes true or options.endpos is reached (then returns OK
// after a clean stop) or an error that retrying cannot fix (a different
// cluster, a lost slot, a foreign store). Connection losses are retried with
// backoff.
Status RunAgent(const AgentOptions& options, const std::atomic<bool>* stop);

// Records a named restore point in the source's stream: a transactional
// logical message (prefix "pgtrail.mark") that the agent stores in order with
// the data. pitr-restore --to-mark NAME restores exactly to it.
struct RecordedMark {
  std::string name;
  uint64_t lsn = 0;          // the message's LSN
  std::string commit_time;   // server time, UTC
  std::string xid;
};
Result<RecordedMark> RecordMark(const std::string& source, const std::string& name);

}  // namespace pgtrail

#endif  // PGTRAIL_AGENT_AGENT_H_
