// CostTables: which measured cost table a job's estimate uses
// (DESIGN.md, "Compute limits"; impulse/estimate/compute_estimate.h).
//
// Workers report their table when they register (WorkerInfo.cost_table);
// RegisterWorker caches it in the Store per CPU model and thread count.
// Choosing one:
//   1. the live workers (seen within live_ms) that run train tasks, each
//      with its reported table or else the cached one for its CPU model and
//      thread count; of these, the slowest (estimate::ReferenceSeconds), so
//      a job is refused rather than withdrawn wherever it lands;
//   2. no live worker has one: the slowest cached table;
//   3. nothing cached (or the Store unreachable): DefaultCostTable().
//
// Thread-safe: holds no state; `store` and `clock` must outlive it.
#pragma once

#include <cstdint>

#include "coordinator/clock.h"
#include "coordinator/store.h"
#include "impulse/estimate/compute_estimate.h"

namespace impulse::coordinator {

class CostTables {
 public:
  CostTables(Store& store, Clock& clock, int64_t live_ms)
      : store_(store), clock_(clock), live_ms_(live_ms) {}

  // The table to estimate a job with now; never fails (step 3).
  estimate::CostTable ForEstimates();

 private:
  Store& store_;
  Clock& clock_;
  const int64_t live_ms_;
};

}  // namespace impulse::coordinator
