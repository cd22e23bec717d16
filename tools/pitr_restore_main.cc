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
  po::options_description desc(
      "Usage: pitr-restore --store DIR --to TIME --target CONNINFO [options]\n\n"
      "Rebuilds the source database as it was at TIME (schema, rows, sequences) in the\n"
      "target database, which is created if missing and must otherwise be empty.\n"
      "Transactions are applied in commit order up to, not including, the first one\n"
      "that committed later than TIME.\n\n"
      "Options");
  desc.add_options()
      ("store", po::value(&options.store_path), "store directory written by pgtrail-agent")
      ("to", po::value(&options.to_time),
       "restore point: a PostgreSQL timestamp such as '2026-11-21 14:03:07', "
       "'2026-11-21T14:03:07.5+02:00' or '2026-11-21 13:03:07 UTC'; without an offset it is "
       "local time")
      ("target", po::value(&options.target),
       "target database: a libpq connection string or URI (PG* variables apply)")
      ("tables", po::value(&tables),
       "comma-separated tables to restore (schema.table or table); default: all")
      ("dry-run", "print the plan (snapshot, transactions, tables, row counts); write nothing")
      ("version", "print the version and exit")
      ("help,h", "print this help and exit");
  po::variables_map vm;
  try {
    po::store(po::parse_command_line(argc, argv, desc), vm);
    po::notify(vm);
  } catch (const po::error& e) {
    std::fprintf(stderr, "%s: %s\nHINT: see pitr-restore --help\n", kProgram, e.what());
    return pgtrail::kUsageExitCode;
  }
  if (vm.count("help")) {
    std::cout << desc << "\n";
    return 0;
  }
  if (vm.count("version")) {
    pgtrail::PrintVersion(kProgram);
    return 0;
  }
  options.dry_run = vm.count("dry-run") > 0;
  for (const char* required : {"store", "to"}) {
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
