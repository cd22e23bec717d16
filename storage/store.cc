#include "storage/store.h"

#include <google/protobuf/arena.h>
#include <google/protobuf/io/coded_stream.h>
#include <google/protobuf/wire_format_lite.h>
#include <rocksdb/db.h>
#include <rocksdb/listener.h>
#include <rocksdb/options.h>
#include <rocksdb/table.h>
#include <rocksdb/write_batch.h>
#include <sys/stat.h>
#include <unistd.h>
#include <csignal>
#include <cerrno>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <system_error>

#include "storage/coding.h"
#include "storage/memtable.h"
#include "storage/pg_time.h"

namespace pgtrail {
namespace {

namespace fs = std::filesystem;

const char* const kFamilyNames[] = {
    "default", "txn", "change", "relation", "time", "snapshot", "snaprow", "rowidx", "truncate",
    "mark", "ddl",
};
static_assert(sizeof(kFamilyNames) / sizeof(kFamilyNames[0]) ==
              static_cast<size_t>(Family::kCount));

Status FromRocks(const rocksdb::Status& s, const std::string& what) {
  if (s.ok()) return Status::OK();
  if (s.IsCorruption()) return Status::Corruption(what + ": " + s.ToString());
  if (s.IsIOError() && s.ToString().find("lock") != std::string::npos) {
    return Status::FailedPrecondition(what + ": the store is in use by another pgtrail-agent (" +
                                      s.ToString() + ")");
  }
  return Status::IOError(what + ": " + s.ToString());
}

rocksdb::Options BaseOptions() {
  rocksdb::Options options;
  options.create_if_missing = false;
  options.create_missing_column_families = true;
  options.compression = rocksdb::kLZ4Compression;
  options.bottommost_compression = rocksdb::kZSTD;
  options.max_background_jobs = 2;
  // One memory budget for the memtables of all families, so the agent's
  // footprint stays bounded whatever the write pattern (RocksDB's default is
  // 64 MB per family, times ten families).
  options.db_write_buffer_size = 64u << 20;
  options.write_buffer_size = 16u << 20;
  // Families with old data in the write-ahead log get flushed once the log
  // passes this, so it stays small (readers replay it when they open).
  options.max_total_wal_size = 64u << 20;
  // Compact level 0 after 8 files instead of 4: while catching up, all
  // families flush together (atomic_flush) and compaction took 2.1 s of CPU
  // from the walsender's two cores during the benchmark's drain; with 8 it
  // takes 0.6 s (the drain 12.3 s -> 11.2 s, the store 63 -> 85 MB until
  // compaction catches up).
  options.level0_file_num_compaction_trigger = 8;
  // Debian's RocksDB is built portable (software CRC32c, ~1.9% of capture
  // instructions in callgrind): XXH3 block checksums cost far less.
  rocksdb::BlockBasedTableOptions table;
  table.checksum = rocksdb::kXXH3;
  // 16 kB blocks instead of 4 kB: RocksDB starts a fresh LZ4 stream (a 16 kB
  // memset) for every block it compresses, 3% of the capture's instructions
  // with 4 kB blocks; the store is 8% smaller and a restore iterates fewer
  // blocks (lab: pitr-restore --jobs 2 2.52 s -> 2.23 s, medians of five).
  // 32 kB saved nothing more and made restores slower.
  table.block_size = 16 * 1024;
  options.table_factory.reset(rocksdb::NewBlockBasedTableFactory(table));
  // Re-checking key order while building each table costs ~1% of capture;
  // block checksums still catch corruption.
  options.check_flush_compaction_key_order = false;
  // Memtables that start each insertion from the previous one's place
  // (storage/memtable.h): the capture writes every batch in key order. They
  // take one writer at a time, as the store has.
  options.memtable_factory = NewFingerSkipListFactory();
  options.allow_concurrent_memtable_write = false;
  options.info_log_level = rocksdb::WARN_LEVEL;
  options.keep_log_file_num = 2;
  return options;
}

// Readers keep a scratch directory named after their pid; remove those of
// readers that died without cleaning up (a kill -9, say).
void RemoveStaleScratchDirs() {
  std::error_code ec;
  for (const auto& entry : fs::directory_iterator("/tmp", ec)) {
    const std::string name = entry.path().filename().string();
    const std::string prefix = "pgtrail-reader-";
    if (name.rfind(prefix, 0) != 0) continue;
    const pid_t pid = static_cast<pid_t>(std::atol(name.c_str() + prefix.size()));
    if (pid <= 0 || ::kill(pid, 0) == 0 || errno != ESRCH) continue;
    fs::remove_all(entry.path(), ec);
  }
}

}  // namespace

bool IsMultiset(const pb::Relation& rel) {
  if (rel.replica_identity() == 'f') return true;
  for (const pb::Column& c : rel.columns()) {
    if (c.key()) return false;
  }
  return true;
}

bool SameColumns(const pb::Relation& a, const pb::Relation& b) {
  if (a.relid() != b.relid() || a.nspname() != b.nspname() || a.relname() != b.relname() ||
      a.columns_size() != b.columns_size()) {
    return false;
  }
  for (int i = 0; i < a.columns_size(); i++) {
    const pb::Column& x = a.columns(i);
    const pb::Column& y = b.columns(i);
    if (x.name() != y.name() || x.type_oid() != y.type_oid() || x.type_mod() != y.type_mod()) {
      return false;
    }
  }
  return true;
}

bool RowIndexed(const pb::Relation& rel) {
  return rel.replica_identity() == 'f' || !IsMultiset(rel);
}

bool SameLayout(const pb::Relation& a, const pb::Relation& b) {
  if (!SameColumns(a, b) || a.replica_identity() != b.replica_identity()) return false;
  for (int i = 0; i < a.columns_size(); i++) {
    if (a.columns(i).key() != b.columns(i).key()) return false;
  }
  return true;
}

Status AppendTupleRowKey(std::string* dst, const pb::Relation& rel, const pb::Tuple& tuple) {
  const std::string& kinds = tuple.kinds();
  const int ncols = std::min(tuple.values_size(), static_cast<int>(kinds.size()));
  return AppendRowKeyOf(
      dst, rel, ncols, [&kinds](int i) { return kinds[i]; },
      [&tuple](int i) -> std::string_view { return tuple.values(i); });
}

// Remembers the newest meta-family sequence number that reached a table
// file. Called on RocksDB's flush thread once the flush is installed.
class Store::FlushTracker : public rocksdb::EventListener {
 public:
  void OnFlushCompleted(rocksdb::DB*, const rocksdb::FlushJobInfo& info) override {
    if (info.cf_name != rocksdb::kDefaultColumnFamilyName) return;
    uint64_t seen = flushed_meta_seqno.load();
    while (info.largest_seqno > seen &&
           !flushed_meta_seqno.compare_exchange_weak(seen, info.largest_seqno)) {
    }
  }
  std::atomic<uint64_t> flushed_meta_seqno{0};
};

Result<std::unique_ptr<Store>> Store::OpenForWrite(const std::string& path, bool create) {
  return Open(path, /*read_only=*/false, create);
}

Result<std::unique_ptr<Store>> Store::OpenForRead(const std::string& path) {
  return Open(path, /*read_only=*/true, /*create=*/false);
}

Result<std::unique_ptr<Store>> Store::Open(const std::string& path, bool read_only, bool create) {
  std::error_code ec;
  const bool exists = fs::exists(path, ec);
  const bool is_db = exists && fs::exists(fs::path(path) / "CURRENT", ec);
  if (!exists && !create) {
    return Status::NotFound("no pgtrail store at " + path +
                            "\nHINT: pass the --store directory that pgtrail-agent writes");
  }
  if (exists && !fs::is_directory(path, ec)) {
    return Status::FailedPrecondition(path + " is not a pgtrail store (not a directory)");
  }
  bool fresh = false;
  if (!is_db) {
    if (!create) {
      return Status::FailedPrecondition(path + " is not a pgtrail store");
    }
    if (exists && !fs::is_empty(path, ec)) {
      return Status::FailedPrecondition(path + " is not a pgtrail store and not empty" +
                                        "\nHINT: give pgtrail-agent a new or empty directory");
    }
    fs::create_directories(path, ec);
    if (ec) return Status::IOError("cannot create store directory " + path + ": " + ec.message());
    fresh = true;
  }
  if (!read_only) ::chmod(path.c_str(), 0700);

  std::unique_ptr<Store> store(new Store());
  store->path_ = path;
  store->read_only_ = read_only;

  rocksdb::Options options = BaseOptions();
  options.create_if_missing = fresh;
  if (!read_only) {
    // All families flush together, so unlogged writes (WriteUnlogged)
    // survive a crash as a consistent prefix or not at all.
    options.atomic_flush = true;
    store->flushes_ = std::make_shared<FlushTracker>();
    options.listeners.push_back(store->flushes_);
  }
  std::vector<rocksdb::ColumnFamilyDescriptor> descriptors;
  for (const char* name : kFamilyNames) {
    descriptors.emplace_back(name, rocksdb::ColumnFamilyOptions(options));
  }

  rocksdb::Status s;
  if (read_only) {
    // Secondary instances keep their own info log and need a scratch directory.
    RemoveStaleScratchDirs();
    std::string tmpl = "/tmp/pgtrail-reader-" + std::to_string(::getpid()) + "-XXXXXX";
    if (::mkdtemp(tmpl.data()) == nullptr) {
      return Status::IOError("cannot create a scratch directory in /tmp");
    }
    store->secondary_path_ = tmpl;
    options.max_open_files = -1;
    // Check that the families are ours before opening: a foreign RocksDB
    // database has other families (or only "default").
    std::vector<std::string> names;
    s = rocksdb::DB::ListColumnFamilies(options, path, &names);
    if (!s.ok()) return FromRocks(s, "cannot read store " + path);
    for (const char* name : kFamilyNames) {
      if (std::find(names.begin(), names.end(), name) == names.end()) {
        return Status::FailedPrecondition(path + " is not a pgtrail store");
      }
    }
    s = rocksdb::DB::OpenAsSecondary(options, path, store->secondary_path_, descriptors,
                                     &store->handles_, &store->db_);
  } else {
    if (!fresh) {
      // Only ever add our families to a database made of ours: a foreign
      // RocksDB database is refused untouched.
      std::vector<std::string> names;
      s = rocksdb::DB::ListColumnFamilies(options, path, &names);
      if (!s.ok()) return FromRocks(s, "cannot read store " + path);
      for (const std::string& name : names) {
        if (std::find(std::begin(kFamilyNames), std::end(kFamilyNames), name) ==
            std::end(kFamilyNames)) {
          return Status::FailedPrecondition(path + " is not a pgtrail store");
        }
      }
    }
    s = rocksdb::DB::Open(options, path, descriptors, &store->handles_, &store->db_);
  }
  if (!s.ok()) return FromRocks(s, "cannot open store " + path);

  if (!fresh && !read_only) {
    // A creation interrupted before its meta was written (kill -9 while
    // RocksDB made its families) left an empty database: finish creating it.
    ASSIGN_OR_RETURN(auto existing, store->Get(Family::kMeta, keys::kMetaKey));
    if (!existing) {
      bool empty = true;
      for (auto* handle : store->handles_) {
        std::unique_ptr<rocksdb::Iterator> it(store->db_->NewIterator(rocksdb::ReadOptions(), handle));
        it->SeekToFirst();
        empty = empty && !it->Valid();
      }
      if (!empty) return Status::FailedPrecondition(path + " is not a pgtrail store");
      fresh = true;
    }
  }
  if (fresh) {
    pb::StoreMeta meta;
    meta.set_magic(kStoreMagic);
    meta.set_format_version(kStoreFormatVersion);
    meta.set_created_at_us(NowUnixUs());
    rocksdb::WriteBatch batch;
    batch.Put(store->cf(Family::kMeta), keys::kMetaKey, meta.SerializeAsString());
    RETURN_IF_ERROR(store->Write(&batch, /*sync=*/true));
  }
  auto meta = store->ReadMeta();
  if (!meta.ok()) return meta.status();
  return store;
}

Store::~Store() {
  if (db_ != nullptr) {
    for (auto* h : handles_) db_->DestroyColumnFamilyHandle(h);
    db_->Close();
    delete db_;
  }
  if (!secondary_path_.empty()) {
    std::error_code ec;
    fs::remove_all(secondary_path_, ec);
  }
}

rocksdb::ColumnFamilyHandle* Store::cf(Family family) const {
  return handles_[static_cast<size_t>(family)];
}

Status Store::CatchUp() {
  if (!read_only_) return Status::OK();
  return FromRocks(db_->TryCatchUpWithPrimary(), "cannot catch up with the agent");
}

Status Store::FlushMemtables() {
  if (read_only_) return Status::OK();
  rocksdb::FlushOptions fo;
  fo.wait = true;
  std::vector<rocksdb::ColumnFamilyHandle*> all(handles_.begin(), handles_.end());
  return FromRocks(db_->Flush(fo, all), "store flush failed");
}

Status Store::Write(rocksdb::WriteBatch* batch, bool sync) {
  rocksdb::WriteOptions wo;
  wo.sync = sync;
  return FromRocks(db_->Write(wo, batch), "store write failed");
}

Status Store::WriteUnlogged(rocksdb::WriteBatch* batch, uint64_t* last_seqno) {
  rocksdb::WriteOptions wo;
  wo.disableWAL = true;
  RETURN_IF_ERROR(FromRocks(db_->Write(wo, batch), "store write failed"));
  *last_seqno = db_->GetLatestSequenceNumber();  // one writer: this batch's end
  return Status::OK();
}

uint64_t Store::FlushedMetaSeqno() const {
  return flushes_ ? flushes_->flushed_meta_seqno.load() : 0;
}

Result<std::optional<std::string>> Store::Get(Family family, std::string_view key) {
  std::string value;
  rocksdb::Status s =
      db_->Get(rocksdb::ReadOptions(), cf(family), rocksdb::Slice(key.data(), key.size()), &value);
  if (s.IsNotFound()) return std::optional<std::string>();
  if (!s.ok()) return FromRocks(s, "store read failed");
  return std::optional<std::string>(std::move(value));
}

Result<pb::StoreMeta> Store::ReadMeta() {
  ASSIGN_OR_RETURN(auto bytes, Get(Family::kMeta, keys::kMetaKey));
  pb::StoreMeta meta;
  if (!bytes || !meta.ParseFromString(*bytes) || meta.magic() != kStoreMagic) {
    return Status::FailedPrecondition(path_ + " is not a pgtrail store");
  }
  if (meta.format_version() < kStoreFormatVersion) {
    return Status::FailedPrecondition(
        "store " + path_ + " has format version " + std::to_string(meta.format_version()) +
        ", written by an earlier pgtrail; this one reads format " +
        std::to_string(kStoreFormatVersion) +
        "\nHINT: keep the earlier pgtrail to read it, and capture into a new store");
  }
  if (meta.format_version() > kStoreFormatVersion) {
    return Status::FailedPrecondition("store " + path_ + " has format version " +
                                      std::to_string(meta.format_version()) +
                                      ", this pgtrail reads up to " +
                                      std::to_string(kStoreFormatVersion));
  }
  return meta;
}

Result<std::optional<pb::TxnHeader>> Store::GetTxn(uint64_t commit_lsn) {
  ASSIGN_OR_RETURN(auto bytes, Get(Family::kTxn, keys::TxnKey(commit_lsn)));
  if (!bytes) return std::optional<pb::TxnHeader>();
  pb::TxnHeader h;
  RETURN_IF_ERROR(ParseStored(*bytes, "transaction", &h));
  return std::optional<pb::TxnHeader>(std::move(h));
}

Status Store::ForEachTxn(uint64_t from, uint64_t to,
                         const std::function<bool(const pb::TxnHeader&)>& fn) {
  std::unique_ptr<rocksdb::Iterator> it(db_->NewIterator(rocksdb::ReadOptions(), cf(Family::kTxn)));
  pb::TxnHeader h;
  for (it->Seek(keys::TxnKey(from)); it->Valid(); it->Next()) {
    uint64_t lsn;
    RETURN_IF_ERROR(keys::ParseTxnKey(std::string_view(it->key().data(), it->key().size()), &lsn));
    if (lsn > to) break;
    RETURN_IF_ERROR(ParseStored(std::string_view(it->value().data(), it->value().size()),
                                "transaction", &h));
    if (!fn(h)) break;
  }
  return FromRocks(it->status(), "store scan failed");
}

char* AppendChunkEntry(std::string* chunk, size_t size) {
  const size_t at = chunk->size();
  chunk->resize(at + 4 + size);
  char* p = chunk->data() + at;
  EncodeU32BE(p, static_cast<uint32_t>(size));
  return p + 4;
}

void AppendToChunk(std::string* chunk, const pb::Change& change) {
  char* p = AppendChunkEntry(chunk, change.ByteSizeLong());
  change.SerializeWithCachedSizesToArray(reinterpret_cast<uint8_t*>(p));
}

Status SplitChunk(std::string_view chunk, std::vector<std::string_view>* changes) {
  changes->clear();
  ByteReader r(chunk);
  while (!r.empty()) {
    uint32_t length;
    std::string_view bytes;
    RETURN_IF_ERROR(r.ReadU32BE("store: change chunk", &length));
    RETURN_IF_ERROR(r.ReadBytes("store: change chunk", length, &bytes));
    changes->push_back(bytes);
  }
  if (changes->empty()) return Status::Corruption("store: empty change chunk");
  return Status::OK();
}

namespace {

// Whether `bytes` contain one of `needles` (true when there are none).
bool ContainsAny(std::string_view bytes, const std::vector<std::string_view>& needles) {
  if (needles.empty()) return true;
  for (std::string_view n : needles) {
    if (::memmem(bytes.data(), bytes.size(), n.data(), n.size()) != nullptr) return true;
  }
  return false;
}

// Calls fn(seq, change) for each change of the chunks under `it` whose keys
// start with `prefix`, leaving `it` after them; false from fn stops. Chunks
// and changes that contain none of `any_of` (if given) are skipped unparsed.
Status ForEachChunkedChange(rocksdb::Iterator* it, const std::string& prefix,
                            const std::function<bool(uint32_t, const pb::Change&)>& fn,
                            bool* stopped, const std::vector<std::string_view>& any_of = {}) {
  std::vector<std::string_view> parts;
  // Each chunk's changes are parsed on an arena, let go of at the next chunk.
  // On the heap, parsing into one reused Change frees its tuples and their
  // values (Change::Clear() deletes submessages) and allocates them again:
  // ~45% of the instructions of a scan (callgrind, changelog grep --key).
  google::protobuf::Arena arena;
  *stopped = false;
  for (; it->Valid() && it->key().starts_with(prefix); it->Next()) {
    uint64_t lsn;
    uint32_t first;
    RETURN_IF_ERROR(keys::ParseChangeKey(ToView(it->key()), &lsn, &first));
    if (!ContainsAny(ToView(it->value()), any_of)) continue;
    RETURN_IF_ERROR(SplitChunk(ToView(it->value()), &parts));
    arena.Reset();
    pb::Change* change = google::protobuf::Arena::CreateMessage<pb::Change>(&arena);
    for (size_t i = 0; i < parts.size(); i++) {
      if (!ContainsAny(parts[i], any_of)) continue;
      RETURN_IF_ERROR(ParseStored(parts[i], "change", change));
      if (!fn(first + static_cast<uint32_t>(i), *change)) {
        *stopped = true;
        return Status::OK();
      }
    }
  }
  return Status::OK();
}

}  // namespace

Status Store::ForEachChange(uint64_t commit_lsn,
                            const std::function<bool(uint32_t, const pb::Change&)>& fn) {
  std::unique_ptr<rocksdb::Iterator> it(
      db_->NewIterator(rocksdb::ReadOptions(), cf(Family::kChange)));
  const std::string prefix = keys::TxnKey(commit_lsn);
  it->Seek(prefix);
  bool stopped;
  RETURN_IF_ERROR(ForEachChunkedChange(it.get(), prefix, fn, &stopped));
  return FromRocks(it->status(), "store scan failed");
}

Status Store::ForEachChangeInRange(
    uint64_t from, uint64_t to, const std::function<bool(const pb::TxnHeader&)>& want,
    const std::function<bool(const pb::TxnHeader&, uint32_t, const pb::Change&)>& fn,
    const std::vector<std::string_view>& any_of) {
  std::unique_ptr<rocksdb::Iterator> changes(
      db_->NewIterator(rocksdb::ReadOptions(), cf(Family::kChange)));
  bool positioned = false;
  Status inner;
  RETURN_IF_ERROR(ForEachTxn(from, to, [&](const pb::TxnHeader& h) {
    if (!want(h)) return true;
    const std::string prefix = keys::TxnKey(h.commit_lsn());
    // Forward only: seek when the cursor is before this transaction.
    if (!positioned || (changes->Valid() && changes->key().compare(prefix) < 0)) {
      changes->Seek(prefix);
      positioned = true;
    }
    bool stopped = false;
    inner = ForEachChunkedChange(
        changes.get(), prefix,
        [&](uint32_t seq, const pb::Change& change) { return fn(h, seq, change); }, &stopped,
        any_of);
    return inner.ok() && !stopped;
  }));
  RETURN_IF_ERROR(inner);
  return FromRocks(changes->status(), "store scan failed");
}

Result<pb::Change> Store::GetChange(uint64_t commit_lsn, uint32_t seq) {
  ChangeReader reader(this);
  pb::Change change;
  bool found = false;
  RETURN_IF_ERROR(reader.Get(commit_lsn, seq, &change, &found));
  if (!found) {
    return Status::Corruption("store: change " + std::to_string(seq) + " of transaction at " +
                              FormatLsn(commit_lsn) + " is missing");
  }
  return change;
}

ChangeReader::ChangeReader(Store* store)
    : store_(store),
      it_(store->db()->NewIterator(rocksdb::ReadOptions(), store->cf(Family::kChange))) {}

ChangeReader::~ChangeReader() = default;

Status ChangeReader::Load() {
  loaded_ = false;
  if (!it_->Valid()) return FromRocks(it_->status(), "store scan failed");
  RETURN_IF_ERROR(keys::ParseChangeKey(ToView(it_->key()), &chunk_lsn_, &chunk_first_));
  chunk_.assign(it_->value().data(), it_->value().size());
  RETURN_IF_ERROR(SplitChunk(chunk_, &parts_));
  loaded_ = true;
  return Status::OK();
}

Status ChangeReader::GetBytes(uint64_t commit_lsn, uint32_t seq, std::string_view* bytes,
                              bool* found) {
  *found = false;
  auto holds = [&] {
    return loaded_ && chunk_lsn_ == commit_lsn && chunk_first_ <= seq &&
           seq - chunk_first_ < parts_.size();
  };
  if (!holds()) {
    const std::string target = keys::ChangeKey(commit_lsn, seq);
    // Ascending reads: the wanted chunk is usually the next one.
    bool next_tried = false;
    if (loaded_ && it_->Valid() && it_->key().compare(target) < 0) {
      it_->Next();
      next_tried = it_->Valid() && it_->key().compare(target) <= 0;
      if (next_tried) {
        RETURN_IF_ERROR(Load());
        if (!holds()) next_tried = false;
      }
    }
    if (!next_tried) {
      it_->SeekForPrev(target);
      RETURN_IF_ERROR(Load());
      if (!loaded_ || !holds()) return Status::OK();
    }
  }
  *bytes = parts_[seq - chunk_first_];
  *found = true;
  return Status::OK();
}

Status ChangeReader::Get(uint64_t commit_lsn, uint32_t seq, pb::Change* out, bool* found) {
  std::string_view bytes;
  RETURN_IF_ERROR(GetBytes(commit_lsn, seq, &bytes, found));
  if (*found) RETURN_IF_ERROR(ParseStored(bytes, "change", out));
  return Status::OK();
}

namespace {

// A length-delimited field's bytes, in place (the stream reads an array).
bool ReadView(google::protobuf::io::CodedInputStream* in, std::string_view* view) {
  uint32_t length;
  if (!in->ReadVarint32(&length)) return false;
  *view = {};
  if (length == 0) return true;
  const void* data;
  int available;
  if (!in->GetDirectBufferPointer(&data, &available) ||
      static_cast<uint32_t>(available) < length) {
    return false;
  }
  *view = std::string_view(static_cast<const char*>(data), length);
  return in->Skip(static_cast<int>(length));
}

google::protobuf::io::CodedInputStream Stream(std::string_view bytes) {
  return google::protobuf::io::CodedInputStream(reinterpret_cast<const uint8_t*>(bytes.data()),
                                                static_cast<int>(bytes.size()));
}

}  // namespace

Status ParseChangeImage(std::string_view bytes, ChangeImage* out) {
  using google::protobuf::internal::WireFormatLite;
  out->op = 0;
  out->relid = 0;
  out->relation_lsn = 0;
  out->relation_seq = 0;
  out->kinds = {};
  out->values.clear();  // keeps its storage
  const Status corrupt = Status::Corruption("store: a change does not parse");
  google::protobuf::io::CodedInputStream in = Stream(bytes);
  while (const uint32_t tag = in.ReadTag()) {
    const int field = WireFormatLite::GetTagFieldNumber(tag);
    const WireFormatLite::WireType type = WireFormatLite::GetTagWireType(tag);
    uint64_t v = 0;
    std::string_view tuple;
    if (type == WireFormatLite::WIRETYPE_VARINT &&
        (field == pb::Change::kOpFieldNumber || field == pb::Change::kRelidFieldNumber ||
         field == pb::Change::kRelationLsnFieldNumber ||
         field == pb::Change::kRelationSeqFieldNumber)) {
      if (!in.ReadVarint64(&v)) return corrupt;
      if (field == pb::Change::kOpFieldNumber) out->op = static_cast<int>(v);
      if (field == pb::Change::kRelidFieldNumber) out->relid = static_cast<uint32_t>(v);
      if (field == pb::Change::kRelationLsnFieldNumber) out->relation_lsn = v;
      if (field == pb::Change::kRelationSeqFieldNumber) {
        out->relation_seq = static_cast<uint32_t>(v);
      }
    } else if (type == WireFormatLite::WIRETYPE_LENGTH_DELIMITED &&
               field == pb::Change::kNewTupleFieldNumber) {
      if (!ReadView(&in, &tuple)) return corrupt;
      google::protobuf::io::CodedInputStream sub = Stream(tuple);
      while (const uint32_t t = sub.ReadTag()) {
        const int f = WireFormatLite::GetTagFieldNumber(t);
        std::string_view value;
        if (WireFormatLite::GetTagWireType(t) == WireFormatLite::WIRETYPE_LENGTH_DELIMITED &&
            (f == pb::Tuple::kKindsFieldNumber || f == pb::Tuple::kValuesFieldNumber)) {
          if (!ReadView(&sub, &value)) return corrupt;
          if (f == pb::Tuple::kKindsFieldNumber) out->kinds = value;
          if (f == pb::Tuple::kValuesFieldNumber) out->values.push_back(value);
        } else if (!WireFormatLite::SkipField(&sub, t)) {
          return corrupt;
        }
      }
      if (!sub.ConsumedEntireMessage()) return corrupt;
    } else if (!WireFormatLite::SkipField(&in, tag)) {
      return corrupt;
    }
  }
  if (!in.ConsumedEntireMessage()) return corrupt;
  return Status::OK();
}

Result<std::optional<uint64_t>> Store::FirstCommitLaterThan(int64_t t_us) {
  std::unique_ptr<rocksdb::Iterator> it(db_->NewIterator(rocksdb::ReadOptions(), cf(Family::kTime)));
  // The first key whose running-max time is > t_us.
  it->Seek(keys::TimeKey(t_us, UINT64_MAX));
  if (!it->Valid()) {
    RETURN_IF_ERROR(FromRocks(it->status(), "store scan failed"));
    return std::optional<uint64_t>();
  }
  int64_t t;
  uint64_t lsn;
  RETURN_IF_ERROR(
      keys::ParseTimeKey(std::string_view(it->key().data(), it->key().size()), &t, &lsn));
  if (t <= t_us) return std::optional<uint64_t>();  // cannot happen with UINT64_MAX; defensive
  return std::optional<uint64_t>(lsn);
}

Result<std::optional<pb::TxnHeader>> Store::LastTxnBefore(uint64_t lsn, bool inclusive) {
  std::unique_ptr<rocksdb::Iterator> it(db_->NewIterator(rocksdb::ReadOptions(), cf(Family::kTxn)));
  it->SeekForPrev(keys::TxnKey(lsn));
  if (it->Valid() && !inclusive) {
    uint64_t found;
    RETURN_IF_ERROR(
        keys::ParseTxnKey(std::string_view(it->key().data(), it->key().size()), &found));
    if (found == lsn) it->Prev();
  }
  if (!it->Valid()) {
    RETURN_IF_ERROR(FromRocks(it->status(), "store scan failed"));
    return std::optional<pb::TxnHeader>();
  }
  pb::TxnHeader h;
  RETURN_IF_ERROR(
      ParseStored(std::string_view(it->value().data(), it->value().size()), "transaction", &h));
  return std::optional<pb::TxnHeader>(std::move(h));
}

Result<std::optional<pb::Relation>> Store::GetRelation(uint32_t relid, uint64_t lsn,
                                                       uint32_t seq) {
  std::unique_ptr<rocksdb::Iterator> it(
      db_->NewIterator(rocksdb::ReadOptions(), cf(Family::kRelation)));
  it->SeekForPrev(keys::RelationKey(relid, lsn, seq));
  if (!it->Valid()) {
    RETURN_IF_ERROR(FromRocks(it->status(), "store scan failed"));
    return std::optional<pb::Relation>();
  }
  uint32_t found_relid;
  uint64_t found_lsn;
  uint32_t found_seq;
  RETURN_IF_ERROR(keys::ParseRelationKey(std::string_view(it->key().data(), it->key().size()),
                                         &found_relid, &found_lsn, &found_seq));
  if (found_relid != relid) return std::optional<pb::Relation>();
  pb::Relation rel;
  RETURN_IF_ERROR(
      ParseStored(std::string_view(it->value().data(), it->value().size()), "relation", &rel));
  return std::optional<pb::Relation>(std::move(rel));
}

Result<std::vector<Store::RelationVersion>> Store::RelationVersions(uint32_t relid) {
  std::vector<RelationVersion> out;
  std::unique_ptr<rocksdb::Iterator> it(
      db_->NewIterator(rocksdb::ReadOptions(), cf(Family::kRelation)));
  for (it->Seek(keys::RelationKey(relid, 0, 0)); it->Valid(); it->Next()) {
    RelationVersion v;
    uint32_t found_relid;
    RETURN_IF_ERROR(keys::ParseRelationKey(std::string_view(it->key().data(), it->key().size()),
                                           &found_relid, &v.lsn, &v.seq));
    if (found_relid != relid) break;
    RETURN_IF_ERROR(ParseStored(std::string_view(it->value().data(), it->value().size()),
                                "relation", &v.rel));
    out.push_back(std::move(v));
  }
  RETURN_IF_ERROR(FromRocks(it->status(), "store scan failed"));
  return out;
}

Result<std::vector<pb::Relation>> Store::RelationsAt(uint64_t lsn) {
  std::vector<pb::Relation> out;
  std::unique_ptr<rocksdb::Iterator> it(
      db_->NewIterator(rocksdb::ReadOptions(), cf(Family::kRelation)));
  pb::Relation rel;
  for (it->SeekToFirst(); it->Valid(); it->Next()) {
    uint32_t relid;
    uint64_t version_lsn;
    uint32_t version_seq;
    RETURN_IF_ERROR(keys::ParseRelationKey(std::string_view(it->key().data(), it->key().size()),
                                           &relid, &version_lsn, &version_seq));
    if (version_lsn > lsn) continue;
    RETURN_IF_ERROR(
        ParseStored(std::string_view(it->value().data(), it->value().size()), "relation", &rel));
    if (!out.empty() && out.back().relid() == relid) {
      out.back() = rel;  // a newer version of the same relation
    } else {
      out.push_back(rel);
    }
  }
  RETURN_IF_ERROR(FromRocks(it->status(), "store scan failed"));
  return out;
}

Result<std::vector<pb::Snapshot>> Store::ListSnapshots(bool include_incomplete) {
  std::vector<pb::Snapshot> out;
  std::unique_ptr<rocksdb::Iterator> it(
      db_->NewIterator(rocksdb::ReadOptions(), cf(Family::kSnapshot)));
  for (it->SeekToFirst(); it->Valid(); it->Next()) {
    pb::Snapshot snap;
    RETURN_IF_ERROR(
        ParseStored(std::string_view(it->value().data(), it->value().size()), "snapshot", &snap));
    if (snap.complete() || include_incomplete) out.push_back(std::move(snap));
  }
  RETURN_IF_ERROR(FromRocks(it->status(), "store scan failed"));
  return out;
}

Result<std::vector<Store::Mark>> Store::ListMarks() {
  ASSIGN_OR_RETURN(pb::StoreMeta meta, ReadMeta());
  std::vector<Mark> marks;
  std::unique_ptr<rocksdb::Iterator> it(db_->NewIterator(rocksdb::ReadOptions(), cf(Family::kMark)));
  for (it->SeekToFirst(); it->Valid(); it->Next()) {
    Mark m;
    RETURN_IF_ERROR(keys::ParseMarkKey(std::string_view(it->key().data(), it->key().size()),
                                       &m.name, &m.commit_lsn, &m.seq));
    // Only marks of durable transactions (a header, within the resume LSN).
    if (m.commit_lsn > meta.last_commit_lsn()) continue;
    ASSIGN_OR_RETURN(auto txn, GetTxn(m.commit_lsn));
    if (!txn) continue;
    m.txn = std::move(*txn);
    marks.push_back(std::move(m));
  }
  RETURN_IF_ERROR(FromRocks(it->status(), "store scan failed"));
  std::sort(marks.begin(), marks.end(), [](const Mark& a, const Mark& b) {
    return a.commit_lsn != b.commit_lsn ? a.commit_lsn < b.commit_lsn : a.seq < b.seq;
  });
  return marks;
}

Result<std::optional<pb::Tuple>> Store::PreviousImage(uint32_t relid, std::string_view rowkey,
                                                      uint64_t lsn, uint32_t seq,
                                                      const PendingChanges& pending) {
  using Image = std::optional<pb::Tuple>;
  // The newest complete snapshot at or before the position bounds the search.
  ASSIGN_OR_RETURN(auto snapshots, ListSnapshots());
  const pb::Snapshot* snap = nullptr;
  for (const auto& s : snapshots) {
    if (s.consistent_lsn() <= lsn) snap = &s;
  }
  const uint64_t floor_lsn = snap != nullptr ? snap->consistent_lsn() : 0;

  // Last row-index entry of this key before the position.
  std::unique_ptr<rocksdb::Iterator> it(db_->NewIterator(rocksdb::ReadOptions(), cf(Family::kRowIdx)));
  const std::string target = keys::RowIdxKey(relid, rowkey, lsn, seq);
  it->SeekForPrev(target);
  if (it->Valid() && it->key().compare(target) == 0) it->Prev();
  uint64_t entry_lsn = 0;
  uint32_t entry_seq = 0;
  char op = 0;
  if (it->Valid()) {
    uint32_t found_relid;
    std::string_view found_key;
    RETURN_IF_ERROR(keys::ParseRowIdxKey(std::string_view(it->key().data(), it->key().size()),
                                         &found_relid, &found_key, &entry_lsn, &entry_seq));
    if (found_relid == relid && found_key == rowkey && entry_lsn >= floor_lsn &&
        it->value().size() == 1) {
      op = it->value()[0];
    }
  }
  RETURN_IF_ERROR(FromRocks(it->status(), "store scan failed"));

  // A TRUNCATE after that entry (or after the snapshot) clears the row.
  uint64_t after_lsn = op != 0 ? entry_lsn : floor_lsn;
  uint32_t after_seq = op != 0 ? entry_seq : 0;
  std::unique_ptr<rocksdb::Iterator> trunc(
      db_->NewIterator(rocksdb::ReadOptions(), cf(Family::kTruncate)));
  trunc->SeekForPrev(keys::TruncateKey(relid, lsn, seq));
  if (trunc->Valid()) {
    uint32_t t_relid;
    uint64_t t_lsn;
    uint32_t t_seq;
    RETURN_IF_ERROR(keys::ParseTruncateKey(
        std::string_view(trunc->key().data(), trunc->key().size()), &t_relid, &t_lsn, &t_seq));
    const bool before_pos = t_lsn < lsn || (t_lsn == lsn && t_seq < seq);
    const bool after_entry = t_lsn > after_lsn || (t_lsn == after_lsn && t_seq >= after_seq);
    if (t_relid == relid && before_pos && after_entry && t_lsn >= floor_lsn) return Image();
  }

  if (op == static_cast<char>(keys::RowOp::kDelete)) return Image();
  if (op == static_cast<char>(keys::RowOp::kUpsert)) {
    pb::Change change;
    bool found = false;
    if (pending) RETURN_IF_ERROR(pending(entry_lsn, entry_seq, &change, &found));
    if (!found) {
      ASSIGN_OR_RETURN(change, GetChange(entry_lsn, entry_seq));
    }
    return Image(std::move(*change.mutable_new_tuple()));
  }
  if (snap == nullptr) return Image();
  ASSIGN_OR_RETURN(auto bytes, Get(Family::kSnapRow, keys::SnapRowKey(snap->id(), relid, rowkey, -1)));
  if (!bytes) return Image();
  pb::Tuple tuple;
  RETURN_IF_ERROR(ParseStored(*bytes, "snapshot row", &tuple));
  return Image(std::move(tuple));
}

}  // namespace pgtrail
