// Sorting that takes advantage of ascending runs.
#ifndef PGTRAIL_AGENT_SORT_RUNS_H_
#define PGTRAIL_AGENT_SORT_RUNS_H_

#include <algorithm>
#include <cstddef>
#include <vector>

namespace pgtrail {

// Sorts v by less, stably. The elements are split into their ascending runs
// (one pass); a few runs are merged pairwise, in O(n log runs), and many are
// left to std::stable_sort. A large transaction's row-index entries come in
// a few runs (serial keys in text order: 1-9, 10-99, ...), where this makes
// a third of stable_sort's comparisons (tests/unit/sort_runs_test.cc).
// runs is scratch space, kept by the caller to reuse its memory.
template <typename T, typename Less>
void SortRuns(std::vector<T>* v, Less less, std::vector<size_t>* runs) {
  const size_t n = v->size();
  runs->assign(1, 0);
  for (size_t i = 1; i < n; i++) {
    if (less((*v)[i], (*v)[i - 1])) runs->push_back(i);
  }
  runs->push_back(n);
  if (runs->size() > 2 + n / 64) {
    std::stable_sort(v->begin(), v->end(), less);
    return;
  }
  const auto at = [v](size_t i) { return v->begin() + static_cast<std::ptrdiff_t>(i); };
  std::vector<size_t>& b = *runs;  // run i is [b[i], b[i + 1])
  while (b.size() > 2) {
    size_t kept = 1;
    for (size_t r = 0; r + 2 < b.size(); r += 2) {
      std::inplace_merge(at(b[r]), at(b[r + 1]), at(b[r + 2]), less);
      b[kept++] = b[r + 2];
    }
    if (b.size() % 2 == 0) b[kept++] = b.back();  // an odd run out, unmerged
    b.resize(kept);
  }
}

}  // namespace pgtrail

#endif  // PGTRAIL_AGENT_SORT_RUNS_H_
