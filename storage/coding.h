// Big-endian byte coding: one bounded reader and matching append functions.
//
// Every read goes through one bounds check; a read past the end fails with
// kCorruption naming what was being read. Integers are assembled with shifts,
// never by casting the buffer.
#ifndef PGTRAIL_STORAGE_CODING_H_
#define PGTRAIL_STORAGE_CODING_H_

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "storage/status.h"

namespace pgtrail {

void AppendU8(std::string* dst, uint8_t v);
void AppendU16BE(std::string* dst, uint16_t v);
void AppendU32BE(std::string* dst, uint32_t v);
void AppendU64BE(std::string* dst, uint64_t v);
// Appends the bytes of s followed by a NUL (the pgoutput String).
void AppendCString(std::string* dst, std::string_view s);

uint32_t DecodeU32BE(const char* p);
uint64_t DecodeU64BE(const char* p);

// A cursor over a byte span. Does not own the bytes; they must outlive it.
class ByteReader {
 public:
  explicit ByteReader(std::string_view data) : data_(data) {}

  // Each Read* fails with kCorruption "truncated <what>" when too few bytes remain.
  Status ReadU8(const char* what, uint8_t* out);
  Status ReadU16BE(const char* what, uint16_t* out);
  Status ReadU32BE(const char* what, uint32_t* out);
  Status ReadU64BE(const char* what, uint64_t* out);
  Status ReadI16BE(const char* what, int16_t* out);
  Status ReadI32BE(const char* what, int32_t* out);
  Status ReadI64BE(const char* what, int64_t* out);
  // A NUL-terminated string; fails with "unterminated <what>" if no NUL remains.
  Status ReadCString(const char* what, std::string_view* out);
  // Exactly n bytes.
  Status ReadBytes(const char* what, size_t n, std::string_view* out);

  // Fails with kCorruption "<what>: N trailing bytes" unless fully consumed.
  Status ExpectEnd(const char* what) const;

  size_t remaining() const { return data_.size() - pos_; }
  size_t position() const { return pos_; }
  bool empty() const { return remaining() == 0; }

 private:
  Status Need(const char* what, size_t n) const;

  std::string_view data_;
  size_t pos_ = 0;
};

// LSNs in PostgreSQL's text form "%X/%X".
std::string FormatLsn(uint64_t lsn);
// Parses "16/B374D848"; fails with kInvalidArgument on anything else.
Status ParseLsn(std::string_view text, uint64_t* out);

}  // namespace pgtrail

#endif  // PGTRAIL_STORAGE_CODING_H_
