// Scheduler: turns submitted impulses into task graphs and serves the worker
// protocol (lease, heartbeat, complete) on top of the Store.
//
// Algorithm:
//   1. Submit validates the impulse and the dataset, then builds the graph
//      generate-features -> train -> quantize-evaluate (features-only jobs
//      stop after the first). A features task whose dataset and input/
//      processing config match an earlier successful one is created
//      already done, with that task's output. Only a valid job is then
//      estimated (impulse/estimate/) and checked against the project's
//      per-job compute limit; the Store admits it against the budget and
//      the concurrent-job limit as it writes it (docs/COMPUTE.md).
//   2. Workers long-poll Lease: the Store is asked every poll_interval_ms
//      until a task is leased or the worker's bounded wait runs out.
//   3. Heartbeats extend the lease and carry progress, events and the
//      attempt's worker time, which the Store charges; the answer tells the
//      worker to stop when its job was cancelled or withdrawn.
//   4. Complete stores the output and releases dependents (one Store
//      transition); a successful features task is remembered for reuse,
//      and a train task's model saved under the job's save_weights_as name.
//   Expired leases are the LeaseReaper's business (coordinator/lease_reaper.h).
//
// Holds no state of its own: everything is in the Store, so any number of
// coordinators may share one Redis. Thread-safe.
#pragma once

#include <functional>
#include <optional>
#include <string>

#include "coordinator/blob_store.h"
#include "coordinator/clock.h"
#include "coordinator/metrics.h"
#include "coordinator/store.h"
#include "impulse/device/device_catalog.h"
#include "impulse/estimate/compute_estimate.h"
#include "impulse/v1/coordinator.pb.h"

namespace impulse::coordinator {

struct SchedulerOptions {
  int64_t lease_ttl_ms = 15000;
  uint32_t max_attempts = 3;
  int64_t max_lease_wait_ms = 30000;  // cap on a worker's long poll
  int64_t poll_interval_ms = 200;     // how often a long poll asks the Store
  // Targets an impulse may name; each quantize-evaluate task carries its
  // job's resolved device (TaskSpec.device).
  device::DeviceCatalog devices = device::DeviceCatalog::Builtin();
};

// The cost table a job's estimate is made with; called on every submit,
// from any thread. The coordinator builds it from the workers' measured
// tables; absent, estimate::DefaultCostTable() is used.
using CostTableSource = std::function<estimate::CostTable()>;
// Told of every task that succeeds: the cost table's source, the stage, the
// seconds its last attempt took and what that table estimated for it
// without its learned scales (coordinator/cost_tables.h: CostTables::Learn).
using EstimateFeedback = std::function<Status(const std::string& source, v1::TaskKind stage,
                                              double actual_s, double estimated_s)>;

class Scheduler {
 public:
  // All references must outlive the Scheduler.
  Scheduler(Store& store, BlobStore& blobs, Clock& clock, Metrics& metrics,
            SchedulerOptions options, CostTableSource cost_tables = {},
            EstimateFeedback feedback = {});

  const SchedulerOptions& options() const { return options_; }

  // InvalidArgument for a malformed impulse or an unknown dataset, checked
  // before any limit. FailedPrecondition when the estimate exceeds the
  // project's per-job limit (the message gives the estimate, the limit and
  // ways to fit) or its period budget; ResourceExhausted at its
  // concurrent-job limit.
  Result<v1::Job> Submit(const v1::SubmitJobRequest& request);

  // What Submit would estimate for the job, with its stages, the project's
  // limit, ways to fit when over it, and the on-device figures of the
  // impulse's target (impulse/device/device_estimate.h). Writes nothing.
  // InvalidArgument as Submit refuses the impulse or the dataset.
  Result<v1::EstimateReply> Estimate(const v1::EstimateRequest& request);

  // Checks a manifest blob and every source it names; stores the dataset.
  Result<v1::DatasetInfo> RegisterDataset(const std::string& project,
                                          const std::string& manifest_sha256);

  // Waits up to min(wait_ms, max_lease_wait_ms) for a task. `abandoned`
  // returns true once the caller has gone away; the wait ends then.
  Result<std::optional<LeaseGrant>> Lease(const std::string& worker_id,
                                          const std::vector<v1::TaskKind>& kinds, int64_t wait_ms,
                                          const std::function<bool()>& abandoned);

  Result<HeartbeatAnswer> Heartbeat(const v1::HeartbeatRequest& request);
  Status Complete(const v1::CompleteTaskRequest& request);

 private:
  Result<std::vector<NewTask>> BuildTasks(const v1::Job& job);
  // The blob a train task starts from: "" for random initial weights.
  Result<std::string> ResolveWeights(const v1::Job& job);
  Status CheckWeightsFit(const v1::Job& job, const std::string& sha256);
  // Sets job.estimate_s; FailedPrecondition over the per-job limit.
  Status CheckJobLimit(v1::Job& job, const v1::DatasetInfo& dataset, bool features_cached);
  // InvalidArgument naming the field when the project has no such dataset.
  Result<v1::DatasetInfo> FindDataset(const std::string& project, const std::string& sha256);
  estimate::CostTable CostTableNow() const;
  Status RememberOutput(const std::string& project, const CompletionEffect& effect,
                        const v1::TaskOutput& output);
  // Tells feedback_ what a succeeded task took against its estimate.
  Status LearnFromTask(const std::string& project, const CompletionEffect& effect,
                       double actual_s);

  Store& store_;
  BlobStore& blobs_;
  Clock& clock_;
  Metrics& metrics_;
  const SchedulerOptions options_;
  const CostTableSource cost_tables_;
  const EstimateFeedback feedback_;
};

// learning.weights of this form names an uploaded blob rather than named
// weights: the client uploads a local weights file and rewrites the key.
inline constexpr std::string_view kWeightsBlobPrefix = "sha256:";

// "default" for an empty project name.
std::string ProjectOrDefault(const std::string& project);

}  // namespace impulse::coordinator
