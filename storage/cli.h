// The edge of every program: logging setup, error reporting, exit codes.
#ifndef PGTRAIL_STORAGE_CLI_H_
#define PGTRAIL_STORAGE_CLI_H_

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

}  // namespace pgtrail

#endif  // PGTRAIL_STORAGE_CLI_H_
