// PostgreSQL COPY text format (the default FORMAT text, DELIMITER '\t',
// NULL '\N'): the bridge between stored values (raw text form, exactly as
// pgoutput sends them) and COPY TO / COPY FROM.
#ifndef PGTRAIL_STORAGE_COPY_TEXT_H_
#define PGTRAIL_STORAGE_COPY_TEXT_H_

#include <string>
#include <string_view>
#include <vector>

#include "proto/pgtrail.pb.h"
#include "storage/status.h"

namespace pgtrail {

// Appends `raw` escaped for COPY text: backslash, tab, newline, carriage
// return, backspace, form feed and vertical tab become \\ \t \n \r \b \f \v.
void AppendCopyTextValue(std::string* dst, std::string_view raw);

// Appends one COPY text line for `tuple`: values separated by tabs, NULL
// ('n') as \N, and a final newline. Requires: no column of kind 'u' or '?'.
void AppendCopyTextRow(std::string* dst, const pb::Tuple& tuple);
// The same for a tuple given as its kinds and values.
void AppendCopyTextRow(std::string* dst, std::string_view kinds,
                       const std::vector<std::string_view>& values);

// Parses one line of COPY TO text output (without its trailing newline) into
// `out` with kinds 'n' (for \N) or 't'. Accepts every escape COPY FROM accepts
// (\b \f \n \r \t \v \\, \ooo octal, \xhh hex, backslash + any other char as
// that char). Fails with kCorruption unless the line has exactly
// `expected_columns` fields.
Status ParseCopyTextLine(std::string_view line, size_t expected_columns, pb::Tuple* out);

}  // namespace pgtrail

#endif  // PGTRAIL_STORAGE_COPY_TEXT_H_
