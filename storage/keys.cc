#include "storage/keys.h"

#include <cstring>

#include "storage/coding.h"

namespace pgtrail::keys {
namespace {

Status ExpectSize(std::string_view key, size_t n, const char* what) {
  if (key.size() != n) {
    return Status::Corruption(std::string("bad ") + what + " key: " + std::to_string(key.size()) +
                              " bytes, expected " + std::to_string(n));
  }
  return Status::OK();
}

}  // namespace

std::string TxnKey(uint64_t commit_lsn) {
  std::string k;
  AppendU64BE(&k, commit_lsn);
  return k;
}

Status ParseTxnKey(std::string_view key, uint64_t* commit_lsn) {
  RETURN_IF_ERROR(ExpectSize(key, 8, "txn"));
  *commit_lsn = DecodeU64BE(key.data());
  return Status::OK();
}

std::string ChangeKey(uint64_t commit_lsn, uint32_t seq) {
  std::string k;
  AppendU64BE(&k, commit_lsn);
  AppendU32BE(&k, seq);
  return k;
}

Status ParseChangeKey(std::string_view key, uint64_t* commit_lsn, uint32_t* seq) {
  RETURN_IF_ERROR(ExpectSize(key, 12, "change"));
  *commit_lsn = DecodeU64BE(key.data());
  *seq = DecodeU32BE(key.data() + 8);
  return Status::OK();
}

std::string RelationKey(uint32_t relid, uint64_t lsn, uint32_t seq) {
  std::string k;
  AppendU32BE(&k, relid);
  AppendU64BE(&k, lsn);
  AppendU32BE(&k, seq);
  return k;
}

Status ParseRelationKey(std::string_view key, uint32_t* relid, uint64_t* lsn, uint32_t* seq) {
  RETURN_IF_ERROR(ExpectSize(key, 16, "relation"));
  *relid = DecodeU32BE(key.data());
  *lsn = DecodeU64BE(key.data() + 4);
  *seq = DecodeU32BE(key.data() + 12);
  return Status::OK();
}

uint64_t BiasTime(int64_t time_us) {
  return static_cast<uint64_t>(time_us) ^ (uint64_t{1} << 63);
}

int64_t UnbiasTime(uint64_t biased) { return static_cast<int64_t>(biased ^ (uint64_t{1} << 63)); }

std::string TimeKey(int64_t max_commit_time_us, uint64_t commit_lsn) {
  std::string k;
  AppendU64BE(&k, BiasTime(max_commit_time_us));
  AppendU64BE(&k, commit_lsn);
  return k;
}

Status ParseTimeKey(std::string_view key, int64_t* max_commit_time_us, uint64_t* commit_lsn) {
  RETURN_IF_ERROR(ExpectSize(key, 16, "time"));
  *max_commit_time_us = UnbiasTime(DecodeU64BE(key.data()));
  *commit_lsn = DecodeU64BE(key.data() + 8);
  return Status::OK();
}

std::string SnapshotKey(uint64_t snapshot_id) {
  std::string k;
  AppendU64BE(&k, snapshot_id);
  return k;
}

Status ParseSnapshotKey(std::string_view key, uint64_t* snapshot_id) {
  RETURN_IF_ERROR(ExpectSize(key, 8, "snapshot"));
  *snapshot_id = DecodeU64BE(key.data());
  return Status::OK();
}

void AppendRowKeyValue(std::string* dst, const KeyValue& v) {
  if (v.is_null) {
    dst->push_back('\x01');
    return;
  }
  std::string_view rest = v.text;
  const size_t at = dst->size();
  if (rest.empty() || std::memchr(rest.data(), 0, rest.size()) == nullptr) {
    // No zero byte (every text value): tag, bytes and terminator in one go.
    dst->resize(at + rest.size() + 3);
    char* p = dst->data() + at;
    p[0] = '\x02';
    if (!rest.empty()) std::memcpy(p + 1, rest.data(), rest.size());
    p[rest.size() + 1] = '\0';
    p[rest.size() + 2] = '\x01';
    return;
  }
  dst->push_back('\x02');
  for (size_t zero; (zero = rest.find('\0')) != std::string_view::npos;) {
    dst->append(rest.data(), zero);
    dst->append("\0\xff", 2);
    rest.remove_prefix(zero + 1);
  }
  dst->append(rest.data(), rest.size());
  dst->append("\0\x01", 2);
}

void AppendRowKey(std::string* dst, const std::vector<KeyValue>& values) {
  for (const KeyValue& v : values) AppendRowKeyValue(dst, v);
}

Status ParseRowKeyValueView(std::string_view in, size_t* pos, bool* is_null,
                            std::string_view* value, std::string* scratch) {
  size_t i = *pos;
  if (i >= in.size()) return Status::Corruption("truncated row key");
  const char tag = in[i++];
  if (tag == '\x01') {
    *is_null = true;
    *value = {};
    *pos = i;
    return Status::OK();
  }
  if (tag != '\x02') return Status::Corruption("bad row key column tag");
  // The text is runs without a zero byte, each copied whole, separated by
  // 0x00 0xFF (a zero byte) and closed by 0x00 0x01. One run (no zero byte,
  // nearly always) is returned in place.
  bool copied = false;
  for (;;) {
    const size_t zero = in.find('\0', i);
    if (zero == std::string_view::npos || zero + 1 >= in.size()) {
      return Status::Corruption("unterminated row key column");
    }
    const char next = in[zero + 1];
    if (next == '\x01' && !copied) {
      *value = in.substr(i, zero - i);
      i = zero + 2;
      break;
    }
    if (!copied) scratch->clear();
    copied = true;
    scratch->append(in.data() + i, zero - i);
    i = zero + 2;
    if (next == '\x01') {
      *value = *scratch;
      break;
    }
    if (next != '\xff') return Status::Corruption("bad row key escape");
    scratch->push_back('\0');
  }
  *is_null = false;
  *pos = i;
  return Status::OK();
}

Status ParseRowKeyValue(std::string_view in, size_t* pos, bool* is_null, std::string* text) {
  std::string_view value;
  RETURN_IF_ERROR(ParseRowKeyValueView(in, pos, is_null, &value, text));
  if (value.data() != text->data()) text->assign(value);
  return Status::OK();
}

Status ParseRowKey(std::string_view in, size_t column_count, std::vector<std::string>* texts,
                   std::vector<bool>* nulls, size_t* consumed) {
  texts->resize(column_count);
  nulls->resize(column_count);
  size_t pos = 0;
  for (size_t col = 0; col < column_count; col++) {
    bool is_null = false;
    RETURN_IF_ERROR(ParseRowKeyValue(in, &pos, &is_null, &(*texts)[col]));
    (*nulls)[col] = is_null;
  }
  *consumed = pos;
  return Status::OK();
}

std::string SnapRowPrefix(uint64_t snapshot_id, uint32_t relid) {
  std::string k;
  AppendU64BE(&k, snapshot_id);
  AppendU32BE(&k, relid);
  return k;
}

std::string SnapRowKey(uint64_t snapshot_id, uint32_t relid, std::string_view rowkey,
                       int64_t ordinal) {
  std::string k = SnapRowPrefix(snapshot_id, relid);
  k.append(rowkey.data(), rowkey.size());
  if (ordinal >= 0) AppendU64BE(&k, static_cast<uint64_t>(ordinal));
  return k;
}

std::string RowIdxPrefix(uint32_t relid) {
  std::string k;
  AppendU32BE(&k, relid);
  return k;
}

void AppendRowIdxKey(std::string* dst, uint32_t relid, std::string_view rowkey,
                     uint64_t commit_lsn, uint32_t seq) {
  AppendU32BE(dst, relid);
  dst->append(rowkey.data(), rowkey.size());
  AppendU64BE(dst, commit_lsn);
  AppendU32BE(dst, seq);
}

std::string RowIdxKey(uint32_t relid, std::string_view rowkey, uint64_t commit_lsn,
                      uint32_t seq) {
  std::string k;
  AppendRowIdxKey(&k, relid, rowkey, commit_lsn, seq);
  return k;
}

Status ParseRowIdxKey(std::string_view key, uint32_t* relid, std::string_view* rowkey,
                      uint64_t* commit_lsn, uint32_t* seq) {
  if (key.size() < 16) return Status::Corruption("bad rowidx key: too short");
  *relid = DecodeU32BE(key.data());
  *rowkey = key.substr(4, key.size() - 16);
  *commit_lsn = DecodeU64BE(key.data() + key.size() - 12);
  *seq = DecodeU32BE(key.data() + key.size() - 4);
  return Status::OK();
}

std::string TruncatePrefix(uint32_t relid) { return RowIdxPrefix(relid); }

std::string TruncateKey(uint32_t relid, uint64_t commit_lsn, uint32_t seq) {
  std::string k = TruncatePrefix(relid);
  AppendU64BE(&k, commit_lsn);
  AppendU32BE(&k, seq);
  return k;
}

Status ParseTruncateKey(std::string_view key, uint32_t* relid, uint64_t* commit_lsn,
                        uint32_t* seq) {
  RETURN_IF_ERROR(ExpectSize(key, 16, "truncate"));
  *relid = DecodeU32BE(key.data());
  *commit_lsn = DecodeU64BE(key.data() + 4);
  *seq = DecodeU32BE(key.data() + 12);
  return Status::OK();
}

bool IsValidMarkName(std::string_view name) {
  if (name.empty() || name.size() > 63) return false;
  for (char c : name) {
    const bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                    c == '_' || c == '.' || c == ':' || c == '-';
    if (!ok) return false;
  }
  return true;
}

std::string MarkKey(std::string_view name, uint64_t commit_lsn, uint32_t seq) {
  std::string k(name);
  k.push_back('\0');
  AppendU64BE(&k, commit_lsn);
  AppendU32BE(&k, seq);
  return k;
}

Status ParseMarkKey(std::string_view key, std::string* name, uint64_t* commit_lsn,
                    uint32_t* seq) {
  if (key.size() < 14 || key[key.size() - 13] != '\0') {
    return Status::Corruption("bad mark key");
  }
  *name = std::string(key.substr(0, key.size() - 13));
  *commit_lsn = DecodeU64BE(key.data() + key.size() - 12);
  *seq = DecodeU32BE(key.data() + key.size() - 4);
  return Status::OK();
}

std::string PrefixSuccessor(std::string prefix) {
  while (!prefix.empty()) {
    unsigned char last = static_cast<unsigned char>(prefix.back());
    if (last != 0xff) {
      prefix.back() = static_cast<char>(last + 1);
      return prefix;
    }
    prefix.pop_back();
  }
  return prefix;
}

}  // namespace pgtrail::keys
