// Timestamp input, the subset of PostgreSQL's syntax that users type:
//
//   input  := "now" | "epoch" | date [ sep time ] [ ' '* offset ]   (case-insensitive words)
//   date   := YYYY '-' M[M] '-' D[D]
//   sep    := 'T' | ' '+
//   time   := H[H] ':' MM [ ':' SS [ '.' f{1,6} ] ]
//   offset := 'Z' | "UTC" | "GMT" | ('+' | '-') HH [ [':'] MM ]
//
// With an offset the instant is computed from the civil fields alone
// (days-from-civil), so the process time zone cannot affect it; without one
// the fields are local time and go through mktime().
#include "storage/pg_time.h"

#include <cerrno>
#include <chrono>
#include <cstdio>
#include <ctime>

namespace pgtrail {
namespace {

constexpr int64_t kUsPerSecond = 1000000;
constexpr int64_t kSecondsPerDay = 86400;

// Days since 1970-01-01 of a proleptic Gregorian date (H. Hinnant's algorithm).
int64_t DaysFromCivil(int64_t y, int64_t m, int64_t d) {
  y -= m <= 2 ? 1 : 0;
  const int64_t era = (y >= 0 ? y : y - 399) / 400;
  const int64_t yoe = y - era * 400;
  const int64_t doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
  const int64_t doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
  return era * 146097 + doe - 719468;
}

void CivilFromDays(int64_t z, int64_t* y, int* m, int* d) {
  z += 719468;
  const int64_t era = (z >= 0 ? z : z - 146096) / 146097;
  const int64_t doe = z - era * 146097;
  const int64_t yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
  const int64_t doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
  const int64_t mp = (5 * doy + 2) / 153;
  *d = static_cast<int>(doy - (153 * mp + 2) / 5 + 1);
  *m = static_cast<int>(mp < 10 ? mp + 3 : mp - 9);
  *y = yoe + era * 400 + (*m <= 2 ? 1 : 0);
}

bool IsLeapYear(int year) { return (year % 4 == 0 && year % 100 != 0) || year % 400 == 0; }

int DaysInMonth(int year, int month) {
  static constexpr int kDays[12] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
  return month == 2 && IsLeapYear(year) ? 29 : kDays[month - 1];
}

bool IsDigit(char c) { return c >= '0' && c <= '9'; }

char ToLower(char c) { return c >= 'A' && c <= 'Z' ? static_cast<char>(c - 'A' + 'a') : c; }

bool EqualsIgnoreCase(std::string_view a, std::string_view b) {
  if (a.size() != b.size()) return false;
  for (size_t i = 0; i < a.size(); i++) {
    if (ToLower(a[i]) != ToLower(b[i])) return false;
  }
  return true;
}

// A cursor over the trimmed input; every Read* consumes only on success.
class Scanner {
 public:
  explicit Scanner(std::string_view s) : s_(s) {}

  bool AtEnd() const { return pos_ >= s_.size(); }
  char Peek() const { return AtEnd() ? '\0' : s_[pos_]; }
  std::string_view Rest() const { return s_.substr(pos_); }
  void Skip(size_t n) { pos_ += n; }

  bool Consume(char c) {
    if (Peek() != c) return false;
    pos_++;
    return true;
  }
  size_t SkipSpaces() {
    size_t n = 0;
    while (Peek() == ' ') {
      pos_++;
      n++;
    }
    return n;
  }
  // Between min_digits and max_digits decimal digits, as many as present.
  bool ReadNumber(int min_digits, int max_digits, int* out, int* digits_read = nullptr) {
    int value = 0;
    int n = 0;
    while (n < max_digits && IsDigit(Peek())) {
      value = value * 10 + (s_[pos_++] - '0');
      n++;
    }
    if (n < min_digits) {
      pos_ -= n;
      return false;
    }
    *out = value;
    if (digits_read != nullptr) *digits_read = n;
    return true;
  }

