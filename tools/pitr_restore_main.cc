// pitr-restore: parse options and run the restore command.
#include <boost/program_options.hpp>
#include <cstdio>
#include <exception>
#include <iostream>

#include "storage/cli.h"
#include "tools/restore.h"

namespace po = boost::program_options;

int main(int argc, char** argv) {
  const char* kProgram = "pitr-restore";
  pgtrail::RestoreOptions options;
  std::string tables;
  std::string format = "text";
  po::options_description desc(
      "Usage: pitr-restore --store DIR --to TIME --target CONNINFO [options]\n"
      "       pitr-restore --store DIR --list [--format json]\n\n"
      "Rebuilds the source database as it was at a restore point (schema, rows,\n"
      "sequences) in the target database, which is created if missing and must\n"
      "otherwise be empty. For a time, transactions are applied in commit order up to,\n"
      "not including, the first one that committed later than TIME.\n\n"
      "Options");
  desc.add_options()
      ("store", po::value(&options.store_path), "store directory written by pgtrail-agent")
      ("to", po::value(&options.to_time),
       "restore point: a PostgreSQL timestamp such as '2026-11-21 14:03:07', "
       "'2026-11-21T14:03:07.5+02:00' or '2026-11-21 13:03:07 UTC'; without an offset it is "
       "local time")
      ("to-lsn", po::value(&options.to_lsn),
       "restore point: every transaction whose commit LSN is at or before LSN (e.g. 0/192CB20)")
      ("to-xid", po::value(&options.to_xid),
       "restore point: up to and including the transaction with this xid")
      ("to-mark", po::value(&options.to_mark),
       "restore point: the named mark recorded by pgtrail-agent mark NAME")
      ("exclusive", "stop just before the restore point instead of just after it")
      ("target", po::value(&options.target),
       "target database: a libpq connection string or URI (PG* variables apply)")
      ("tables", po::value(&tables),
       "comma-separated tables to restore (schema.table or table); default: all")
      ("dry-run", "print the plan (snapshot, transactions, tables, row counts); write nothing")
      ("jobs,j", po::value(&options.jobs)->default_value(1),
       "load tables over N connections at once, as pg_restore -j; the target database must "
       "not exist: it is built under a temporary name and renamed when complete")
      ("cpu-scheduling", po::value(&options.cpu_scheduling)->default_value("batch"),
       pgtrail::kCpuSchedulingHelp)
      ("clean",
       "drop everything in the target first, so it may be non-empty or even the source "
       "database itself; asks to type the database name to confirm")
      ("yes", "with --clean: do not ask for confirmation (for scripts)")
      ("list", "list the base snapshots, marks and the covered range of time and LSN")
      ("format", po::value(&format)->default_value("text"), "with --list: text or json")
      ("version", "print the version and exit")
      ("help,h", "print this help and exit");
  po::variables_map vm;
  const int parsed = pgtrail::ParseCommandLine(kProgram, argc, argv, desc, desc, nullptr, "", &vm);
  if (parsed >= 0) return parsed;
  options.dry_run = vm.count("dry-run") > 0;
  options.exclusive = vm.count("exclusive") > 0;
  options.clean = vm.count("clean") > 0;
  options.assume_yes = vm.count("yes") > 0;
  if (format != "text" && format != "json") {
    std::fprintf(stderr, "%s: invalid --format \"%s\": expected text or json\n", kProgram,
                 format.c_str());
    return pgtrail::kUsageExitCode;
  }
  if (vm.count("list")) {
    if (!vm.count("store")) {
      std::fprintf(stderr, "%s: --store is required\n", kProgram);
      return pgtrail::kUsageExitCode;
    }
    return pgtrail::RunListCommand(options.store_path, format == "json", std::cout);
  }
  if (!vm.count("to") && !vm.count("to-lsn") && !vm.count("to-xid") && !vm.count("to-mark")) {
    std::fprintf(stderr,
                 "%s: --to is required (or --to-lsn, --to-xid, --to-mark)\n"
                 "HINT: see pitr-restore --help\n",
                 kProgram);
    return pgtrail::kUsageExitCode;
  }
  for (const char* required : {"store"}) {
    if (!vm.count(required)) {
      std::fprintf(stderr, "%s: --%s is required\nHINT: see pitr-restore --help\n", kProgram,
                   required);
      return pgtrail::kUsageExitCode;
    }
  }
  if (!options.dry_run && !vm.count("target")) {
    std::fprintf(stderr, "%s: --target is required (or --dry-run)\n", kProgram);
    return pgtrail::kUsageExitCode;
  }
  size_t start = 0;
  while (start <= tables.size() && !tables.empty()) {
    size_t comma = tables.find(',', start);
    std::string name = tables.substr(start, comma == std::string::npos ? std::string::npos
                                                                       : comma - start);
    if (!name.empty()) options.tables.push_back(name);
    if (comma == std::string::npos) break;
    start = comma + 1;
  }
  try {
    return pgtrail::RunRestoreCommand(options, std::cout);
  } catch (const std::exception& e) {  // the edge: no exception escapes as an abort
    return pgtrail::ReportError(kProgram, pgtrail::Status::Internal(
                                              std::string("unexpected failure: ") + e.what()));
  }
}
