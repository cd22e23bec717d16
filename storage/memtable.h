// The store's memtable: a skip list that starts each insertion from the
// previous one (a finger search).
//
// Why not RocksDB's own skip list: Debian 12's librocksdb is built with
// assertions enabled, and every insertion into its InlineSkipList re-checks
// the whole search path, about 25 key comparisons per entry whatever the
// order of the keys (a quarter of the agent's instructions while catching up).
// The capture writes each batch in key order (row-index entries sorted, every
// other family keyed by commit LSN), so here an insertion costs one or two
// comparisons when it follows the previous key closely, and O(log distance)
// otherwise.
//
// Concurrency is RocksDB's contract for memtables that do not support
// concurrent inserts: one writer at a time
// (DBOptions::allow_concurrent_memtable_write = false), any number of
// readers alongside it, lock-free. A node is fully written before it is published with a
// release store; readers follow pointers with acquire loads.
#ifndef PGTRAIL_STORAGE_MEMTABLE_H_
#define PGTRAIL_STORAGE_MEMTABLE_H_

#include <rocksdb/memtablerep.h>

#include <memory>

namespace pgtrail {

std::shared_ptr<rocksdb::MemTableRepFactory> NewFingerSkipListFactory();

}  // namespace pgtrail

#endif  // PGTRAIL_STORAGE_MEMTABLE_H_
