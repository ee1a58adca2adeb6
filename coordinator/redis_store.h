// RedisStore: the production Store, on one Redis server (run it with AOF).
//
// Schema. Keys come from RedisKeys (coordinator/redis_keys.h); PREFIX is
// "ic" unless configured. No key has a TTL: jobs live until deleted.
//
//   PREFIX:{project}:job:{id}         HASH   id, pb (serialized v1::Job
//                                            without tasks or results),
//                                            state, reason, created_ms,
//                                            updated_ms, left (tasks not yet
//                                            SUCCEEDED), task_keys (the
//                                            tasks' keys, '\n'-joined, in
//                                            creation order), events_key,
//                                            compute_s (worker-seconds
//                                            charged), estimate_s,
//                                            project_key, active_key
//   PREFIX:{project}:jobs             ZSET   job id by created_ms
//   PREFIX:{project}:job:{id}:events  STREAM the job's events, MAXLEN ~ 10000.
//                                            Field pb (a serialized
//                                            v1::Event, from workers) or the
//                                            plain fields kind, time_ms,
//                                            task_id, job_state, task_state,
//                                            progress, message (from scripts)
//   PREFIX:{project}:task:{id}        HASH   id, project, job, kind, state,
//                                            attempt, max_attempts, worker,
//                                            worker_key, token (current
//                                            fencing token), started_ms,
//                                            finished_ms, progress, error,
//                                            pending (unfinished deps),
//                                            children / deps (task keys,
//                                            '\n'-joined), spec (v1::TaskSpec),
//                                            output (v1::TaskOutput), cancel
//                                            (reason; set = stop at the next
//                                            heartbeat), enq_ms (first
//                                            enqueue), queue_key, job_key,
//                                            events_key, entry, checkpoint,
//                                            charged:{token} (worker-seconds
//                                            charged to that attempt)
//   PREFIX:{project}:blobs            SET    sha256 of the blobs the project has
//   PREFIX:{project}:dataset:{sha}    HASH   pb (serialized v1::DatasetInfo)
//   PREFIX:{project}:cache:{key}      STRING serialized v1::TaskOutput
//   PREFIX:{project}:weights          HASH   weights name -> sha256 of a
//                                            v1::Model blob
//   PREFIX:{project}:project          HASH   job_limit_s, period_budget_s,
//                                            period_s, max_concurrent_jobs
//                                            (settings, defaults written at
//                                            the first job), period_start_ms,
//                                            period_used_s, total_used_s
//                                            (usage; docs/COMPUTE.md)
//   PREFIX:{project}:active           SET    ids of its QUEUED or RUNNING jobs
//   PREFIX:queue:{kind}               ZSET   "project/task_id" by first
//                                            enqueue ms (a requeued task
//                                            keeps its place); kind is the
//                                            wire name, e.g. "train"
//   PREFIX:leases                     ZSET   "project/task_id" by lease expiry ms
//   PREFIX:fence                      STRING INCR counter: fencing tokens
//   PREFIX:projects                   SET    names of projects with a hash
//   PREFIX:workers                    ZSET   worker id by last_seen_ms
//   PREFIX:worker:{id}                HASH   pb (serialized v1::WorkerInfo),
//                                            current_task (a task id only, so
//                                            ListWorkers shows no project)
//   PREFIX:costs                      HASH   "<threads>|<cpu model>" ->
//                                            serialized v1::CostTable, the
//                                            last one a worker of that CPU
//                                            model and thread count measured
//   PREFIX:estimate_scales            HASH   "<stage>|<cost table source>" ->
//                                            mean log(actual / estimated) of
//                                            finished tasks
//
// Project names match [A-Za-z0-9_.-]{1,64} and are not "queue" or "worker"
// (InvalidArgument otherwise), so no project key can equal a cluster-wide
// one and "/" splits a queue entry unambiguously.
//
// Consistency.
//   Atomic (one Lua script each, coordinator/scripts/): CreateJob (with the
//   project's admission checks), LeaseTask, Heartbeat and CompleteTask (each
//   with its charge to the job and project and the withdrawal check),
//   CancelJob, GetProject and SetProject (each rolls the budget period
//   forward), and each batch of up to 256 leases
//   in RequeueExpired (a call with more runs several batches; each is
//   atomic, the whole is not). A stale fencing token is checked inside the
//   script, so an Aborted call has written nothing.
//   AddEstimateSample is one Lua script too.
//   Single commands: UpsertWorker (a MULTI of HSET + ZADD), AddBlobs,
//   PutDataset, PutCachedOutput, PutWeights, GetWeights, MissingBlobs, GetDataset, GetCachedOutput,
//   PutCostTable, GetCostTable, ListCostTables, GetEstimateSamples.
//   Not atomic (pipelined reads, no snapshot): GetJob reads the job and then
//   its tasks, so a task may be newer than the job's state; ListJobs,
//   ListWorkers, GetQueueStats, ListProjects likewise. ReadEvents reads the job's state
//   before the stream, so job_finished never hides a final event.
//   Lua scripts, not C++, build the task key from a queue or lease member
//   (common.lua: task_key) and find all other keys in hash fields.
//
// Thread-safe: every method may be called from any thread. Blocking event
// reads use their own connections, so long polls never starve the others.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "coordinator/redis_keys.h"
#include "coordinator/store.h"

