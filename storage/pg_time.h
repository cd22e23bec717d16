// Timestamps as users write them, the PostgreSQL way.
#ifndef PGTRAIL_STORAGE_PG_TIME_H_
#define PGTRAIL_STORAGE_PG_TIME_H_

#include <cstdint>
#include <string>
#include <string_view>

#include "storage/status.h"

namespace pgtrail {

// Parses a timestamp in PostgreSQL input syntax (ISO 8601 included) into
// microseconds since the Unix epoch, UTC. Accepted:
//   2026-11-21 14:03:07            (local time zone: the TZ environment / system zone)
//   2026-11-21T14:03:07.123456     ('T' or space; 1..6 fractional digits)
//   2026-11-21 14:03               (seconds optional)
//   2026-11-21                     (midnight, local)
//   ... followed by an offset: Z, UTC, GMT, +02, -0530, +05:30, optionally after a space
//   "now", and "epoch" (1970-01-01 00:00:00+00)
// Leading/trailing spaces are ignored. Anything else, and out-of-range fields
// (month 13, Feb 30, hour 25, ...), fail with kInvalidArgument and a message
// that shows the expected form, e.g.
//   invalid time "2026-13-01": expected a timestamp like 2026-11-21 14:03:07[.123456][+02:00]
Result<int64_t> ParseTimestamp(std::string_view text);

// "2026-11-21 14:03:07.123456+00" (microseconds always shown, UTC).
std::string FormatTimestampUtc(int64_t unix_us);

// The current time, µs since the Unix epoch.
int64_t NowUnixUs();

// Converts PostgreSQL-epoch microseconds (since 2000-01-01 UTC) to Unix µs.
inline constexpr int64_t kPgEpochOffsetUs = 946684800000000LL;
inline int64_t PgTimeToUnixUs(int64_t pg_us) { return pg_us + kPgEpochOffsetUs; }

}  // namespace pgtrail

#endif  // PGTRAIL_STORAGE_PG_TIME_H_
