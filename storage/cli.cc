#include "storage/cli.h"

#include <spdlog/sinks/stdout_sinks.h>
#include <spdlog/spdlog.h>

#include <cstdio>

#include "storage/version.h"

namespace pgtrail {

void InitLogging(bool verbose) {
  auto logger = spdlog::stderr_logger_mt("pgtrail");
  logger->set_pattern("%Y-%m-%d %H:%M:%S.%e %z [%l] %v");
  logger->set_level(verbose ? spdlog::level::debug : spdlog::level::info);
  logger->flush_on(spdlog::level::info);
  spdlog::set_default_logger(logger);
}

int ReportError(const char* program, const Status& status) {
  std::fprintf(stderr, "%s: %s\n", program, status.message().c_str());
  return status.ExitCode();
}

void PrintVersion(const char* program) {
  std::printf("%s (pgtrail) %s\n", program, PGTRAIL_VERSION);
}

}  // namespace pgtrail
