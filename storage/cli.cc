#include "storage/cli.h"

#include <sched.h>
#include <spdlog/sinks/stdout_sinks.h>
#include <spdlog/spdlog.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <iostream>

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

int ParseCommandLine(const char* program, int argc, char** argv,
                     const boost::program_options::options_description& visible,
                     const boost::program_options::options_description& all,
                     const boost::program_options::positional_options_description* positional,
                     const char* config_option, boost::program_options::variables_map* vm) {
  namespace po = boost::program_options;
  try {
    po::command_line_parser parser(argc, argv);
    parser.options(all);
    if (positional != nullptr) parser.positional(*positional);
    po::store(parser.run(), *vm);
    if (config_option[0] != '\0' && vm->count(config_option)) {
      const std::string path = (*vm)[config_option].as<std::string>();
      std::ifstream in(path);
      if (!in) {
        std::fprintf(stderr, "%s: cannot read config file %s\n", program, path.c_str());
        return kUsageExitCode;
      }
      po::store(po::parse_config_file(in, all), *vm);
    }
    po::notify(*vm);
  } catch (const po::error& e) {
    std::fprintf(stderr, "%s: %s\nHINT: see %s --help\n", program, e.what(), program);
    return kUsageExitCode;
  }
  if (vm->count("help")) {
    std::cout << visible << "\n";
    return 0;
  }
  if (vm->count("version")) {
    PrintVersion(program);
    return 0;
  }
  return -1;
}

Status ValidateCpuScheduling(const std::string& mode) {
  if (mode == "batch" || mode == "inherit") return Status::OK();
  return Status::InvalidArgument("invalid --cpu-scheduling \"" + mode +
                                 "\": expected batch or inherit");
}

void ApplyCpuScheduling(const std::string& mode) {
  if (mode != "batch" || sched_getscheduler(0) != SCHED_OTHER) return;
  sched_param param{};
  if (sched_setscheduler(0, SCHED_BATCH, &param) != 0) {
    spdlog::warn("could not switch to SCHED_BATCH ({}); keeping the normal policy",
                 std::strerror(errno));
  }
}

}  // namespace pgtrail
