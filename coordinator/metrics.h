// The coordinator's Prometheus metrics, served on their own HTTP port.
//
// Names follow Prometheus conventions (impulse_*_total counters, *_seconds
// histograms); docs/DEPLOY.md lists them with their meaning.
// Thread-safe: every method may be called from any thread.
#pragma once

#include <prometheus/counter.h>
#include <prometheus/family.h>
#include <prometheus/gauge.h>
#include <prometheus/histogram.h>
#include <prometheus/registry.h>

#include <chrono>
#include <memory>
#include <string>

#include "coordinator/store.h"
#include "impulse/metrics_endpoint.h"
#include "impulse/status.h"

namespace impulse::coordinator {

class Metrics {
 public:
  // The registry is the process's one metrics singleton; it is owned here
  // and handed to whoever exposes it.
  Metrics();

  // Serves /metrics on `address` ("HOST:PORT", port 0 = any free port).
  Status Expose(const std::string& address) { return endpoint_.Serve(address, registry_); }
  // The bound port after Expose(); 0 before.
  int ExposedPort() const { return endpoint_.port(); }

  void ObserveRpc(const std::string& method, StatusCode code, double seconds);
  // Also observes actual / estimated compute of a job this completion
  // finished successfully.
  void ObserveCompletion(const CompletionEffect& effect, int64_t finished_ms);
  // reason: "job_limit" | "budget" | "concurrency"
  void ObserveRefusal(const std::string& project, const std::string& reason);
  void ObserveWithdrawal(const std::string& project);
  // Worker-seconds this coordinator charged to the project.
  void ObserveCharge(const std::string& project, double seconds);
  // Usage of the project's current budget period (read from the Store).
  void SetProjectCompute(const v1::Project& project);
  void ObserveExpiredLease(bool requeued);
  void SetQueueStats(const QueueStats& stats);
  void SetWorkersConnected(const std::string& kind, double count);

  std::shared_ptr<prometheus::Registry> registry() const { return registry_; }

 private:
  std::shared_ptr<prometheus::Registry> registry_;
  MetricsEndpoint endpoint_;
  prometheus::Family<prometheus::Counter>& rpcs_;
  prometheus::Family<prometheus::Histogram>& rpc_seconds_;
  prometheus::Family<prometheus::Gauge>& queue_depth_;
  prometheus::Family<prometheus::Gauge>& tasks_;
  prometheus::Family<prometheus::Counter>& tasks_finished_;
  prometheus::Family<prometheus::Histogram>& task_seconds_;
  prometheus::Family<prometheus::Counter>& leases_expired_;
  prometheus::Family<prometheus::Gauge>& workers_connected_;
  prometheus::Family<prometheus::Counter>& project_charged_;
  prometheus::Family<prometheus::Gauge>& project_used_;
  prometheus::Family<prometheus::Gauge>& project_remaining_;
  prometheus::Family<prometheus::Counter>& jobs_refused_;
  prometheus::Family<prometheus::Counter>& jobs_withdrawn_;
  prometheus::Family<prometheus::Histogram>& compute_ratio_;
};

// Times one RPC and records it when it goes out of scope.
class RpcTimer {
 public:
  RpcTimer(Metrics& metrics, std::string method)
      : metrics_(metrics), method_(std::move(method)), start_(std::chrono::steady_clock::now()) {}
  ~RpcTimer() {
    const std::chrono::duration<double> elapsed = std::chrono::steady_clock::now() - start_;
    metrics_.ObserveRpc(method_, code_, elapsed.count());
  }
  // The outcome to record; OK unless set.
  const Status& Record(const Status& status) {
    code_ = status.code();
    return status;
  }

 private:
  Metrics& metrics_;
  std::string method_;
  std::chrono::steady_clock::time_point start_;
  StatusCode code_ = StatusCode::kOk;
};

}  // namespace impulse::coordinator
