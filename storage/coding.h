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

// Inline: the decoder and the key encoders call these for every field of
// every row (out of line they were 6% of the capture thread's instructions).
inline void AppendU8(std::string* dst, uint8_t v) { dst->push_back(static_cast<char>(v)); }
inline void AppendU16BE(std::string* dst, uint16_t v) {
  const char b[2] = {static_cast<char>(v >> 8), static_cast<char>(v)};
  dst->append(b, 2);
}
inline void EncodeU32BE(char* dst, uint32_t v) {
  for (int i = 0; i < 4; i++) dst[i] = static_cast<char>(v >> (24 - 8 * i));
}
inline void AppendU32BE(std::string* dst, uint32_t v) {
  char b[4];
  EncodeU32BE(b, v);
  dst->append(b, 4);
}
inline void AppendU64BE(std::string* dst, uint64_t v) {
  char b[8];
  for (int i = 0; i < 8; i++) b[i] = static_cast<char>(v >> (56 - 8 * i));
  dst->append(b, 8);
}
// Appends the bytes of s followed by a NUL (the pgoutput String).
inline void AppendCString(std::string* dst, std::string_view s) {
  dst->append(s.data(), s.size());
  dst->push_back('\0');
}

inline uint32_t DecodeU32BE(const char* p) {
  const auto* u = reinterpret_cast<const unsigned char*>(p);
  return (uint32_t{u[0]} << 24) | (uint32_t{u[1]} << 16) | (uint32_t{u[2]} << 8) | u[3];
}
inline uint64_t DecodeU64BE(const char* p) {
  return (uint64_t{DecodeU32BE(p)} << 32) | DecodeU32BE(p + 4);
}

// A cursor over a byte span. Does not own the bytes; they must outlive it.
class ByteReader {
 public:
  explicit ByteReader(std::string_view data) : data_(data) {}

  // Each Read* fails with kCorruption "truncated <what>" when too few bytes remain.
  Status ReadU8(const char* what, uint8_t* out) { return ReadUnsignedBE(what, out); }
  Status ReadU16BE(const char* what, uint16_t* out) { return ReadUnsignedBE(what, out); }
  Status ReadU32BE(const char* what, uint32_t* out) { return ReadUnsignedBE(what, out); }
  Status ReadU64BE(const char* what, uint64_t* out) { return ReadUnsignedBE(what, out); }
  Status ReadI16BE(const char* what, int16_t* out) {
    uint16_t v = 0;
    Status st = ReadU16BE(what, &v);
    *out = static_cast<int16_t>(v);
    return st;
  }
  Status ReadI32BE(const char* what, int32_t* out) {
    uint32_t v = 0;
    Status st = ReadU32BE(what, &v);
    *out = static_cast<int32_t>(v);
    return st;
  }
  Status ReadI64BE(const char* what, int64_t* out) {
    uint64_t v = 0;
    Status st = ReadU64BE(what, &v);
    *out = static_cast<int64_t>(v);
    return st;
  }
  // A NUL-terminated string; fails with "unterminated <what>" if no NUL remains.
  Status ReadCString(const char* what, std::string_view* out);
  // Exactly n bytes.
  Status ReadBytes(const char* what, size_t n, std::string_view* out) {
    if (remaining() < n) return Truncated(what, n, out);
    *out = data_.substr(pos_, n);
    pos_ += n;
    return Status::OK();
  }

  // Fails with kCorruption "<what>: N trailing bytes" unless fully consumed.
  Status ExpectEnd(const char* what) const;

  size_t remaining() const { return data_.size() - pos_; }
  size_t position() const { return pos_; }
  bool empty() const { return remaining() == 0; }

 private:
  template <typename U>
  Status ReadUnsignedBE(const char* what, U* out) {
    if (remaining() < sizeof(U)) return Truncated(what, sizeof(U), out);
    U v = 0;
    for (size_t i = 0; i < sizeof(U); i++) {
      v = static_cast<U>((uint64_t{v} << 8) | static_cast<unsigned char>(data_[pos_ + i]));
    }
    *out = v;
    pos_ += sizeof(U);
    return Status::OK();
  }
  // kCorruption "truncated <what>: need n bytes, have m" (the cold path).
  // *out is set to zero (empty), so no caller ever reads an indeterminate value.
  template <typename T>
  Status Truncated(const char* what, size_t n, T* out) const {
    *out = T{};
    return Truncated(what, n);
  }
  Status Truncated(const char* what, size_t n) const;

  std::string_view data_;
  size_t pos_ = 0;
};

// LSNs in PostgreSQL's text form "%X/%X".
std::string FormatLsn(uint64_t lsn);
// Parses "16/B374D848"; fails with kInvalidArgument on anything else.
Status ParseLsn(std::string_view text, uint64_t* out);

}  // namespace pgtrail

#endif  // PGTRAIL_STORAGE_CODING_H_