 private:
  std::string_view s_;
  size_t pos_ = 0;
};

struct Fields {
  int year = 0, month = 0, day = 0, hour = 0, minute = 0, second = 0, micros = 0;
  bool has_offset = false;
  int offset_seconds = 0;  // east of UTC
};

bool ParseOffset(Scanner* in, Fields* f) {
  std::string_view rest = in->Rest();
  if (EqualsIgnoreCase(rest, "z")) {
    in->Skip(1);
  } else if (EqualsIgnoreCase(rest, "utc") || EqualsIgnoreCase(rest, "gmt")) {
    in->Skip(3);
  } else {
    int sign = in->Consume('+') ? 1 : in->Consume('-') ? -1 : 0;
    if (sign == 0) return false;
    int hours = 0;
    int minutes = 0;
    if (!in->ReadNumber(2, 2, &hours)) return false;
    if (!in->AtEnd()) {
      in->Consume(':');
      if (!in->ReadNumber(2, 2, &minutes)) return false;
    }
    // PostgreSQL's own limit for a numeric zone is 15:59.
    if (hours > 15 || minutes > 59) return false;
    f->offset_seconds = sign * (hours * 3600 + minutes * 60);
  }
  f->has_offset = true;
  return in->AtEnd();
}

bool ParseTime(Scanner* in, Fields* f) {
  if (!in->ReadNumber(1, 2, &f->hour) || !in->Consume(':') || !in->ReadNumber(2, 2, &f->minute)) {
    return false;
  }
  if (in->Consume(':')) {
    if (!in->ReadNumber(2, 2, &f->second)) return false;
    if (in->Consume('.')) {
      int digits = 0;
      if (!in->ReadNumber(1, 6, &f->micros, &digits)) return false;
      if (IsDigit(in->Peek())) return false;  // more than 6 fractional digits
      for (; digits < 6; digits++) f->micros *= 10;
    }
  }
  return f->hour <= 23 && f->minute <= 59 && f->second <= 59;
}

bool ParseFields(std::string_view text, Fields* f) {
  Scanner in(text);
  if (!in.ReadNumber(4, 4, &f->year) || !in.Consume('-') || !in.ReadNumber(1, 2, &f->month) ||
      !in.Consume('-') || !in.ReadNumber(1, 2, &f->day)) {
    return false;
  }
  if (f->year < 1 || f->month < 1 || f->month > 12 || f->day < 1 ||
      f->day > DaysInMonth(f->year, f->month)) {
    return false;
  }
  if (in.AtEnd()) return true;
  // After 'T' a time must follow; after spaces it may be the offset instead.
  bool iso_sep = in.Consume('T') || in.Consume('t');
  if (iso_sep || (in.SkipSpaces() > 0 && IsDigit(in.Peek()))) {
    if (!ParseTime(&in, f)) return false;
    if (in.AtEnd()) return true;
    in.SkipSpaces();
  }
  return ParseOffset(&in, f);
}

Status InvalidTime(std::string_view text) {
  return Status::InvalidArgument("invalid time \"" + std::string(text) +
                                 "\": expected a timestamp like "
                                 "2026-11-21 14:03:07[.123456][+02:00]");
}

}  // namespace

Result<int64_t> ParseTimestamp(std::string_view text) {
  constexpr std::string_view kSpaces = " \t\r\n";
  std::string_view trimmed = text;
  size_t first = trimmed.find_first_not_of(kSpaces);
  trimmed = first == std::string_view::npos ? std::string_view() : trimmed.substr(first);
  trimmed = trimmed.substr(0, trimmed.find_last_not_of(kSpaces) + 1);

  if (EqualsIgnoreCase(trimmed, "epoch")) return int64_t{0};
  if (EqualsIgnoreCase(trimmed, "now")) {
    return static_cast<int64_t>(std::chrono::duration_cast<std::chrono::microseconds>(
                                    std::chrono::system_clock::now().time_since_epoch())
                                    .count());
  }

  Fields f;
  if (!ParseFields(trimmed, &f)) return InvalidTime(text);

  int64_t seconds;
  if (f.has_offset) {
    seconds = DaysFromCivil(f.year, f.month, f.day) * kSecondsPerDay + f.hour * 3600 +
              f.minute * 60 + f.second - f.offset_seconds;
  } else {
    std::tm tm{};
    tm.tm_year = f.year - 1900;
    tm.tm_mon = f.month - 1;
    tm.tm_mday = f.day;
    tm.tm_hour = f.hour;
    tm.tm_min = f.minute;
    tm.tm_sec = f.second;
    tm.tm_isdst = -1;  // let the zone rules decide whether DST applies
    errno = 0;
    std::time_t t = std::mktime(&tm);
    // -1 is also the valid instant 1969-12-31 23:59:59 UTC; only errno tells them apart.
    if (t == static_cast<std::time_t>(-1) && errno != 0) return InvalidTime(text);
    seconds = static_cast<int64_t>(t);
  }
  return seconds * kUsPerSecond + f.micros;
}

std::string FormatTimestampUtc(int64_t unix_us) {
  // Floor division, so times before 1970 still get a non-negative remainder.
  int64_t seconds = unix_us / kUsPerSecond;
  int64_t micros = unix_us % kUsPerSecond;
  if (micros < 0) {
    micros += kUsPerSecond;
    seconds--;
  }
  int64_t days = seconds / kSecondsPerDay;
  int64_t second_of_day = seconds % kSecondsPerDay;
  if (second_of_day < 0) {
    second_of_day += kSecondsPerDay;
    days--;
  }
  int64_t year;
  int month;
  int day;
  CivilFromDays(days, &year, &month, &day);
  char buf[64];
  std::snprintf(buf, sizeof(buf), "%04lld-%02d-%02d %02d:%02d:%02d.%06d+00",
                static_cast<long long>(year), month, day, static_cast<int>(second_of_day / 3600),
                static_cast<int>(second_of_day / 60 % 60), static_cast<int>(second_of_day % 60),
                static_cast<int>(micros));
  return buf;
}

int64_t NowUnixUs() {
  return std::chrono::duration_cast<std::chrono::microseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

}  // namespace pgtrail
