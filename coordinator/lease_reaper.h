// LeaseReaper: a background thread that, every interval, requeues tasks
// whose leases lapsed (Store::RequeueExpired) and refreshes the gauges that
// are read from the Store (queue depth, running tasks, workers connected,
// projects' compute used and remaining).
//
// Several coordinators may run one each: RequeueExpired is one atomic Store
// transition, so a lease is requeued once whoever sees it first.
#pragma once

#include <condition_variable>
#include <mutex>
#include <thread>

#include "coordinator/clock.h"
#include "coordinator/metrics.h"
#include "coordinator/store.h"

namespace impulse::coordinator {

class LeaseReaper {
 public:
  // All references must outlive the reaper. Starts its thread at once.
  LeaseReaper(Store& store, Clock& clock, Metrics& metrics, int64_t interval_ms,
              int64_t worker_seen_window_ms);
  ~LeaseReaper();  // stops and joins the thread

  LeaseReaper(const LeaseReaper&) = delete;
  LeaseReaper& operator=(const LeaseReaper&) = delete;

  // One pass, as the thread runs it; for tests.
  void RunOnce();

 private:
  void Loop();

  Store& store_;
  Clock& clock_;
  Metrics& metrics_;
  const int64_t interval_ms_;
  const int64_t worker_seen_window_ms_;

  std::mutex mu_;
  std::condition_variable wake_;
  bool stopping_ = false;  // guarded by mu_
  std::thread thread_;
};

}  // namespace impulse::coordinator
