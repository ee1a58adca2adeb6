// Store: the coordinator's state — jobs, task graphs, queues, leases, events,
// workers, datasets and blob ownership. Redis is the production
// implementation (coordinator/redis_store.h); the coordinator keeps nothing in
// memory that the Store does not also hold.
//
// Every method that changes scheduling state is one atomic transition. Times
// come from the caller's Clock as Unix epoch milliseconds; the Store never
// reads the time itself.
//
// Thread-safe: every method may be called from any thread.
// Failures: Unavailable when the backing server cannot be reached (nothing
// was changed, or the transition is safe to retry); NotFound for a job, task
// or dataset this project does not have; Aborted for a stale fencing token.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "impulse/status.h"
#include "impulse/v1/coordinator.pb.h"
#include "impulse/v1/job.pb.h"

namespace impulse::coordinator {

// One node of a job's task graph, as the scheduler builds it.
struct NewTask {
  std::string id;                  // unique across the cluster
  v1::TaskKind kind = v1::TASK_KIND_UNSPECIFIED;
  std::vector<std::string> deps;   // ids of tasks of the same job
  uint32_t max_attempts = 3;
  v1::TaskSpec spec;
  // Set when an identical earlier task's output is reused: the task is
  // created SUCCEEDED with this output and never queued.
  std::optional<v1::TaskOutput> reused_output;
};

struct LeaseGrant {
  v1::TaskSpec spec;       // with inputs filled from the dependencies' outputs
  uint64_t fencing_token = 0;
  uint32_t attempt = 0;    // 1-based
};

// What a heartbeat reports about a running attempt.
struct TaskReport {
  double progress = 0;             // fraction in [0, 1]
  std::vector<v1::Event> events;   // appended to the job's event stream
  std::string checkpoint_sha256;   // newest resume point; "" = unchanged
  // Worker-seconds the attempt has used since its lease, cumulative: only
  // what exceeds the attempt's previous report is charged.
  double compute_s = 0;
};

struct HeartbeatAnswer {
  bool cancel = false;     // the job was cancelled or withdrawn
  std::string reason;
  bool withdrew = false;  // this heartbeat's charge withdrew the job
  double charged_s = 0;   // worker-seconds this heartbeat charged
};

struct TaskCompletion {
  bool succeeded = false;
  std::string error;       // one line, when !succeeded
  v1::TaskOutput output;
  double compute_s = 0;  // the attempt's worker-seconds in all, as TaskReport's
};

// What a completed task changed, for metrics.
struct CompletionEffect {
  std::string job_id;
  v1::TaskKind kind = v1::TASK_KIND_UNSPECIFIED;
  v1::TaskState task_state = v1::TASK_STATE_UNSPECIFIED;
  v1::JobState job_state = v1::JOB_STATE_UNSPECIFIED;  // after the transition
  int64_t started_ms = 0;  // when this attempt was leased
  bool withdrew = false;   // this completion's charge withdrew the job
  double job_compute_s = 0;   // the job's worker-seconds charged so far
  double job_estimate_s = 0;  // the job's estimate at submit; 0 = none
  double charged_s = 0;       // worker-seconds this completion charged
};

struct ExpiredLease {
  std::string project;
  std::string task_id;
  bool requeued = false;   // false: out of attempts, the task and job failed
};

struct EventBatch {
  std::vector<v1::Event> events;  // oldest first, each with its id set
  bool job_finished = false;      // the job is in a terminal state
};

struct QueueStats {
  std::vector<std::pair<v1::TaskKind, int64_t>> queued;  // per kind
  int64_t running = 0;                                  // live leases
};

class Store {
 public:
  virtual ~Store() = default;

  // ---- jobs
  // Writes the job (state QUEUED), its tasks, queues the runnable ones and
  // appends a STATE event. AlreadyExists when the id is taken. Admission is
  // part of the same transition (docs/COMPUTE.md): ResourceExhausted when
  // the project already has max_concurrent_jobs queued or running,
  // FailedPrecondition when its period usage plus job.estimate_s() exceeds
  // its budget; nothing of the job is written then.
  virtual Status CreateJob(const v1::Job& job, const std::vector<NewTask>& tasks,
                           int64_t now_ms) = 0;
  // The job with its tasks, results merged from its tasks' outputs,
  // artifacts, and the worker-seconds charged to it (compute_s).
  virtual Result<v1::Job> GetJob(const std::string& project, const std::string& job_id) = 0;
  // Newest first, without tasks or results.
  virtual Result<std::vector<v1::Job>> ListJobs(const std::string& project, uint32_t limit) = 0;
  // Queued tasks are cancelled at once; running ones learn it at their next
  // heartbeat. FailedPrecondition when the job has already ended.
  virtual Status CancelJob(const std::string& project, const std::string& job_id,
                           const std::string& reason, int64_t now_ms) = 0;

