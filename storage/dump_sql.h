// pg_dump's plain SQL output, as pgtrail stores and replays it.
#ifndef PGTRAIL_STORAGE_DUMP_SQL_H_
#define PGTRAIL_STORAGE_DUMP_SQL_H_

#include <string>
#include <vector>

namespace pgtrail {

// One TOC entry of a plain dump: the block that starts with
// "-- Name: NAME; Type: TYPE; Schema: SCHEMA; Owner: OWNER".
struct DumpEntry {
  std::string name;
  std::string type;
  std::string schema;
  std::string sql;  // the whole block, comments included
};

// Splits a plain dump into entries; entries[0] is the preamble (SET ...),
// with name and type empty. psql meta-commands (\restrict, \unrestrict) are
// dropped, so every entry can be run with PQexec.
std::vector<DumpEntry> SplitDumpEntries(const std::string& sql);

// Joins entries back into one script.
std::string JoinDumpEntries(const std::vector<DumpEntry>& entries);

// The dump without pgtrail's own objects (its schema and event triggers),
// which belong to the source's capture, not to the data.
std::string WithoutPgtrailObjects(const std::string& sql);

}  // namespace pgtrail

#endif  // PGTRAIL_STORAGE_DUMP_SQL_H_
