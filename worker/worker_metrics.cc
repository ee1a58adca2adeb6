#include "worker/worker_metrics.h"

namespace impulse::worker {

WorkerMetrics::WorkerMetrics()
    : registry_(std::make_shared<prometheus::Registry>()),
      tasks_(prometheus::BuildCounter()
                 .Name("impulse_worker_tasks_total")
                 .Help("Tasks this worker ran, by kind and outcome")
                 .Register(*registry_)),
      task_seconds_(prometheus::BuildHistogram()
                        .Name("impulse_worker_task_seconds")
                        .Help("Wall time of a task on this worker, by kind")
                        .Register(*registry_)),
      busy_(prometheus::BuildGauge()
                .Name("impulse_worker_busy")
                .Help("1 while a task runs, else 0")
                .Register(*registry_)
                .Add({})) {}

void WorkerMetrics::ObserveTask(const std::string& kind, const std::string& outcome,
                                double seconds) {
  tasks_.Add({{"kind", kind}, {"outcome", outcome}}).Increment();
  task_seconds_.Add({{"kind", kind}},
                    prometheus::Histogram::BucketBoundaries{0.5, 1, 2, 5, 10, 30, 60, 120, 300,
                                                            600, 1200, 3600})
      .Observe(seconds);
}

void WorkerMetrics::SetBusy(bool busy) { busy_.Set(busy ? 1 : 0); }

}  // namespace impulse::worker
