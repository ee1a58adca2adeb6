// The worker's Prometheus metrics (impulse_worker_*), on their own port.
// Thread-safe.
#pragma once

#include <prometheus/counter.h>
#include <prometheus/gauge.h>
#include <prometheus/histogram.h>
#include <prometheus/registry.h>

#include <memory>
#include <string>

#include "impulse/metrics_endpoint.h"
#include "impulse/status.h"

namespace impulse::worker {

class WorkerMetrics {
 public:
  WorkerMetrics();

  // Serves /metrics on HOST:PORT (port 0 = any free port).
  Status Expose(const std::string& address) { return endpoint_.Serve(address, registry_); }
  int ExposedPort() const { return endpoint_.port(); }

  // outcome: "succeeded" | "failed" | "cancelled" | "lost"
  void ObserveTask(const std::string& kind, const std::string& outcome, double seconds);
  void SetBusy(bool busy);

 private:
  std::shared_ptr<prometheus::Registry> registry_;
  MetricsEndpoint endpoint_;
  prometheus::Family<prometheus::Counter>& tasks_;
  prometheus::Family<prometheus::Histogram>& task_seconds_;
  prometheus::Gauge& busy_;
};

}  // namespace impulse::worker
