// Runner: the worker's main loop.
//
//   1. Register with the coordinator (retrying with bounded backoff).
//   2. Long-poll LeaseTask for the kinds this worker runs.
//   3. Run the task on its own thread while this thread heartbeats every
//      heartbeat_interval_ms with progress, the task's log/epoch events and
//      the worker-seconds the attempt has used so far (what it is charged).
//      A heartbeat answered "cancel" or ABORTED (the lease was lost) asks the
//      task to stop; after a lost lease nothing more is reported.
//   4. CompleteTask with the output, or with the error the task returned or
//      threw (exceptions are caught here, at the task boundary).
//   The loop ends when `stop` is set; a task still running is asked to stop.
//
// One task at a time: parallelism is inside a task (its threads), and more
// workers per machine are more processes. Not thread-safe: call Run once.
#pragma once

#include <atomic>
#include <chrono>
#include <functional>
#include <map>
#include <string>
#include <vector>

#include "impulse/status.h"
#include "impulse/v1/coordinator.pb.h"
#include "worker/blob_cache.h"
#include "worker/coordinator_link.h"
#include "worker/task_context.h"
#include "worker/worker_metrics.h"

namespace impulse::worker {

class LeasedTask;  // the TaskContext of one leased attempt (runner.cc)

struct WorkerOptions {
  std::string id;             // empty: the coordinator assigns one
  std::string cache_dir = "./impulse-worker-cache";
  uint64_t cache_max_bytes = 20ull << 30;
  int threads = 1;            // compute threads per task
  int gpus = 0;
  std::vector<v1::TaskKind> kinds;  // empty = every kind with a TaskFunction
  // Short enough that SIGTERM is honoured within seconds while idle.
  uint32_t lease_wait_ms = 5000;
  // The cost table reported at registration (DESIGN.md, "Compute limits"):
  // kAuto reuses the coordinator's cached table for this CPU model and
  // thread count and measures only when there is none; kAlways measures;
  // kNever reports none (estimates then use the cache or the default).
  enum class Calibrate { kAuto, kAlways, kNever };
  Calibrate calibrate = Calibrate::kAuto;
  // Measures the table (worker/training/cost_calibration.h); empty: never.
  std::function<Result<v1::CostTable>()> measure_costs;
};

using TaskFunction = std::function<Result<v1::TaskOutput>(const v1::TaskSpec&, TaskContext&)>;

class Runner {
 public:
  // `link` and `metrics` must outlive the runner.
  Runner(WorkerOptions options, CoordinatorLink& link, WorkerMetrics& metrics);

  void AddTaskKind(v1::TaskKind kind, TaskFunction function);

  // Serves until `stop` becomes true. Returns the last registration error
  // when the coordinator never answered and stop was set meanwhile.
  Status Run(const std::atomic<bool>& stop);

 private:
  // Registers, with the cost table `options_.calibrate` asks for.
  Status Register(const std::atomic<bool>& stop);
  Result<v1::RegisterWorkerReply> RegisterWithBackoff(const v1::WorkerInfo& info,
                                                      const std::atomic<bool>& stop);
  void RunLeased(const v1::LeaseTaskReply& lease, const std::atomic<bool>& stop);
  // One heartbeat for the running attempt, leased at `started`; false once
  // its lease is lost.
  bool Heartbeat(const v1::LeaseTaskReply& lease, LeasedTask& context,
                 std::chrono::steady_clock::time_point started);
  // Reports the attempt's outcome: "succeeded", "failed", "cancelled", or
  // "lost" when the coordinator never took it.
  std::string Complete(const v1::LeaseTaskReply& lease, Result<v1::TaskOutput>& result,
                       std::chrono::steady_clock::time_point started);
  std::vector<v1::TaskKind> Kinds() const;

  const WorkerOptions options_;
  CoordinatorLink& link_;
  WorkerMetrics& metrics_;
  BlobCache cache_;
  std::map<v1::TaskKind, TaskFunction> tasks_;
  std::string worker_id_;
  uint32_t heartbeat_interval_ms_ = 3000;
};

// What this machine offers, for registration: cores, memory, CPU model.
v1::WorkerInfo DescribeThisMachine(const WorkerOptions& options);

}  // namespace impulse::worker
