#include "storage/coding.h"

#include <cinttypes>
#include <cstdio>
#include <cstring>

namespace pgtrail {

Status ByteReader::Truncated(const char* what, size_t n) const {
  return Status::Corruption(std::string("truncated ") + what + ": need " + std::to_string(n) +
                            " bytes, have " + std::to_string(remaining()));
}

Status ByteReader::ReadCString(const char* what, std::string_view* out) {
  const void* nul = std::memchr(data_.data() + pos_, '\0', remaining());
  if (nul == nullptr) return Status::Corruption(std::string("unterminated ") + what);
  size_t len = static_cast<const char*>(nul) - (data_.data() + pos_);
  *out = data_.substr(pos_, len);
  pos_ += len + 1;
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