  // ---- scheduling
  // Leases the oldest runnable task of the first kind in `kinds` that has one
  // (empty = any kind). nullopt when none is runnable.
  virtual Result<std::optional<LeaseGrant>> LeaseTask(const std::string& worker_id,
                                                      const std::vector<v1::TaskKind>& kinds,
                                                      int64_t now_ms, int64_t lease_ttl_ms) = 0;
  // Charges the attempt's new worker time to its job and project, extends
  // the lease to now + ttl, appends the events and remembers the
  // checkpoint, which a later attempt receives as inputs["checkpoint"]. A
  // job past its project's per-job limit is withdrawn (answer: cancel).
  // Aborted when the token is not the task's current one or the task is no
  // longer running; the attempt's worker time is still charged then.
  virtual Result<HeartbeatAnswer> Heartbeat(const std::string& project,
                                            const std::string& task_id, uint64_t fencing_token,
                                            const TaskReport& report, int64_t now_ms,
                                            int64_t lease_ttl_ms) = 0;
  // Succeeded: stores the output and queues the dependents that became
  // runnable; the job succeeds with its last task. Failed: the task and its
  // job fail with the error, other tasks are cancelled. The worker time is
  // charged and the limit checked as Heartbeat does. Aborted when the token
  // is stale; only the worker time is charged then.
  virtual Result<CompletionEffect> CompleteTask(const std::string& project,
                                                const std::string& task_id,
                                                uint64_t fencing_token,
                                                const TaskCompletion& completion,
                                                int64_t now_ms) = 0;
  // Requeues every task whose lease ended before now_ms, or fails it (and
  // its job) past max_attempts. Tasks of ended jobs are just released.
  virtual Result<std::vector<ExpiredLease>> RequeueExpired(int64_t now_ms) = 0;

  // ---- events
  // Events after `after_id` ("" = from the start), waiting up to max_wait_ms
  // for the first one. NotFound for an unknown job.
  virtual Result<EventBatch> ReadEvents(const std::string& project, const std::string& job_id,
                                        const std::string& after_id, int64_t max_wait_ms,
                                        uint32_t max_count) = 0;

  // ---- workers
  virtual Status UpsertWorker(const v1::WorkerInfo& worker, int64_t now_ms) = 0;
  // Workers seen since seen_after_ms, each with last_seen_ms set.
  virtual Result<std::vector<v1::WorkerInfo>> ListWorkers(int64_t seen_after_ms) = 0;

  // ---- blobs and datasets (ownership only; bytes live in the BlobStore)
  virtual Result<std::vector<std::string>> MissingBlobs(const std::string& project,
                                                        const std::vector<std::string>& sha256) = 0;
  virtual Status AddBlobs(const std::string& project, const std::vector<std::string>& sha256) = 0;
  virtual Status PutDataset(const std::string& project, const v1::DatasetInfo& dataset) = 0;
  virtual Result<v1::DatasetInfo> GetDataset(const std::string& project,
                                             const std::string& sha256) = 0;

  // ---- reuse of identical work (e.g. features of one dataset and config)
  virtual Result<std::optional<v1::TaskOutput>> GetCachedOutput(const std::string& project,
                                                                const std::string& key) = 0;
  virtual Status PutCachedOutput(const std::string& project, const std::string& key,
                                 const v1::TaskOutput& output) = 0;

  // ---- named weights (pretrained backbones a later impulse references)
  // Points `name` at a model blob the project has; replaces an older one.
  virtual Status PutWeights(const std::string& project, const std::string& name,
                            const std::string& sha256) = 0;
  // NotFound when the project has no weights of that name.
  virtual Result<std::string> GetWeights(const std::string& project, const std::string& name) = 0;

  // ---- projects: compute limits, budgets and usage (docs/COMPUTE.md)
  // The settings with defaults filled in (coordinator/projects.h) and the
  // usage of the budget period that holds now_ms. A project without
  // settings reads as the defaults.
  virtual Result<v1::Project> GetProject(const std::string& project, int64_t now_ms) = 0;
  // Replaces the settings of settings.name() (zero fields take defaults;
  // read-only fields are ignored) and answers as GetProject. InvalidArgument
  // naming the field for a value ResolveProjectSettings refuses.
  virtual Result<v1::Project> SetProject(const v1::Project& settings, int64_t now_ms) = 0;
  // Every project that has settings or has had a job, as GetProject reads it.
  virtual Result<std::vector<v1::Project>> ListProjects(int64_t now_ms) = 0;

  // ---- cost tables: what workers measured (worker/training/cost_calibration.h),
  // one per CPU model and thread count; a later table replaces the earlier.
  virtual Status PutCostTable(const std::string& cpu_model, uint32_t threads,
                              const v1::CostTable& table) = 0;
  // nullopt when none is cached for that CPU model and thread count.
  virtual Result<std::optional<v1::CostTable>> GetCostTable(const std::string& cpu_model,
                                                            uint32_t threads) = 0;
  // Every cached table, in no particular order.
  virtual Result<std::vector<v1::CostTable>> ListCostTables() = 0;

  // ---- estimate scales (coordinator/cost_tables.h): per cost table source
  // and stage (task kind), a running mean of log(actual / estimated) over
  // finished tasks. Folds one sample in with `weight` (the first sets it);
  // atomic, so concurrent completions each count.
  virtual Status AddEstimateSample(const std::string& source, v1::TaskKind stage,
                                   double log_ratio, double weight) = 0;
  // The means for `source`, per stage; a stage without samples is absent.
  virtual Result<std::map<v1::TaskKind, double>> GetEstimateSamples(
      const std::string& source) = 0;

  // ---- metrics
  virtual Result<QueueStats> GetQueueStats() = 0;
};

}  // namespace impulse::coordinator
