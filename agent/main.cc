// pgtrail-agent: parse options, run the agent until SIGTERM/SIGINT.
#include <signal.h>
#include <sys/stat.h>

#include <atomic>
#include <boost/program_options.hpp>
#include <cstdio>
#include <exception>
#include <fstream>
#include <iostream>

#include "agent/agent.h"
#include "storage/cli.h"
#include "storage/coding.h"

namespace po = boost::program_options;

namespace {

std::atomic<bool> g_stop{false};

void OnSignal(int) { g_stop.store(true); }

}  // namespace

// pgtrail-agent mark NAME --source CONNINFO
int RunMarkCommand(int argc, char** argv) {
  const char* kProgram = "pgtrail-agent mark";
  std::string source, name;
  po::options_description desc(
      "Usage: pgtrail-agent mark NAME [--source CONNINFO]\n\n"
      "Records a named restore point in the source database's change stream, in order\n"
      "with the data, for example just before a migration. Restore to it with\n"
      "pitr-restore --to-mark NAME.\n\n"
      "Options");
  desc.add_options()
      ("source", po::value(&source), "source database (libpq connection string or URI)")
      ("version", "print the version and exit")
      ("help,h", "print this help and exit");
  po::options_description hidden;
  hidden.add_options()("name", po::value(&name));
  po::options_description all;
  all.add(desc).add(hidden);
  po::positional_options_description positional;
  positional.add("name", 1);
  po::variables_map vm;
  const int parsed =
      pgtrail::ParseCommandLine("pgtrail-agent mark", argc, argv, desc, all, &positional, "", &vm);
  if (parsed >= 0) return parsed;
  if (name.empty()) {
    std::fprintf(stderr, "%s: a mark NAME is required\n", kProgram);
    return pgtrail::kUsageExitCode;
  }
  auto mark = pgtrail::RecordMark(source, name);
  if (!mark.ok()) return pgtrail::ReportError(kProgram, mark.status());
  std::printf("mark \"%s\" recorded at LSN %s, %s (xid %s)\n", mark->name.c_str(),
              pgtrail::FormatLsn(mark->lsn).c_str(), mark->commit_time.c_str(),
              mark->xid.c_str());
  return 0;
}

int main(int argc, char** argv) {
  const char* kProgram = "pgtrail-agent";
  if (argc > 1 && std::string(argv[1]) == "mark") return RunMarkCommand(argc - 1, argv + 1);
  pgtrail::AgentOptions options;
  std::string config_file, endpos;
  po::options_description desc(
      "Usage: pgtrail-agent --source CONNINFO --store DIR [options]\n"
      "       pgtrail-agent mark NAME --source CONNINFO   (see pgtrail-agent mark --help)\n\n"
      "Keeps the complete history of one PostgreSQL database: creates the publication\n"
      "and logical replication slot on first start, takes a base snapshot, then streams\n"
      "every committed change into the store until stopped (SIGTERM or SIGINT), or\n"
      "until --endpos.\n\n"
      "Options");
  desc.add_options()
      ("source", po::value(&options.source),
       "source database: a libpq connection string (\"host=db dbname=app user=cdc\") or URI "
       "(postgresql://cdc@db/app). PG* environment variables and ~/.pgpass apply as in psql; "
       "sslmode and every other libpq setting pass through")
      ("store", po::value(&options.store_path), "store directory (created, mode 0700)")
      ("slot", po::value(&options.slot)->default_value("pgtrail"),
       "logical replication slot name (a-z, 0-9, _)")
      ("publication", po::value(&options.publication)->default_value("pgtrail"),
       "publication to stream; created FOR ALL TABLES if missing")
      ("config", po::value(&config_file),
       "read options from FILE (lines of name = value; command-line options win)")
      ("status-interval", po::value(&options.status_interval_ms)->default_value(10000),
       "milliseconds between unprompted status updates to the server")
      ("progress-interval", po::value(&options.progress_interval_ms)->default_value(30000),
       "milliseconds between progress log lines")
      ("endpos", po::value(&endpos),
       "stop once every transaction committed up to this LSN (as pg_current_wal_lsn() "
       "returned it after the commit) is stored and confirmed, then exit 0, as "
       "pg_recvlogical --endpos does")
      ("cpu-scheduling", po::value(&options.cpu_scheduling)->default_value("batch"),
       pgtrail::kCpuSchedulingHelp)
      ("verbose,v", "log debug messages")
      ("version", "print the version and exit")
      ("help,h", "print this help and exit");

  po::variables_map vm;
  const int parsed = pgtrail::ParseCommandLine(kProgram, argc, argv, desc, desc, nullptr, "config", &vm);
  if (parsed >= 0) return parsed;
  if (!vm.count("store")) {
    std::fprintf(stderr, "%s: --store is required\nHINT: see pgtrail-agent --help\n", kProgram);
    return pgtrail::kUsageExitCode;
  }
  if (!endpos.empty()) {
    if (pgtrail::Status st = pgtrail::ParseLsn(endpos, &options.endpos); !st.ok()) {
      return pgtrail::ReportError(kProgram, st.WithContext("--endpos"));
    }
    if (options.endpos == 0) {
      return pgtrail::ReportError(
          kProgram, pgtrail::Status::InvalidArgument("invalid --endpos 0/0: expected an LSN above 0/0"));
    }
  }
  if (pgtrail::Status st = pgtrail::ValidateAgentOptions(options); !st.ok()) {
    return pgtrail::ReportError(kProgram, st);
  }

  ::umask(077);  // store files are private to the owner
  pgtrail::InitLogging(vm.count("verbose") > 0);
  struct sigaction sa {};
  sa.sa_handler = OnSignal;
  sigemptyset(&sa.sa_mask);
  sigaction(SIGTERM, &sa, nullptr);
  sigaction(SIGINT, &sa, nullptr);
  signal(SIGPIPE, SIG_IGN);

  pgtrail::Status st;
  try {
    st = pgtrail::RunAgent(options, &g_stop);
  } catch (const std::exception& e) {  // the edge: no exception escapes as an abort
    st = pgtrail::Status::Internal(std::string("unexpected failure: ") + e.what());
  }
  if (!st.ok()) return pgtrail::ReportError(kProgram, st);
  return 0;
}
