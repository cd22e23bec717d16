#include "storage/coding.h"

#include <cinttypes>
#include <cstdio>
#include <cstring>

namespace pgtrail {

void AppendU8(std::string* dst, uint8_t v) { dst->push_back(static_cast<char>(v)); }

void AppendU16BE(std::string* dst, uint16_t v) {
  char b[2] = {static_cast<char>(v >> 8), static_cast<char>(v)};
  dst->append(b, 2);
}

void AppendU32BE(std::string* dst, uint32_t v) {
  char b[4];
  for (int i = 0; i < 4; i++) b[i] = static_cast<char>(v >> (24 - 8 * i));
  dst->append(b, 4);
}

void AppendU64BE(std::string* dst, uint64_t v) {
  char b[8];
  for (int i = 0; i < 8; i++) b[i] = static_cast<char>(v >> (56 - 8 * i));
  dst->append(b, 8);
}

void AppendCString(std::string* dst, std::string_view s) {
  dst->append(s.data(), s.size());
  dst->push_back('\0');
}

uint32_t DecodeU32BE(const char* p) {
  const auto* u = reinterpret_cast<const unsigned char*>(p);
  return (uint32_t{u[0]} << 24) | (uint32_t{u[1]} << 16) | (uint32_t{u[2]} << 8) | u[3];
}

uint64_t DecodeU64BE(const char* p) {
  return (uint64_t{DecodeU32BE(p)} << 32) | DecodeU32BE(p + 4);
}

Status ByteReader::Need(const char* what, size_t n) const {
  if (remaining() < n) {
    return Status::Corruption(std::string("truncated ") + what + ": need " + std::to_string(n) +
                              " bytes, have " + std::to_string(remaining()));
  }
  return Status::OK();
}

Status ByteReader::ReadU8(const char* what, uint8_t* out) {
  RETURN_IF_ERROR(Need(what, 1));
  *out = static_cast<uint8_t>(data_[pos_]);
  pos_ += 1;
  return Status::OK();
}

Status ByteReader::ReadU16BE(const char* what, uint16_t* out) {
  RETURN_IF_ERROR(Need(what, 2));
  const auto* u = reinterpret_cast<const unsigned char*>(data_.data() + pos_);
  *out = static_cast<uint16_t>((u[0] << 8) | u[1]);
  pos_ += 2;
  return Status::OK();
}

Status ByteReader::ReadU32BE(const char* what, uint32_t* out) {
  RETURN_IF_ERROR(Need(what, 4));
  *out = DecodeU32BE(data_.data() + pos_);
  pos_ += 4;
  return Status::OK();
}

Status ByteReader::ReadU64BE(const char* what, uint64_t* out) {
  RETURN_IF_ERROR(Need(what, 8));
  *out = DecodeU64BE(data_.data() + pos_);
  pos_ += 8;
  return Status::OK();
}

Status ByteReader::ReadI16BE(const char* what, int16_t* out) {
  uint16_t v;
  RETURN_IF_ERROR(ReadU16BE(what, &v));
  *out = static_cast<int16_t>(v);
  return Status::OK();
}

Status ByteReader::ReadI32BE(const char* what, int32_t* out) {
  uint32_t v;
  RETURN_IF_ERROR(ReadU32BE(what, &v));
  *out = static_cast<int32_t>(v);
  return Status::OK();
}

Status ByteReader::ReadI64BE(const char* what, int64_t* out) {
  uint64_t v;
  RETURN_IF_ERROR(ReadU64BE(what, &v));
  *out = static_cast<int64_t>(v);
  return Status::OK();
}

Status ByteReader::ReadCString(const char* what, std::string_view* out) {
  const void* nul = std::memchr(data_.data() + pos_, '\0', remaining());
  if (nul == nullptr) return Status::Corruption(std::string("unterminated ") + what);
  size_t len = static_cast<const char*>(nul) - (data_.data() + pos_);
  *out = data_.substr(pos_, len);
  pos_ += len + 1;
  return Status::OK();
}

Status ByteReader::ReadBytes(const char* what, size_t n, std::string_view* out) {
  RETURN_IF_ERROR(Need(what, n));
  *out = data_.substr(pos_, n);
  pos_ += n;
  return Status::OK();
}

Status ByteReader::ExpectEnd(const char* what) const {
  if (remaining() != 0) {
    return Status::Corruption(std::string(what) + ": " + std::to_string(remaining()) +
                              " trailing bytes");
  }
  return Status::OK();
}

std::string FormatLsn(uint64_t lsn) {
  char buf[32];
  std::snprintf(buf, sizeof(buf), "%X/%X", static_cast<unsigned>(lsn >> 32),
                static_cast<unsigned>(lsn & 0xffffffffu));
  return buf;
}

Status ParseLsn(std::string_view text, uint64_t* out) {
  auto bad = [&] {
    return Status::InvalidArgument("invalid LSN \"" + std::string(text) +
                                   "\": expected two hexadecimal numbers like 16/B374D848");
  };
  size_t slash = text.find('/');
  if (slash == std::string_view::npos || slash == 0 || slash + 1 == text.size()) return bad();
  uint64_t parts[2] = {0, 0};
  std::string_view halves[2] = {text.substr(0, slash), text.substr(slash + 1)};
  for (int i = 0; i < 2; i++) {
    if (halves[i].size() > 8) return bad();
    for (char c : halves[i]) {
      int d;
      if (c >= '0' && c <= '9') d = c - '0';
      else if (c >= 'a' && c <= 'f') d = c - 'a' + 10;
      else if (c >= 'A' && c <= 'F') d = c - 'A' + 10;
      else return bad();
      parts[i] = parts[i] * 16 + static_cast<uint64_t>(d);
    }
  }
  *out = (parts[0] << 32) | parts[1];
  return Status::OK();
}

}  // namespace pgtrail
