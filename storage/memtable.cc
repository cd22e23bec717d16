#include "storage/memtable.h"

#include <atomic>
#include <cstdint>
#include <deque>
#include <mutex>
#include <new>
#include <vector>

namespace pgtrail {
namespace {

using rocksdb::KeyHandle;
using rocksdb::MemTableRep;
using rocksdb::Slice;

// 4^12 nodes is far beyond any memtable.
constexpr int kMaxHeight = 12;

// A node is its next pointers, highest level first, followed by the memtable
// entry. A Node* points at the level-0 pointer: the entry starts right after
// it whatever the node's height, and level i is i slots before it.
struct Node {
  std::atomic<Node*>& Slot(int level) { return (&next0)[-level]; }
  Node* Next(int level) { return Slot(level).load(std::memory_order_acquire); }
  const char* Key() const { return reinterpret_cast<const char*>(&next0 + 1); }

  // Until the node is linked, its level-0 slot holds its height.
  void StashHeight(int height) {
    next0.store(reinterpret_cast<Node*>(static_cast<uintptr_t>(height)),
                std::memory_order_relaxed);
  }
  int UnstashHeight() const {
    return static_cast<int>(reinterpret_cast<uintptr_t>(next0.load(std::memory_order_relaxed)));
  }

  std::atomic<Node*> next0;
};

class FingerSkipList : public MemTableRep {
 public:
  FingerSkipList(const KeyComparator& compare, rocksdb::Allocator* allocator)
      : MemTableRep(allocator), compare_(compare) {
    for (auto& slot : head_slots_) slot.store(nullptr, std::memory_order_relaxed);
    for (Node*& f : finger_) f = head();
  }

  KeyHandle Allocate(const size_t len, char** buf) override {
    int height = 1;
    while (height < kMaxHeight && (NextRandom() & 3) == 0) height++;
    const size_t align = alignof(std::atomic<Node*>);
    const size_t links = sizeof(std::atomic<Node*>) * static_cast<size_t>(height);
    char* raw = nullptr;
    MemTableRep::Allocate(links + len + align - 1, &raw);  // the arena's unaligned end
    const uintptr_t start = (reinterpret_cast<uintptr_t>(raw) + align - 1) & ~(align - 1);
    Node* x = reinterpret_cast<Node*>(start + links - sizeof(std::atomic<Node*>));
    for (int i = 1; i < height; i++) new (&x->Slot(i)) std::atomic<Node*>(nullptr);
    new (&x->next0) std::atomic<Node*>(nullptr);
    x->StashHeight(height);
    *buf = const_cast<char*>(x->Key());
    return x;
  }

  void Insert(KeyHandle handle) override { InsertKey(handle); }

  // One writer at a time (RocksDB's contract without concurrent inserts).
  bool InsertKey(KeyHandle handle) override {
    Node* x = static_cast<Node*>(handle);
    const int height = x->UnstashHeight();
    const char* key = x->Key();
    const int max_height = max_height_.load(std::memory_order_relaxed);

    // finger_[i] is the last node before the previous key on level i. If the
    // new key comes after the previous one, climb until a level's successor
    // is not before it: from that level up, the finger brackets the new key
    // too, and the search below starts there. Otherwise search from the head.
    int cmp0 = 1;  // the key against its level-0 successor's (1: there is none)
    int from = max_height - 1;  // the highest level still to search
    Node* before = head();
    if (last_ != nullptr && compare_(last_->Key(), key) < 0) {
      int level = 0;
      for (; level < max_height; level++) {
        Node* next = finger_[level]->Next(level);
        const int c = next == nullptr ? 1 : compare_(next->Key(), key);
        if (level == 0) cmp0 = c;
        if (c >= 0) break;
      }
      from = level < max_height ? level - 1 : max_height - 1;
      before = finger_[level < max_height ? level : max_height - 1];
    }
    for (int i = from; i >= 0; i--) {
      for (;;) {
        Node* next = before->Next(i);
        const int c = next == nullptr ? 1 : compare_(next->Key(), key);
        if (i == 0) cmp0 = c;
        if (c >= 0) break;
        before = next;
      }
      finger_[i] = before;
    }
    if (cmp0 == 0) {  // this key and sequence number are already here
      last_ = finger_[0]->Next(0);  // the finger stays before last_
      return false;
    }

    if (height > max_height) max_height_.store(height, std::memory_order_relaxed);
    for (int i = 0; i < height; i++) {
      // Levels at or above max_height have finger_[i] == head().
      x->Slot(i).store(finger_[i]->Slot(i).load(std::memory_order_relaxed),
                       std::memory_order_relaxed);
      finger_[i]->Slot(i).store(x, std::memory_order_release);
      finger_[i] = x;
    }
    last_ = x;
    return true;
  }

  bool Contains(const char* key) const override {
    Node* x = FindGreaterOrEqual(key);
    return x != nullptr && compare_(x->Key(), key) == 0;
  }

  size_t ApproximateMemoryUsage() override { return 0; }  // all of it is in the arena

