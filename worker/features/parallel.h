// ParallelFor: the feature pipeline's one way to spread work over threads.
//
// Work is handed out in blocks of `grain` indices from a shared counter, so
// uneven items (a 4000x3000 JPEG beside a 28x28 IDX image) balance out. The
// calling thread works too; `threads - 1` helpers are started per call (a few
// tens of microseconds, small beside the blocks this is used for).
//
// An exception escaping `body` on any thread is rethrown on the caller after
// every thread has joined (the first one wins); the remaining blocks are
// skipped.
#pragma once

#include <algorithm>
#include <atomic>
#include <cstddef>
#include <exception>
#include <mutex>
#include <thread>
#include <vector>

namespace impulse::worker::features {

// Calls body(begin, end, thread_index) over disjoint [begin, end) ranges that
// cover [0, n). thread_index is in [0, threads), stable for one thread during
// the call, so per-thread scratch can be indexed by it.
template <typename Body>
void ParallelFor(int threads, size_t n, size_t grain, Body&& body) {
  if (n == 0) return;
  grain = std::max<size_t>(grain, 1);
  const size_t blocks = (n + grain - 1) / grain;
  const int workers = static_cast<int>(std::clamp<size_t>(threads, 1, blocks));
  if (workers == 1) {
    body(size_t{0}, n, 0);
    return;
  }
  std::atomic<size_t> next{0};
  std::atomic<bool> failed{false};
  std::exception_ptr error;
  std::mutex error_mu;
  auto run = [&](int thread_index) {
    try {
      while (!failed.load(std::memory_order_relaxed)) {
        const size_t block = next.fetch_add(1, std::memory_order_relaxed);
        if (block >= blocks) break;
        const size_t begin = block * grain;
        body(begin, std::min(n, begin + grain), thread_index);
      }
    } catch (...) {
      std::lock_guard<std::mutex> lock(error_mu);
      if (!error) error = std::current_exception();
      failed = true;
    }
  };
  std::vector<std::thread> helpers;
  helpers.reserve(workers - 1);
  for (int t = 1; t < workers; ++t) helpers.emplace_back(run, t);
  run(0);
  for (std::thread& helper : helpers) helper.join();
  if (error) std::rethrow_exception(error);
}

}  // namespace impulse::worker::features
