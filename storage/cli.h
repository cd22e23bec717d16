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

}  // namespace pgtrail

#endif  // PGTRAIL_STORAGE_CLI_H_
