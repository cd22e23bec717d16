// changelog: parse options and run `changelog grep`.
#include <boost/program_options.hpp>
#include <cstdio>
#include <exception>
#include <cstring>
#include <iostream>

#include "storage/cli.h"
#include "tools/changelog.h"

namespace po = boost::program_options;

int main(int argc, char** argv) {
  const char* kProgram = "changelog";
  pgtrail::ChangelogOptions options;
  std::string command;
  po::options_description desc(
      "Usage: changelog --store DIR grep [PATTERN] [options]\n\n"
      "Prints the committed changes in the store, oldest first: commit time, xid, LSN,\n"
      "operation, table, key, and for updates each changed column as old -> new.\n"
      "PATTERN is a POSIX extended regular expression (as grep -E) matched against the change's values.\n\n"
      "Options");
  desc.add_options()
      ("store", po::value(&options.store_path), "store directory written by pgtrail-agent")
      ("table", po::value(&options.table), "only this table (schema.table or table)")
      ("since", po::value(&options.since), "only changes committed at or after TIME")
      ("until", po::value(&options.until), "only changes committed at or before TIME")
      ("key", po::value(&options.key),
       "only the history of the row with this key (with --table; values comma-separated in "
       "key-column order): read through the row index; for times the table had no key or "
       "another one, by reading the table's changes from then")
      ("op", po::value(&options.op),
       "only insert, update, delete, truncate, ddl (schema changes), mark or message")
      ("format", po::value(&options.format)->default_value("text"),
       "text, or json (one object per line)")
      ("version", "print the version and exit")
      ("help,h", "print this help and exit");
  po::options_description hidden;
  hidden.add_options()("command", po::value(&command))("pattern", po::value(&options.pattern));
  po::options_description all;
  all.add(desc).add(hidden);
  po::positional_options_description positional;
  positional.add("command", 1).add("pattern", 1);
  po::variables_map vm;
  const int parsed =
      pgtrail::ParseCommandLine(kProgram, argc, argv, desc, all, &positional, "", &vm);
  if (parsed >= 0) return parsed;
  if (command != "grep") {
    std::fprintf(stderr, "%s: %s\nHINT: the command is: changelog --store DIR grep [PATTERN]\n",
                 kProgram,
                 command.empty() ? "a command is required" : ("unknown command \"" + command + "\"").c_str());
    return pgtrail::kUsageExitCode;
  }
  if (!vm.count("store")) {
    std::fprintf(stderr, "%s: --store is required\n", kProgram);
    return pgtrail::kUsageExitCode;
  }
  std::ios::sync_with_stdio(false);
  pgtrail::Status st;
  try {
    st = pgtrail::RunChangelogGrep(options, std::cout);
  } catch (const std::exception& e) {  // the edge: no exception escapes as an abort
    st = pgtrail::Status::Internal(std::string("unexpected failure: ") + e.what());
  }
  std::cout.flush();
  if (!st.ok()) return pgtrail::ReportError(kProgram, st);
  return 0;
}
