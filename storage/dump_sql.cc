#include "storage/dump_sql.h"

#include <sstream>

namespace pgtrail {
namespace {

// "-- Name: accounts; Type: TABLE; Schema: public; Owner: -" -> fields.
void ParseHeader(const std::string& line, DumpEntry* entry) {
  auto field = [&line](const std::string& label, const std::string& next) {
    size_t start = line.find(label);
    if (start == std::string::npos) return std::string();
    start += label.size();
    size_t end = next.empty() ? std::string::npos : line.find(next, start);
    return line.substr(start, end == std::string::npos ? std::string::npos : end - start);
  };
  entry->name = field("-- Name: ", "; Type: ");
  entry->type = field("; Type: ", "; Schema: ");
  entry->schema = field("; Schema: ", "; Owner: ");
}

}  // namespace

std::vector<DumpEntry> SplitDumpEntries(const std::string& sql) {
  std::vector<DumpEntry> entries(1);
  std::istringstream in(sql);
  std::string line;
  while (std::getline(in, line)) {
    if (line.rfind("\\restrict", 0) == 0 || line.rfind("\\unrestrict", 0) == 0) continue;
    if (line.rfind("-- Name: ", 0) == 0) {
      entries.emplace_back();
      ParseHeader(line, &entries.back());
    }
    entries.back().sql += line;
    entries.back().sql += '\n';
  }
  return entries;
}

std::string JoinDumpEntries(const std::vector<DumpEntry>& entries) {
  std::string out;
  for (const DumpEntry& e : entries) out += e.sql;
  return out;
}

std::string WithoutPgtrailObjects(const std::string& sql) {
  std::vector<DumpEntry> entries = SplitDumpEntries(sql);
  std::vector<DumpEntry> kept;
  for (DumpEntry& e : entries) {
    const bool ours = e.schema == "pgtrail" || (e.type == "SCHEMA" && e.name == "pgtrail") ||
                      (e.type == "EVENT TRIGGER" && (e.name == "pgtrail_ddl" ||
                                                     e.name == "pgtrail_drop"));
    if (!ours) kept.push_back(std::move(e));
  }
  return JoinDumpEntries(kept);
}

}  // namespace pgtrail