  class Iter : public MemTableRep::Iterator {
   public:
    Iter(const FingerSkipList* list, bool pooled) : list_(list), pooled_(pooled) {}
    ~Iter() override {
      if (pooled_) list_->Release(this);
    }
    // The storage belongs to the list's pool (or is thread-local); RocksDB
    // deletes iterators it did not place in its arena.
    static void operator delete(void*) {}

    bool Valid() const override { return node_ != nullptr; }
    const char* key() const override { return node_->Key(); }
    void Next() override { node_ = node_->Next(0); }
    void Prev() override { node_ = list_->FindLessThan(node_->Key()); }
    void Seek(const Slice& internal_key, const char* memtable_key) override {
      node_ = memtable_key != nullptr ? list_->FindGreaterOrEqual(memtable_key)
                                      : list_->FindGreaterOrEqual(internal_key);
    }
    void SeekForPrev(const Slice& internal_key, const char* memtable_key) override {
      Seek(internal_key, memtable_key);
      if (node_ == nullptr) {
        SeekToLast();
      } else if (list_->compare_(node_->Key(), internal_key) > 0) {
        Prev();
      }
    }
    void SeekToFirst() override { node_ = list_->head()->Next(0); }
    void SeekToLast() override { node_ = list_->FindLast(); }

   private:
    const FingerSkipList* list_;
    const bool pooled_;
    Node* node_ = nullptr;
  };

  // The iterator lives in a pool the list owns: RocksDB either deletes it or,
  // when it asked for arena placement, only runs its destructor; both return
  // the slot. (Arena is not part of RocksDB's public headers.)
  MemTableRep::Iterator* GetIterator(rocksdb::Arena* /*arena*/) override {
    void* slot;
    {
      std::lock_guard<std::mutex> lock(pool_mu_);
      if (free_.empty()) {
        pool_.emplace_back();
        free_.push_back(&pool_.back());
      }
      slot = free_.back();
      free_.pop_back();
    }
    return new (slot) Iter(this, /*pooled=*/true);
  }

  // Called without an arena only by MemTableRep::Get, which never frees it:
  // one iterator per thread serves every such lookup.
  MemTableRep::Iterator* GetDynamicPrefixIterator(rocksdb::Arena* arena) override {
    if (arena != nullptr) return GetIterator(arena);
    thread_local IterSlot lookup;
    return new (&lookup) Iter(this, /*pooled=*/false);
  }

 private:
  struct IterSlot {
    alignas(Iter) unsigned char bytes[sizeof(Iter)];
  };

  Node* head() const { return reinterpret_cast<Node*>(&head_slots_[kMaxHeight - 1]); }

  uint32_t NextRandom() {  // xorshift32: heights need no better
    rnd_ ^= rnd_ << 13;
    rnd_ ^= rnd_ >> 17;
    rnd_ ^= rnd_ << 5;
    return rnd_;
  }

  // The last node before key (head() if none). Key is the entry
  // (const char*) or an internal key (Slice); compare_ takes both.
  template <typename Key>
  Node* LastBefore(const Key& key) const {
    Node* x = head();
    for (int level = max_height_.load(std::memory_order_relaxed) - 1; level >= 0; level--) {
      for (Node* next = x->Next(level); next != nullptr && compare_(next->Key(), key) < 0;
           next = x->Next(level)) {
        x = next;
      }
    }
    return x;
  }

  template <typename Key>
  Node* FindGreaterOrEqual(const Key& key) const {
    return LastBefore(key)->Next(0);
  }

  Node* FindLessThan(const char* key) const {
    Node* x = LastBefore(key);
    return x == head() ? nullptr : x;
  }

  Node* FindLast() const {
    Node* x = head();
    for (int level = max_height_.load(std::memory_order_relaxed) - 1; level >= 0; level--) {
      for (Node* next = x->Next(level); next != nullptr; next = x->Next(level)) x = next;
    }
    return x == head() ? nullptr : x;
  }

  void Release(Iter* it) const {
    std::lock_guard<std::mutex> lock(pool_mu_);
    free_.push_back(reinterpret_cast<IterSlot*>(it));
  }

  const KeyComparator& compare_;
  // The head node's links: level i is head_slots_[kMaxHeight - 1 - i].
  mutable std::atomic<Node*> head_slots_[kMaxHeight];
  std::atomic<int> max_height_{1};
  // Writer state.
  Node* finger_[kMaxHeight];
  Node* last_ = nullptr;
  uint32_t rnd_ = 0x9e3779b9u;
  // Iterator pool.
  mutable std::mutex pool_mu_;
  mutable std::deque<IterSlot> pool_;
  mutable std::vector<IterSlot*> free_;
};

class FingerSkipListFactory : public rocksdb::MemTableRepFactory {
 public:
  const char* Name() const override { return "PgtrailFingerSkipList"; }
  using MemTableRepFactory::CreateMemTableRep;
  MemTableRep* CreateMemTableRep(const MemTableRep::KeyComparator& compare,
                                 rocksdb::Allocator* allocator, const rocksdb::SliceTransform*,
                                 rocksdb::Logger*) override {
    return new FingerSkipList(compare, allocator);
  }
};

}  // namespace

std::shared_ptr<rocksdb::MemTableRepFactory> NewFingerSkipListFactory() {
  return std::make_shared<FingerSkipListFactory>();
}

}  // namespace pgtrail
