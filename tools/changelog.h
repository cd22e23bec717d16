// changelog grep: the stored history as a readable audit log.
#ifndef PGTRAIL_TOOLS_CHANGELOG_H_
#define PGTRAIL_TOOLS_CHANGELOG_H_

#include <optional>
#include <ostream>
#include <string>

#include "storage/status.h"

namespace pgtrail {

struct ChangelogOptions {
  std::string store_path;
  std::string pattern;  // POSIX extended regular expression (grep -E) over the change's values; "" = all
  std::string table;    // "schema.table" or "table"; "" = all
  std::string since;    // PostgreSQL timestamps; "" = unbounded
  std::string until;
  std::string key;  // --key: one row's key values, comma-separated (needs --table)
  std::string op;  // insert | update | delete | truncate | ddl | mark | message; "" = all
  std::string format = "text";  // text | json
};

// Validates the options (pattern, times, op, format) before any work.
Status ValidateChangelogOptions(const ChangelogOptions& options);

// Prints matching changes, oldest first (commit LSN order).
Status RunChangelogGrep(const ChangelogOptions& options, std::ostream& out);

// Escapes s as the inside of a JSON string.
std::string JsonEscape(std::string_view s);

// The text that every match of the POSIX extended regular expression
// `pattern` contains, when the pattern is one literal of printable ASCII
// (anchored by ^ and $ at most); "" for any other pattern. A row change or
// message whose stored bytes lack it cannot match, so the search skips it
// unparsed (schema changes are matched on their query decoded from JSON,
// so the search always reads them).
std::string PatternLiteral(std::string_view pattern);

}  // namespace pgtrail

#endif  // PGTRAIL_TOOLS_CHANGELOG_H_
