// The edge of every program: logging setup, error reporting, exit codes.
#ifndef PGTRAIL_STORAGE_CLI_H_
#define PGTRAIL_STORAGE_CLI_H_

#include <boost/program_options.hpp>
#include <string>

#include "storage/status.h"

namespace pgtrail {

// Exit status for wrong flags / usage errors (Status codes map to 2..8).
inline constexpr int kUsageExitCode = 1;

// Sets up spdlog on stderr with "2026-11-21 05:01:26.123 [info] message".
void InitLogging(bool verbose);

// Prints "program: message" (and "HINT: ..." when the status carries a hint
// after a newline) to stderr and returns the status's exit code.
int ReportError(const char* program, const Status& status);

// Prints "program (pgtrail) 0.1.0".
void PrintVersion(const char* program);

// Parses the command line of `program`: `visible` is what --help prints
// (and must define --help and --version), `all` is visible plus hidden
// options, `positional` may be null, and a non-empty `config_option` names an
// option whose value is a file of further "name = value" options.
// Returns -1 to go on, or the exit status to return now: 0 after --help or
// --version, kUsageExitCode after a usage error (already reported).
int ParseCommandLine(const char* program, int argc, char** argv,
                     const boost::program_options::options_description& visible,
                     const boost::program_options::options_description& all,
                     const boost::program_options::positional_options_description* positional,
                     const char* config_option, boost::program_options::variables_map* vm);

// --cpu-scheduling, of pgtrail-agent and pitr-restore: "batch" (the default)
// or "inherit". Under "batch", a program started under Linux's normal policy
// (SCHED_OTHER) moves to SCHED_BATCH, keeping its nice value; any other policy
// (chrt, systemd's CPUSchedulingPolicy=) is left alone.
//
// Why: both programs feed a PostgreSQL backend over a socket on the same
// host, often on few CPUs. Each message the backend sends or takes wakes one
// of their threads, and a waking SCHED_OTHER thread may preempt the running
// backend. SCHED_BATCH threads get the same share of CPU but never preempt on
// waking. In a drain of the benchmark's backlog the walsender was preempted
// ~115,000 times (1.2-1.6 s waiting for a CPU) and ~800 times under batch:
// drain 11.8 s -> 10.6 s; pitr-restore --jobs 2 2.46 s -> 2.26 s (lab,
// medians of five).
inline constexpr const char* kCpuSchedulingHelp =
    "batch: run under Linux's SCHED_BATCH policy, so no thread of this program preempts "
    "PostgreSQL's processes on waking (the default); inherit: keep the policy it was "
    "started with";
Status ValidateCpuScheduling(const std::string& mode);
// Applies `mode` to the calling thread; threads it starts later inherit it,
// so call it before starting any. A refusal by the kernel is logged, not
// fatal.
void ApplyCpuScheduling(const std::string& mode);

}  // namespace pgtrail

#endif  // PGTRAIL_STORAGE_CLI_H_
