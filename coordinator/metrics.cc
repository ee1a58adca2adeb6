#include "coordinator/metrics.h"

#include <algorithm>

#include "impulse/task_names.h"

namespace impulse::coordinator {
namespace {

const prometheus::Histogram::BucketBoundaries kRpcBuckets = {
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30};
const prometheus::Histogram::BucketBoundaries kTaskBuckets = {
    0.5, 1, 2, 5, 10, 30, 60, 120, 300, 600, 1200, 2400, 3600};
// actual / estimated compute: the estimator aims at 0.8 to 1.25.
const prometheus::Histogram::BucketBoundaries kRatioBuckets = {0.25, 0.5,  0.67, 0.8, 0.9, 1,
                                                               1.1,  1.25, 1.5,  2,   4};

}  // namespace

Metrics::Metrics()
    : registry_(std::make_shared<prometheus::Registry>()),
      rpcs_(prometheus::BuildCounter()
                .Name("impulse_rpc_total")
                .Help("gRPC calls handled, by method and status code")
                .Register(*registry_)),
      rpc_seconds_(prometheus::BuildHistogram()
                       .Name("impulse_rpc_duration_seconds")
                       .Help("gRPC handler latency, by method")
                       .Register(*registry_)),
      queue_depth_(prometheus::BuildGauge()
                       .Name("impulse_queue_depth")
                       .Help("Runnable tasks waiting for a worker, by task kind")
                       .Register(*registry_)),
      tasks_(prometheus::BuildGauge()
                 .Name("impulse_tasks")
                 .Help("Tasks now queued or running, by state")
                 .Register(*registry_)),
      tasks_finished_(prometheus::BuildCounter()
                          .Name("impulse_tasks_finished_total")
                          .Help("Tasks that reached a final state, by kind and state")
                          .Register(*registry_)),
      task_seconds_(prometheus::BuildHistogram()
                        .Name("impulse_task_duration_seconds")
                        .Help("Wall time from lease to completion, by task kind")
                        .Register(*registry_)),
      leases_expired_(prometheus::BuildCounter()
                          .Name("impulse_leases_expired_total")
                          .Help("Leases that lapsed without a heartbeat, by outcome")
                          .Register(*registry_)),
      workers_connected_(prometheus::BuildGauge()
                             .Name("impulse_workers_connected")
                             .Help("Workers seen within three lease TTLs, by kind (cpu|gpu)")
                             .Register(*registry_)),
      project_charged_(prometheus::BuildCounter()
                           .Name("impulse_project_compute_seconds_total")
                           .Help("Worker-seconds charged to each project (by this coordinator)")
                           .Register(*registry_)),
      project_used_(prometheus::BuildGauge()
                        .Name("impulse_project_compute_used_seconds")
                        .Help("Worker-seconds charged in the project's current budget period")
                        .Register(*registry_)),
      project_remaining_(prometheus::BuildGauge()
                             .Name("impulse_project_compute_remaining_seconds")
                             .Help("Budget left in the project's current period (projects with "
                                   "a budget)")
                             .Register(*registry_)),
      jobs_refused_(prometheus::BuildCounter()
                        .Name("impulse_jobs_refused_total")
                        .Help("Submits refused over a compute limit, by project and reason "
                              "(job_limit|budget|concurrency)")
                        .Register(*registry_)),
      jobs_withdrawn_(prometheus::BuildCounter()
                          .Name("impulse_jobs_withdrawn_total")
                          .Help("Jobs withdrawn for passing the per-job compute limit, by project")
                          .Register(*registry_)),
      compute_ratio_(prometheus::BuildHistogram()
                         .Name("impulse_job_compute_estimate_ratio")
                         .Help("Actual / estimated compute of jobs that succeeded")
                         .Register(*registry_)) {}

void Metrics::ObserveRpc(const std::string& method, StatusCode code, double seconds) {
  rpcs_.Add({{"method", method}, {"code", StatusCodeName(code)}}).Increment();
  rpc_seconds_.Add({{"method", method}}, kRpcBuckets).Observe(seconds);
}

void Metrics::ObserveCompletion(const CompletionEffect& effect, int64_t finished_ms) {
  const std::string kind = TaskKindName(effect.kind);
  tasks_finished_.Add({{"kind", kind}, {"state", TaskStateName(effect.task_state)}}).Increment();
  if (effect.started_ms > 0 && finished_ms >= effect.started_ms) {
    task_seconds_.Add({{"kind", kind}}, kTaskBuckets)
        .Observe(static_cast<double>(finished_ms - effect.started_ms) / 1000.0);
  }
  if (effect.task_state == v1::TASK_STATE_SUCCEEDED &&
      effect.job_state == v1::JOB_STATE_SUCCEEDED && effect.job_estimate_s > 0) {
    compute_ratio_.Add({}, kRatioBuckets).Observe(effect.job_compute_s / effect.job_estimate_s);
  }
}

void Metrics::ObserveRefusal(const std::string& project, const std::string& reason) {
  jobs_refused_.Add({{"project", project}, {"reason", reason}}).Increment();
}

void Metrics::ObserveWithdrawal(const std::string& project) {
  jobs_withdrawn_.Add({{"project", project}}).Increment();
}

void Metrics::ObserveCharge(const std::string& project, double seconds) {
  if (seconds > 0) project_charged_.Add({{"project", project}}).Increment(seconds);
}

void Metrics::SetProjectCompute(const v1::Project& project) {
  project_used_.Add({{"project", project.name()}}).Set(project.period_used_s());
  if (project.period_budget_s() > 0) {
    project_remaining_.Add({{"project", project.name()}})
        .Set(std::max(0.0, project.period_budget_s() - project.period_used_s()));
  }
}

void Metrics::ObserveExpiredLease(bool requeued) {
  leases_expired_.Add({{"outcome", requeued ? "requeued" : "failed"}}).Increment();
}

void Metrics::SetQueueStats(const QueueStats& stats) {
  int64_t queued = 0;
  for (const auto& [kind, depth] : stats.queued) {
    queue_depth_.Add({{"kind", TaskKindName(kind)}}).Set(static_cast<double>(depth));
    queued += depth;
  }
  tasks_.Add({{"state", "QUEUED"}}).Set(static_cast<double>(queued));
  tasks_.Add({{"state", "RUNNING"}}).Set(static_cast<double>(stats.running));
}

void Metrics::SetWorkersConnected(const std::string& kind, double count) {
  workers_connected_.Add({{"kind", kind}}).Set(count);
}

}  // namespace impulse::coordinator
