#include "coordinator/lease_reaper.h"

#include <spdlog/spdlog.h>

namespace impulse::coordinator {

LeaseReaper::LeaseReaper(Store& store, Clock& clock, Metrics& metrics, int64_t interval_ms,
                         int64_t worker_seen_window_ms)
    : store_(store),
      clock_(clock),
      metrics_(metrics),
      interval_ms_(interval_ms),
      worker_seen_window_ms_(worker_seen_window_ms),
      thread_([this] { Loop(); }) {}

LeaseReaper::~LeaseReaper() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    stopping_ = true;
  }
  wake_.notify_all();
  thread_.join();
}

void LeaseReaper::RunOnce() {
  const int64_t now_ms = clock_.NowMs();
  auto expired = store_.RequeueExpired(now_ms);
  if (expired.ok()) {
    for (const auto& lease : *expired) {
      metrics_.ObserveExpiredLease(lease.requeued);
      spdlog::warn("lease expired: {}/{} {}", lease.project, lease.task_id,
                   lease.requeued ? "requeued" : "failed: out of attempts");
    }
  } else {
    spdlog::error("requeue of expired leases failed: {}", expired.status().ToString());
  }
  if (auto stats = store_.GetQueueStats(); stats.ok()) metrics_.SetQueueStats(*stats);
  if (auto projects = store_.ListProjects(now_ms); projects.ok()) {
    for (const auto& project : *projects) metrics_.SetProjectCompute(project);
  }
  if (auto workers = store_.ListWorkers(now_ms - worker_seen_window_ms_); workers.ok()) {
    double cpu = 0, gpu = 0;
    for (const auto& worker : *workers) (worker.gpus() > 0 ? gpu : cpu) += 1;
    metrics_.SetWorkersConnected("cpu", cpu);
    metrics_.SetWorkersConnected("gpu", gpu);
  }
}

void LeaseReaper::Loop() {
  std::unique_lock<std::mutex> lock(mu_);
  while (!stopping_) {
    lock.unlock();
    RunOnce();
    lock.lock();
    wake_.wait_for(lock, std::chrono::milliseconds(interval_ms_), [this] { return stopping_; });
  }
}

}  // namespace impulse::coordinator
