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
// Then the table's stage scales: what finished tasks really took over what
// that table estimated for them (Learn), a running mean of the log ratio
// per stage, each sample weighted 0.3 (about the last five tasks count) and
// clamped to a factor of 4, the scale to within 0.5 to 2. Tables price
// work on the worker's own code path, but not a slower phase of a shared
// machine, the I/O of a busy coordinator or what a layer-kind model misses;
// finished tasks show all of it.
//
// Thread-safe: holds no state; `store` and `clock` must outlive it.
#pragma once

#include <cstdint>
#include <string>

#include "coordinator/clock.h"
#include "coordinator/store.h"
#include "impulse/estimate/compute_estimate.h"

namespace impulse::coordinator {

class CostTables {
 public:
  CostTables(Store& store, Clock& clock, int64_t live_ms)
      : store_(store), clock_(clock), live_ms_(live_ms) {}

  // The table to estimate a job with now, with its learned stage scales;
  // never fails (step 3; scales of 1 when the Store cannot say).
  estimate::CostTable ForEstimates();

  // One finished task of `stage`: it took `actual_s` where the table
  // named `source` estimated `estimated_s` without scales. Ignores
  // non-positive times; Store errors are returned.
  Status Learn(const std::string& source, v1::TaskKind stage, double actual_s, double estimated_s);

 private:
  Store& store_;
  Clock& clock_;
  const int64_t live_ms_;
};

}  // namespace impulse::coordinator