namespace impulse::coordinator {

class RedisPool;

// InvalidArgument unless the name matches [A-Za-z0-9_.-]{1,64} and is not
// reserved ("queue", "worker").
Status ValidateProjectName(const std::string& project);

struct RedisStoreOptions {
  std::string address = "tcp://127.0.0.1:6379";  // see RedisOptions::address
  std::string key_prefix = "ic";
  size_t max_connections = 16;           // for ordinary commands
  size_t max_blocking_connections = 64;  // for ReadEvents long polls
  int64_t max_event_wait_ms = 30000;     // cap on ReadEvents' max_wait_ms
};

class RedisStore final : public Store {
 public:
  // Connects and PINGs. Unavailable when the server does not answer,
  // InvalidArgument for a malformed address or prefix.
  static Result<std::unique_ptr<RedisStore>> Connect(RedisStoreOptions options);
  static Result<std::unique_ptr<RedisStore>> Connect(const std::string& address,
                                                     const std::string& key_prefix = "ic");
  ~RedisStore() override;

  Status CreateJob(const v1::Job& job, const std::vector<NewTask>& tasks, int64_t now_ms) override;
  Result<v1::Job> GetJob(const std::string& project, const std::string& job_id) override;
  Result<std::vector<v1::Job>> ListJobs(const std::string& project, uint32_t limit) override;
  Status CancelJob(const std::string& project, const std::string& job_id, const std::string& reason,
                   int64_t now_ms) override;

  Result<std::optional<LeaseGrant>> LeaseTask(const std::string& worker_id,
                                              const std::vector<v1::TaskKind>& kinds,
                                              int64_t now_ms, int64_t lease_ttl_ms) override;
  Result<HeartbeatAnswer> Heartbeat(const std::string& project, const std::string& task_id,
                                    uint64_t fencing_token, const TaskReport& report,
                                    int64_t now_ms, int64_t lease_ttl_ms) override;
  Result<CompletionEffect> CompleteTask(const std::string& project, const std::string& task_id,
                                        uint64_t fencing_token, const TaskCompletion& completion,
                                        int64_t now_ms) override;
  // Lists requeued and failed tasks (requeued = false: the task and its job
  // failed). Tasks of ended jobs are released silently and not listed.
  Result<std::vector<ExpiredLease>> RequeueExpired(int64_t now_ms) override;

  // max_wait_ms is capped at max_event_wait_ms; 0 does not wait.
  Result<EventBatch> ReadEvents(const std::string& project, const std::string& job_id,
                                const std::string& after_id, int64_t max_wait_ms,
                                uint32_t max_count) override;

  Status UpsertWorker(const v1::WorkerInfo& worker, int64_t now_ms) override;
  Result<std::vector<v1::WorkerInfo>> ListWorkers(int64_t seen_after_ms) override;

  Result<std::vector<std::string>> MissingBlobs(const std::string& project,
                                                const std::vector<std::string>& sha256) override;
  Status AddBlobs(const std::string& project, const std::vector<std::string>& sha256) override;
  Status PutDataset(const std::string& project, const v1::DatasetInfo& dataset) override;
  Result<v1::DatasetInfo> GetDataset(const std::string& project,
                                     const std::string& sha256) override;

  Result<std::optional<v1::TaskOutput>> GetCachedOutput(const std::string& project,
                                                        const std::string& key) override;
  Status PutCachedOutput(const std::string& project, const std::string& key,
                         const v1::TaskOutput& output) override;

  Status PutWeights(const std::string& project, const std::string& name,
                    const std::string& sha256) override;
  Result<std::string> GetWeights(const std::string& project, const std::string& name) override;

  // In redis_project_store.cc.
  Result<v1::Project> GetProject(const std::string& project, int64_t now_ms) override;
  Result<v1::Project> SetProject(const v1::Project& settings, int64_t now_ms) override;
  Result<std::vector<v1::Project>> ListProjects(int64_t now_ms) override;

  // coordinator/redis_cost_tables.cc
  Status PutCostTable(const std::string& cpu_model, uint32_t threads,
                      const v1::CostTable& table) override;
  Result<std::optional<v1::CostTable>> GetCostTable(const std::string& cpu_model,
                                                    uint32_t threads) override;
  Result<std::vector<v1::CostTable>> ListCostTables() override;
  Status AddEstimateSample(const std::string& source, v1::TaskKind stage, double log_ratio,
                           double weight) override;
  Result<std::map<v1::TaskKind, double>> GetEstimateSamples(const std::string& source) override;

  Result<QueueStats> GetQueueStats() override;

 private:
  struct Scripts;
  RedisStore(RedisStoreOptions options, std::unique_ptr<RedisPool> pool,
             std::unique_ptr<RedisPool> blocking_pool);

  // Set at construction.
  const RedisStoreOptions options_;
  const RedisKeys keys_;
  const std::unique_ptr<RedisPool> pool_;
  const std::unique_ptr<RedisPool> blocking_pool_;
  const std::unique_ptr<const Scripts> scripts_;
};

}  // namespace impulse::coordinator
