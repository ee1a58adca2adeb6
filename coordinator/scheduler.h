// Scheduler: turns submitted impulses into task graphs and serves the worker
// protocol (lease, heartbeat, complete) on top of the Store.
//
// Algorithm:
//   1. Submit validates the impulse and the dataset, then builds the graph
//      generate-features -> train -> quantize-evaluate (features-only jobs
//      stop after the first). A features task whose dataset and input/
//      processing config match an earlier successful one is created
//      already done, with that task's output.
//   2. Workers long-poll Lease: the Store is asked every poll_interval_ms
//      until a task is leased or the worker's bounded wait runs out.
//   3. Heartbeats extend the lease and carry progress and events; the
//      answer tells the worker to stop when its job was cancelled.
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
#include "impulse/v1/coordinator.pb.h"

namespace impulse::coordinator {

struct SchedulerOptions {
  int64_t lease_ttl_ms = 15000;
  uint32_t max_attempts = 3;
  int64_t max_lease_wait_ms = 30000;  // cap on a worker's long poll
  int64_t poll_interval_ms = 200;     // how often a long poll asks the Store
};

class Scheduler {
 public:
  // All references must outlive the Scheduler.
  Scheduler(Store& store, BlobStore& blobs, Clock& clock, Metrics& metrics,
            SchedulerOptions options);

  const SchedulerOptions& options() const { return options_; }

  // InvalidArgument for a malformed impulse or an unknown dataset.
  Result<v1::Job> Submit(const v1::SubmitJobRequest& request);

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
  Status RememberOutput(const std::string& project, const CompletionEffect& effect,
                        const v1::TaskOutput& output);

  Store& store_;
  BlobStore& blobs_;
  Clock& clock_;
  Metrics& metrics_;
  const SchedulerOptions options_;
};

// learning.weights of this form names an uploaded blob rather than named
// weights: the client uploads a local weights file and rewrites the key.
inline constexpr std::string_view kWeightsBlobPrefix = "sha256:";

// "default" for an empty project name.
std::string ProjectOrDefault(const std::string& project);

}  // namespace impulse::coordinator
