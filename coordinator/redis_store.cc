#include "coordinator/redis_store.h"

#include <algorithm>
#include <array>
#include <cstdio>
#include <cstdlib>
#include <map>
#include <set>

#include "coordinator/blob_store.h"
#include "coordinator/projects.h"
#include "coordinator/redis_connection.h"
#include "coordinator/redis_values.h"
#include "impulse/task_names.h"

namespace impulse::coordinator {
namespace {

constexpr std::array<v1::TaskKind, 3> kAllKinds = {
    v1::TASK_KIND_GENERATE_FEATURES, v1::TASK_KIND_TRAIN, v1::TASK_KIND_QUANTIZE_EVALUATE};
constexpr uint32_t kRequeueBatch = 256;
constexpr uint32_t kDefaultEventCount = 1000;
constexpr uint32_t kDefaultJobLimit = 50;

// The fields GetJob and ListJobs read from a job hash, in this order.
const std::vector<std::string> kJobFields = {"pb",         "state",     "reason",   "created_ms",
                                             "updated_ms", "task_keys", "compute_s"};
// The fields GetJob reads from each task hash, in this order.
const std::vector<std::string> kTaskFields = {
    "id",    "kind",     "state",      "attempt",     "max_attempts", "worker",
    "error", "progress", "started_ms", "finished_ms", "output",       "checkpoint"};

Status ValidateId(const char* what, const std::string& id) {
  const bool ok = !id.empty() && id.size() <= 256 && std::none_of(id.begin(), id.end(), [](char c) {
    return static_cast<unsigned char>(c) < 0x20 || c == 0x7f;
  });
  if (!ok) return InvalidArgument(std::string(what) + " '" + id + "': 1 to 256 printable bytes");
  return Status::Ok();
}

bool IsKnownKind(v1::TaskKind kind) {
  return std::find(kAllKinds.begin(), kAllKinds.end(), kind) != kAllKinds.end();
}

std::string Serialize(const google::protobuf::MessageLite& message) {
  std::string bytes;
  message.SerializeToString(&bytes);
  return bytes;
}

template <typename T>
Result<T> Parse(const std::string& bytes, const std::string& what) {
  T message;
  if (!message.ParseFromString(bytes)) return Internal("unparseable " + what + " in redis");
  return message;
}

std::string OneLine(std::string text) {
  std::replace(text.begin(), text.end(), '\n', ' ');
  std::replace(text.begin(), text.end(), '\r', ' ');
  return text;
}

Status Malformed(const std::string& script, const RedisValue& reply) {
  return Internal(script + ".lua: unexpected reply '" + At(reply, 0) + "'");
}

Status StaleToken(const std::string& task_id, uint64_t token, const RedisValue& reply) {
  return Aborted("task " + task_id + ": fencing token " + std::to_string(token) +
                 " is not current (task state " +
                 TaskStateName(static_cast<v1::TaskState>(reply.elements[1].AsInt())) +
                 ", current token " + At(reply, 2) + ")");
}

Status NoSuchTask(const std::string& project, const std::string& task_id) {
  return NotFound("project '" + project + "' has no task " + task_id);
}

Status NoSuchJob(const std::string& project, const std::string& job_id) {
  return NotFound("project '" + project + "' has no job " + job_id);
}

bool IsStreamId(const std::string& id) {
  const size_t dash = id.find('-');
  auto digits = [](std::string_view s) {
    return !s.empty() &&
           std::all_of(s.begin(), s.end(), [](char c) { return c >= '0' && c <= '9'; });
  };
  if (dash == std::string::npos) return digits(id);
  return digits(std::string_view(id).substr(0, dash)) &&
         digits(std::string_view(id).substr(dash + 1));
}

// A job from the kJobFields of its hash; nullopt when the hash is absent.
Result<std::optional<v1::Job>> DecodeJob(const RedisValue& fields, const std::string& project,
                                         const std::string& job_id) {
  if (fields.elements.size() != kJobFields.size() || fields.elements[1].is_nil()) {
    return std::optional<v1::Job>();
  }
  IMPULSE_ASSIGN_OR_RETURN(v1::Job job, Parse<v1::Job>(At(fields, 0), "job " + job_id));
  job.set_id(job_id);
  job.set_project(project);
  job.set_state(static_cast<v1::JobState>(fields.elements[1].AsInt()));
  job.set_reason(At(fields, 2));
  job.set_created_ms(fields.elements[3].AsInt());
  job.set_updated_ms(fields.elements[4].AsInt());
  job.set_compute_s(ParseDouble(At(fields, 6)));
  return std::optional<v1::Job>(std::move(job));
}

// One stream entry ([id, [field, value, ...]]) as an Event: the pb field
// (worker events) and the plain fields (script events) both decode.
v1::Event DecodeEvent(const RedisValue& entry) {
  v1::Event event;
  const RedisValue& fields = entry.elements[1];
  for (size_t i = 0; i + 1 < fields.elements.size(); i += 2) {
    const std::string& name = fields.elements[i].str;
    const RedisValue& value = fields.elements[i + 1];
    if (name == "pb") {
      event.MergeFromString(value.str);
    } else if (name == "kind") {
      event.set_kind(static_cast<v1::EventKind>(value.AsInt()));
    } else if (name == "time_ms") {
      event.set_time_ms(value.AsInt());
    } else if (name == "task_id") {
      event.set_task_id(value.str);
    } else if (name == "job_state") {
      event.set_job_state(static_cast<v1::JobState>(value.AsInt()));
    } else if (name == "task_state") {
      event.set_task_state(static_cast<v1::TaskState>(value.AsInt()));
    } else if (name == "progress") {
      event.set_progress(ParseDouble(value.str));
    } else if (name == "message") {
      event.set_message(value.str);
    }
  }
  event.set_id(entry.elements[0].str);
  return event;
}

// Later outputs win for scalar fields; repeated fields are concatenated,
// except the labels, which each output states in full.
void MergeOutput(const v1::TaskOutput& output, v1::Job& job) {
  if (output.results().labels_size() > 0) job.mutable_results()->clear_labels();
  job.mutable_results()->MergeFrom(output.results());
  for (const v1::Artifact& artifact : output.artifacts()) *job.add_artifacts() = artifact;
}

// ---- one decoder per script

Status DecodeCreateJob(const RedisValue& reply, const v1::Job& job) {
  const std::string code = At(reply, 0);
  if (code == "OK") return Status::Ok();
  if (code == "JOB_EXISTS") return AlreadyExists("job " + job.id() + " already exists");
  if (code == "TASK_EXISTS") return AlreadyExists("task " + At(reply, 1) + " already exists");
  if (code == "TOO_MANY") {
    return ResourceExhausted(
        TooManyJobsMessage(job.project(), reply.elements[1].AsInt(), reply.elements[2].AsInt()));
  }
  if (code == "OVER_BUDGET") {
    return FailedPrecondition(OverBudgetMessage(job.project(), ParseDouble(At(reply, 1)),
                                                ParseDouble(At(reply, 2)), job.estimate_s(),
                                                reply.elements[3].AsInt()));
  }
  return Malformed("create_job", reply);
}

Result<std::optional<LeaseGrant>> DecodeLeaseTask(const RedisValue& reply) {
  const std::string code = At(reply, 0);
  if (code == "EMPTY") return std::optional<LeaseGrant>();
  if (code != "OK" || reply.elements.size() < 7) return Malformed("lease_task", reply);
  LeaseGrant grant;
  const std::string task_id = At(reply, 2);
  grant.fencing_token = static_cast<uint64_t>(reply.elements[3].AsInt());
  grant.attempt = static_cast<uint32_t>(reply.elements[4].AsInt());
  IMPULSE_ASSIGN_OR_RETURN(grant.spec, Parse<v1::TaskSpec>(At(reply, 5), "spec of " + task_id));
  if (const std::string checkpoint = At(reply, 6); !checkpoint.empty()) {
    (*grant.spec.mutable_inputs())["checkpoint"] = checkpoint;
  }
  for (size_t i = 7; i < reply.elements.size(); ++i) {
    IMPULSE_ASSIGN_OR_RETURN(
        v1::TaskOutput output,
        Parse<v1::TaskOutput>(At(reply, i), "dependency output of " + task_id));
    for (const auto& [name, sha256] : output.blobs()) (*grant.spec.mutable_inputs())[name] = sha256;
    grant.spec.mutable_dependency_results()->MergeFrom(output.results());
  }
  return std::optional<LeaseGrant>(std::move(grant));
}

Result<HeartbeatAnswer> DecodeHeartbeat(const RedisValue& reply, const std::string& project,
                                        const std::string& task_id, uint64_t token) {
  const std::string code = At(reply, 0);
  if (code == "OK") {
    return HeartbeatAnswer{.cancel = At(reply, 1) == "1",
                           .reason = At(reply, 2),
                           .withdrew = At(reply, 3) == "1",
                           .charged_s = ParseDouble(At(reply, 4))};
  }
  if (code == "NOT_FOUND") return NoSuchTask(project, task_id);
  if (code == "STALE") return StaleToken(task_id, token, reply);
  return Malformed("heartbeat", reply);
}

Result<CompletionEffect> DecodeCompleteTask(const RedisValue& reply, const std::string& project,
                                            const std::string& task_id, uint64_t token) {
  const std::string code = At(reply, 0);
  if (code == "NOT_FOUND") return NoSuchTask(project, task_id);
  if (code == "STALE") return StaleToken(task_id, token, reply);
  if (code != "OK" || reply.elements.size() != 10) return Malformed("complete_task", reply);
  return CompletionEffect{
      .job_id = At(reply, 1),
      .kind = static_cast<v1::TaskKind>(reply.elements[2].AsInt()),
      .task_state = static_cast<v1::TaskState>(reply.elements[3].AsInt()),
      .job_state = static_cast<v1::JobState>(reply.elements[4].AsInt()),
      .started_ms = reply.elements[5].AsInt(),
      .withdrew = At(reply, 6) == "1",
      .job_compute_s = ParseDouble(At(reply, 7)),
      .job_estimate_s = ParseDouble(At(reply, 8)),
      .charged_s = ParseDouble(At(reply, 9)),
  };
}

// Returns how many expired leases the batch removed; appends the listed ones.
Result<int64_t> DecodeRequeueExpired(const RedisValue& reply, std::vector<ExpiredLease>& out) {
  if (reply.elements.empty() || (reply.elements.size() - 1) % 3 != 0) {
    return Malformed("requeue_expired", reply);
  }
  for (size_t i = 1; i < reply.elements.size(); i += 3) {
    const std::string outcome = At(reply, i + 2);
    if (outcome == "RELEASED") continue;
    out.push_back(
        {.project = At(reply, i), .task_id = At(reply, i + 1), .requeued = outcome == "REQUEUED"});
  }
  return reply.elements[0].AsInt();
}

Status DecodeCancelJob(const RedisValue& reply, const std::string& project,
                       const std::string& job_id) {
  const std::string code = At(reply, 0);
  if (code == "OK") return Status::Ok();
  if (code == "NOT_FOUND") return NoSuchJob(project, job_id);
  if (code == "ENDED") {
    return FailedPrecondition("job " + job_id + " has already ended (" +
                              JobStateName(static_cast<v1::JobState>(reply.elements[1].AsInt())) +
                              ")");
  }
  return Malformed("cancel_job", reply);
}

}  // namespace

Status ValidateProjectName(const std::string& project) {
  const bool ok = !project.empty() && project.size() <= 64 &&
                  std::all_of(project.begin(), project.end(), [](char c) {
                    return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') ||
                           (c >= '0' && c <= '9') || c == '_' || c == '.' || c == '-';
                  });
  if (!ok) {
    return InvalidArgument("project '" + project +
                           "': use 1 to 64 of the characters A-Z a-z 0-9 _ . -");
  }
  // Their keys could collide with PREFIX:queue:{kind} and PREFIX:worker:{id}.
  if (project == "queue" || project == "worker") {
    return InvalidArgument("project '" + project + "' is a reserved name; pick another");
  }
  return Status::Ok();
}

struct RedisStore::Scripts {
  LuaScript create_job{"create_job"};
  LuaScript lease_task{"lease_task"};
  LuaScript heartbeat{"heartbeat"};
  LuaScript complete_task{"complete_task"};
  LuaScript requeue_expired{"requeue_expired"};
  LuaScript cancel_job{"cancel_job"};
};

RedisStore::RedisStore(RedisStoreOptions options, std::unique_ptr<RedisPool> pool,
                       std::unique_ptr<RedisPool> blocking_pool)
    : options_(std::move(options)),
      keys_(options_.key_prefix),
      pool_(std::move(pool)),
      blocking_pool_(std::move(blocking_pool)),
      scripts_(std::make_unique<Scripts>()) {}

RedisStore::~RedisStore() = default;

Result<std::unique_ptr<RedisStore>> RedisStore::Connect(const std::string& address,
                                                        const std::string& key_prefix) {
  return Connect(RedisStoreOptions{.address = address, .key_prefix = key_prefix});
}

Result<std::unique_ptr<RedisStore>> RedisStore::Connect(RedisStoreOptions options) {
  if (options.key_prefix.empty() || options.key_prefix.find_first_of(":/\n") != std::string::npos) {
    return InvalidArgument("key prefix '" + options.key_prefix +
                           "': must be non-empty, without ':', '/' or newlines");
  }
  IMPULSE_ASSIGN_OR_RETURN(
      auto pool,
      RedisPool::Connect({.address = options.address, .max_connections = options.max_connections}));
  // Blocking reads hold their connection for the whole wait, so they get a
  // pool of their own and never starve the scheduler's commands.
  IMPULSE_ASSIGN_OR_RETURN(auto blocking_pool,
                           RedisPool::Connect({.address = options.address,
                                               .max_connections = options.max_blocking_connections,
                                               .checkout_wait_ms = 1000}));
  return std::unique_ptr<RedisStore>(
      new RedisStore(std::move(options), std::move(pool), std::move(blocking_pool)));
}

// ---------------------------------------------------------------- jobs

Status RedisStore::CreateJob(const v1::Job& job, const std::vector<NewTask>& tasks,
                             int64_t now_ms) {
  const std::string& project = job.project();
  IMPULSE_RETURN_IF_ERROR(ValidateProjectName(project));
  IMPULSE_RETURN_IF_ERROR(ValidateId("job id", job.id()));
  if (tasks.empty()) return InvalidArgument("job " + job.id() + ": no tasks");

  // Check the graph: known kinds, unique ids, deps inside the job, no cycle.
  std::map<std::string, size_t> index;
  for (size_t i = 0; i < tasks.size(); ++i) {
    IMPULSE_RETURN_IF_ERROR(ValidateId("task id", tasks[i].id));
    if (!IsKnownKind(tasks[i].kind)) {
      return InvalidArgument("task " + tasks[i].id + ": unknown kind " +
                             std::to_string(tasks[i].kind));
    }
    if (tasks[i].max_attempts == 0)
      return InvalidArgument("task " + tasks[i].id + ": max_attempts 0");
    if (!index.emplace(tasks[i].id, i).second) {
      return InvalidArgument("job " + job.id() + ": task id " + tasks[i].id + " used twice");
    }
  }
  std::vector<std::set<size_t>> deps(tasks.size());
  std::vector<std::vector<size_t>> children(tasks.size());
  for (size_t i = 0; i < tasks.size(); ++i) {
    for (const std::string& dep : tasks[i].deps) {
      auto it = index.find(dep);
      if (it == index.end() || it->second == i) {
        return InvalidArgument("task " + tasks[i].id + ": dependency " + dep +
                               " is not another task of job " + job.id());
      }
      if (deps[i].insert(it->second).second) children[it->second].push_back(i);
    }
  }
  {
    std::vector<size_t> unmet(tasks.size());
    std::vector<size_t> ready;
    for (size_t i = 0; i < tasks.size(); ++i) {
      unmet[i] = deps[i].size();
      if (unmet[i] == 0) ready.push_back(i);
    }
    size_t ordered = 0;
    while (!ready.empty()) {
      const size_t i = ready.back();
      ready.pop_back();
      ++ordered;
      for (size_t child : children[i]) {
        if (--unmet[child] == 0) ready.push_back(child);
      }
    }
    if (ordered != tasks.size()) return InvalidArgument("job " + job.id() + ": dependency cycle");
  }

  v1::Job stored = job;
  stored.clear_tasks();
  stored.clear_results();
  stored.clear_artifacts();
  stored.clear_state();
  stored.clear_reason();

  std::vector<std::string> keys = {keys_.Job(project, job.id()),       keys_.Jobs(project),
                                   keys_.JobEvents(project, job.id()), keys_.Project(project),
                                   keys_.ActiveJobs(project),          keys_.Projects()};
  for (const NewTask& task : tasks) keys.push_back(keys_.Task(project, task.id));
  for (const NewTask& task : tasks) keys.push_back(keys_.Queue(task.kind));

  int64_t left = 0;
  std::vector<std::string> task_args;
  for (size_t i = 0; i < tasks.size(); ++i) {
    const NewTask& task = tasks[i];
    int64_t pending = 0;
    std::string dep_keys;
    for (size_t dep : deps[i]) {
      if (!tasks[dep].reused_output) ++pending;
    }
    // Dependency keys in the order given: a later dependency's blobs win
    // when two name the same input.
    std::set<std::string> seen;
    for (const std::string& dep : task.deps) {
      if (!seen.insert(dep).second) continue;
      if (!dep_keys.empty()) dep_keys += '\n';
      dep_keys += keys_.Task(project, dep);
    }
    std::string child_keys;
    for (size_t child : children[i]) {
      if (!child_keys.empty()) child_keys += '\n';
      child_keys += keys_.Task(project, tasks[child].id);
    }
    v1::TaskState state = v1::TASK_STATE_SUCCEEDED;
    if (!task.reused_output) {
      ++left;
      state = pending == 0 ? v1::TASK_STATE_QUEUED : v1::TASK_STATE_BLOCKED;
    }
    v1::TaskSpec spec = task.spec;
    spec.set_project(project);
    spec.set_job_id(job.id());
    spec.set_task_id(task.id);
    spec.set_kind(task.kind);
    task_args.insert(
        task_args.end(),
        {task.id, std::to_string(task.kind), std::to_string(state),
         std::to_string(task.max_attempts), std::to_string(pending), child_keys, dep_keys,
         Serialize(spec), task.reused_output ? Serialize(*task.reused_output) : std::string()});
  }
  std::vector<std::string> args = {
      project,
      job.id(),
      std::to_string(now_ms),
      Serialize(stored),
      std::to_string(left == 0 ? v1::JOB_STATE_SUCCEEDED : v1::JOB_STATE_QUEUED),
      std::to_string(left),
      SecondsArg(job.estimate_s()),
      FormatDouble(kDefaultJobLimitS),
      FormatDouble(kDefaultPeriodS)};
  args.insert(args.end(), task_args.begin(), task_args.end());
  IMPULSE_ASSIGN_OR_RETURN(RedisValue reply, pool_->Eval(scripts_->create_job, keys, args));
  return DecodeCreateJob(reply, job);
}

Result<v1::Job> RedisStore::GetJob(const std::string& project, const std::string& job_id) {
  IMPULSE_RETURN_IF_ERROR(ValidateProjectName(project));
  IMPULSE_RETURN_IF_ERROR(ValidateId("job id", job_id));
  std::vector<std::string> command = {"HMGET", keys_.Job(project, job_id)};
  command.insert(command.end(), kJobFields.begin(), kJobFields.end());
  IMPULSE_ASSIGN_OR_RETURN(RedisValue fields, pool_->Command(command));
  IMPULSE_ASSIGN_OR_RETURN(std::optional<v1::Job> job, DecodeJob(fields, project, job_id));
  if (!job) return NoSuchJob(project, job_id);

  std::vector<std::vector<std::string>> reads;
  const std::string task_keys = At(fields, 5);
  for (size_t start = 0; start < task_keys.size();) {
    size_t end = task_keys.find('\n', start);
    if (end == std::string::npos) end = task_keys.size();
    std::vector<std::string> read = {"HMGET", task_keys.substr(start, end - start)};
    read.insert(read.end(), kTaskFields.begin(), kTaskFields.end());
    reads.push_back(std::move(read));
    start = end + 1;
  }
  IMPULSE_ASSIGN_OR_RETURN(std::vector<RedisValue> tasks, pool_->Pipeline(reads));
  for (const RedisValue& t : tasks) {
    if (t.elements.size() != kTaskFields.size() || t.elements[0].is_nil()) continue;
    v1::Task& task = *job->add_tasks();
    task.set_id(At(t, 0));
    task.set_kind(static_cast<v1::TaskKind>(t.elements[1].AsInt()));
    task.set_state(static_cast<v1::TaskState>(t.elements[2].AsInt()));
    task.set_attempt(static_cast<uint32_t>(t.elements[3].AsInt()));
    task.set_max_attempts(static_cast<uint32_t>(t.elements[4].AsInt()));
    task.set_worker_id(At(t, 5));
    task.set_error(At(t, 6));
    task.set_progress(ParseDouble(At(t, 7)));
    task.set_started_ms(t.elements[8].AsInt());
    task.set_finished_ms(t.elements[9].AsInt());
    task.set_checkpoint_sha256(At(t, 11));
    if (task.state() == v1::TASK_STATE_SUCCEEDED) {
      IMPULSE_ASSIGN_OR_RETURN(v1::TaskOutput output,
                               Parse<v1::TaskOutput>(At(t, 10), "output of " + task.id()));
      MergeOutput(output, *job);
    }
  }
  return std::move(*job);
}

Result<std::vector<v1::Job>> RedisStore::ListJobs(const std::string& project, uint32_t limit) {
  IMPULSE_RETURN_IF_ERROR(ValidateProjectName(project));
  if (limit == 0) limit = kDefaultJobLimit;
  IMPULSE_ASSIGN_OR_RETURN(RedisValue ids, pool_->Command({"ZREVRANGE", keys_.Jobs(project), "0",
                                                           std::to_string(limit - 1)}));
  std::vector<std::vector<std::string>> reads;
  for (const RedisValue& id : ids.elements) {
    std::vector<std::string> read = {"HMGET", keys_.Job(project, id.str)};
    read.insert(read.end(), kJobFields.begin(), kJobFields.end());
    reads.push_back(std::move(read));
  }
  IMPULSE_ASSIGN_OR_RETURN(std::vector<RedisValue> fields, pool_->Pipeline(reads));
  std::vector<v1::Job> jobs;
  for (size_t i = 0; i < fields.size(); ++i) {
    IMPULSE_ASSIGN_OR_RETURN(std::optional<v1::Job> job,
                             DecodeJob(fields[i], project, ids.elements[i].str));
    if (job) jobs.push_back(std::move(*job));
  }
  return jobs;
}

Status RedisStore::CancelJob(const std::string& project, const std::string& job_id,
                             const std::string& reason, int64_t now_ms) {
  IMPULSE_RETURN_IF_ERROR(ValidateProjectName(project));
  IMPULSE_RETURN_IF_ERROR(ValidateId("job id", job_id));
  IMPULSE_ASSIGN_OR_RETURN(
      RedisValue reply,
      pool_->Eval(scripts_->cancel_job, {keys_.Job(project, job_id)},
                  {std::to_string(now_ms), reason.empty() ? "cancelled" : OneLine(reason)}));
  return DecodeCancelJob(reply, project, job_id);
}

// ---------------------------------------------------------------- scheduling

Result<std::optional<LeaseGrant>> RedisStore::LeaseTask(const std::string& worker_id,
                                                        const std::vector<v1::TaskKind>& kinds,
                                                        int64_t now_ms, int64_t lease_ttl_ms) {
  IMPULSE_RETURN_IF_ERROR(ValidateId("worker id", worker_id));
  if (lease_ttl_ms <= 0) return InvalidArgument("lease_ttl_ms must be positive");
  std::vector<std::string> keys = {keys_.Leases(), keys_.Fence(), keys_.Worker(worker_id),
                                   keys_.Workers()};
  std::vector<v1::TaskKind> wanted(kinds.begin(), kinds.end());
  if (wanted.empty()) wanted.assign(kAllKinds.begin(), kAllKinds.end());
  std::set<v1::TaskKind> seen;
  for (v1::TaskKind kind : wanted) {
    if (!IsKnownKind(kind)) return InvalidArgument("unknown task kind " + std::to_string(kind));
    if (seen.insert(kind).second) keys.push_back(keys_.Queue(kind));
  }
  IMPULSE_ASSIGN_OR_RETURN(RedisValue reply,
                           pool_->Eval(scripts_->lease_task, keys,
                                       {keys_.prefix(), worker_id, std::to_string(now_ms),
                                        std::to_string(lease_ttl_ms)}));
  return DecodeLeaseTask(reply);
}

Result<HeartbeatAnswer> RedisStore::Heartbeat(const std::string& project,
                                              const std::string& task_id, uint64_t fencing_token,
                                              const TaskReport& report, int64_t now_ms,
                                              int64_t lease_ttl_ms) {
  IMPULSE_RETURN_IF_ERROR(ValidateProjectName(project));
  IMPULSE_RETURN_IF_ERROR(ValidateId("task id", task_id));
  if (lease_ttl_ms <= 0) return InvalidArgument("lease_ttl_ms must be positive");
  std::vector<std::string> args = {
      std::to_string(fencing_token), std::to_string(now_ms),
      std::to_string(lease_ttl_ms),  FormatDouble(std::clamp(report.progress, 0.0, 1.0)),
      report.checkpoint_sha256,      SecondsArg(report.compute_s)};
  for (v1::Event event : report.events) {
    event.clear_id();
    if (event.task_id().empty()) event.set_task_id(task_id);
    if (event.time_ms() == 0) event.set_time_ms(now_ms);
    args.push_back(Serialize(event));
  }
  IMPULSE_ASSIGN_OR_RETURN(
      RedisValue reply,
      pool_->Eval(scripts_->heartbeat, {keys_.Task(project, task_id), keys_.Leases()}, args));
  return DecodeHeartbeat(reply, project, task_id, fencing_token);
}

Result<CompletionEffect> RedisStore::CompleteTask(const std::string& project,
                                                  const std::string& task_id,
                                                  uint64_t fencing_token,
                                                  const TaskCompletion& completion,
                                                  int64_t now_ms) {
  IMPULSE_RETURN_IF_ERROR(ValidateProjectName(project));
  IMPULSE_RETURN_IF_ERROR(ValidateId("task id", task_id));
  std::string error = OneLine(completion.error);
  if (!completion.succeeded && error.empty()) error = "no error given";
  IMPULSE_ASSIGN_OR_RETURN(
      RedisValue reply,
      pool_->Eval(
          scripts_->complete_task, {keys_.Task(project, task_id), keys_.Leases()},
          {std::to_string(fencing_token), std::to_string(now_ms), completion.succeeded ? "1" : "0",
           error, completion.succeeded ? Serialize(completion.output) : std::string(),
           SecondsArg(completion.compute_s)}));
  return DecodeCompleteTask(reply, project, task_id, fencing_token);
}

Result<std::vector<ExpiredLease>> RedisStore::RequeueExpired(int64_t now_ms) {
  std::vector<ExpiredLease> expired;
  while (true) {
    IMPULSE_ASSIGN_OR_RETURN(
        RedisValue reply,
        pool_->Eval(scripts_->requeue_expired, {keys_.Leases()},
                    {keys_.prefix(), std::to_string(now_ms), std::to_string(kRequeueBatch)}));
    IMPULSE_ASSIGN_OR_RETURN(int64_t handled, DecodeRequeueExpired(reply, expired));
    if (handled < kRequeueBatch) return expired;
  }
}

// ---------------------------------------------------------------- events

Result<EventBatch> RedisStore::ReadEvents(const std::string& project, const std::string& job_id,
                                          const std::string& after_id, int64_t max_wait_ms,
                                          uint32_t max_count) {
  IMPULSE_RETURN_IF_ERROR(ValidateProjectName(project));
  IMPULSE_RETURN_IF_ERROR(ValidateId("job id", job_id));
  if (!after_id.empty() && !IsStreamId(after_id)) {
    return InvalidArgument("event id '" + after_id + "': expected MS-SEQ, as events carry");
  }
  if (max_count == 0) max_count = kDefaultEventCount;
  // The state is read before the stream: a job that had ended by then has
  // all its events in the stream already, so job_finished hides none.
  IMPULSE_ASSIGN_OR_RETURN(RedisValue state,
                           pool_->Command({"HGET", keys_.Job(project, job_id), "state"}));
  if (state.is_nil()) return NoSuchJob(project, job_id);
  const bool ended = IsTerminal(static_cast<v1::JobState>(state.AsInt()));
  const int64_t wait_ms =
      ended ? 0 : std::clamp<int64_t>(max_wait_ms, 0, options_.max_event_wait_ms);

  std::vector<std::string> command = {"XREAD", "COUNT", std::to_string(max_count)};
  if (wait_ms > 0) command.insert(command.end(), {"BLOCK", std::to_string(wait_ms)});
  command.insert(command.end(), {"STREAMS", keys_.JobEvents(project, job_id),
                                 after_id.empty() ? "0-0" : after_id});
  Result<RedisValue> reply =
      wait_ms > 0 ? blocking_pool_->BlockingCommand(command, wait_ms) : pool_->Command(command);
  if (!reply.ok()) return reply.status();

  EventBatch batch;
  // Reply: nil on timeout, else [[stream key, [[id, [field, value, ...]], ...]]].
  if (!reply->is_nil() && !reply->elements.empty() && reply->elements[0].elements.size() == 2) {
    for (const RedisValue& entry : reply->elements[0].elements[1].elements) {
      if (entry.elements.size() == 2) batch.events.push_back(DecodeEvent(entry));
    }
  }
  batch.job_finished = ended && batch.events.size() < max_count;
  return batch;
}

// ---------------------------------------------------------------- workers

Status RedisStore::UpsertWorker(const v1::WorkerInfo& worker, int64_t now_ms) {
  IMPULSE_RETURN_IF_ERROR(ValidateId("worker id", worker.id()));
  v1::WorkerInfo stored = worker;
  stored.clear_last_seen_ms();
  stored.clear_current_task();
  return pool_
      ->Pipeline({{"MULTI"},
                  {"HSET", keys_.Worker(worker.id()), "pb", Serialize(stored)},
                  {"ZADD", keys_.Workers(), std::to_string(now_ms), worker.id()},
                  {"EXEC"}})
      .status();
}

Result<std::vector<v1::WorkerInfo>> RedisStore::ListWorkers(int64_t seen_after_ms) {
  IMPULSE_ASSIGN_OR_RETURN(RedisValue seen,
                           pool_->Command({"ZRANGEBYSCORE", keys_.Workers(),
                                           std::to_string(seen_after_ms), "+inf", "WITHSCORES"}));
  std::vector<std::vector<std::string>> reads;
  for (size_t i = 0; i + 1 < seen.elements.size(); i += 2) {
    reads.push_back({"HMGET", keys_.Worker(seen.elements[i].str), "pb", "current_task"});
  }
  IMPULSE_ASSIGN_OR_RETURN(std::vector<RedisValue> fields, pool_->Pipeline(reads));
  std::vector<v1::WorkerInfo> workers;
  for (size_t i = 0; i < fields.size(); ++i) {
    if (fields[i].elements.size() != 2 || fields[i].elements[0].is_nil()) continue;
    const std::string& id = seen.elements[2 * i].str;
    IMPULSE_ASSIGN_OR_RETURN(v1::WorkerInfo worker,
                             Parse<v1::WorkerInfo>(At(fields[i], 0), "worker " + id));
    worker.set_id(id);
    worker.set_last_seen_ms(static_cast<int64_t>(ParseDouble(seen.elements[2 * i + 1].str)));
    worker.set_current_task(At(fields[i], 1));
    workers.push_back(std::move(worker));
  }
  return workers;
}

// ---------------------------------------------------------------- blobs, datasets

Result<std::vector<std::string>> RedisStore::MissingBlobs(const std::string& project,
                                                          const std::vector<std::string>& sha256) {
  IMPULSE_RETURN_IF_ERROR(ValidateProjectName(project));
  if (sha256.empty()) return std::vector<std::string>();
  std::vector<std::string> command = {"SMISMEMBER", keys_.Blobs(project)};
  for (const std::string& sha : sha256) {
    if (!IsSha256Hex(sha)) return InvalidArgument("'" + sha + "' is not a lowercase hex sha256");
    command.push_back(sha);
  }
  IMPULSE_ASSIGN_OR_RETURN(RedisValue member, pool_->Command(command));
  if (member.elements.size() != sha256.size()) return Internal("SMISMEMBER: wrong reply size");
  std::vector<std::string> missing;
  for (size_t i = 0; i < sha256.size(); ++i) {
    if (member.elements[i].AsInt() == 0) missing.push_back(sha256[i]);
  }
  return missing;
}

Status RedisStore::AddBlobs(const std::string& project, const std::vector<std::string>& sha256) {
  IMPULSE_RETURN_IF_ERROR(ValidateProjectName(project));
  if (sha256.empty()) return Status::Ok();
  std::vector<std::string> command = {"SADD", keys_.Blobs(project)};
  for (const std::string& sha : sha256) {
    if (!IsSha256Hex(sha)) return InvalidArgument("'" + sha + "' is not a lowercase hex sha256");
    command.push_back(sha);
  }
  return pool_->Command(command).status();
}

Status RedisStore::PutDataset(const std::string& project, const v1::DatasetInfo& dataset) {
  IMPULSE_RETURN_IF_ERROR(ValidateProjectName(project));
  if (!IsSha256Hex(dataset.sha256())) {
    return InvalidArgument("dataset sha256 '" + dataset.sha256() +
                           "' is not a lowercase hex sha256");
  }
  return pool_
      ->Command({"HSET", keys_.Dataset(project, dataset.sha256()), "pb", Serialize(dataset)})
      .status();
}

Result<v1::DatasetInfo> RedisStore::GetDataset(const std::string& project,
                                               const std::string& sha256) {
  IMPULSE_RETURN_IF_ERROR(ValidateProjectName(project));
  if (!IsSha256Hex(sha256)) return NotFound("project '" + project + "' has no dataset " + sha256);
  IMPULSE_ASSIGN_OR_RETURN(RedisValue bytes,
                           pool_->Command({"HGET", keys_.Dataset(project, sha256), "pb"}));
  if (bytes.is_nil()) return NotFound("project '" + project + "' has no dataset " + sha256);
  return Parse<v1::DatasetInfo>(bytes.str, "dataset " + sha256);
}

Result<std::optional<v1::TaskOutput>> RedisStore::GetCachedOutput(const std::string& project,
                                                                  const std::string& key) {
  IMPULSE_RETURN_IF_ERROR(ValidateProjectName(project));
  if (key.empty()) return InvalidArgument("empty cache key");
  IMPULSE_ASSIGN_OR_RETURN(RedisValue bytes, pool_->Command({"GET", keys_.Cache(project, key)}));
  if (bytes.is_nil()) return std::optional<v1::TaskOutput>();
  IMPULSE_ASSIGN_OR_RETURN(v1::TaskOutput output,
                           Parse<v1::TaskOutput>(bytes.str, "cached output " + key));
  return std::optional<v1::TaskOutput>(std::move(output));
}

Status RedisStore::PutCachedOutput(const std::string& project, const std::string& key,
                                   const v1::TaskOutput& output) {
  IMPULSE_RETURN_IF_ERROR(ValidateProjectName(project));
  if (key.empty()) return InvalidArgument("empty cache key");
  return pool_->Command({"SET", keys_.Cache(project, key), Serialize(output)}).status();
}

// ---------------------------------------------------------------- weights

Status RedisStore::PutWeights(const std::string& project, const std::string& name,
                              const std::string& sha256) {
  IMPULSE_RETURN_IF_ERROR(ValidateProjectName(project));
  IMPULSE_RETURN_IF_ERROR(ValidateId("weights name", name));
  if (!IsSha256Hex(sha256)) return InvalidArgument("weights " + name + ": not a sha256");
  return pool_->Command({"HSET", keys_.Weights(project), name, sha256}).status();
}

Result<std::string> RedisStore::GetWeights(const std::string& project, const std::string& name) {
  IMPULSE_RETURN_IF_ERROR(ValidateProjectName(project));
  IMPULSE_RETURN_IF_ERROR(ValidateId("weights name", name));
  IMPULSE_ASSIGN_OR_RETURN(RedisValue sha, pool_->Command({"HGET", keys_.Weights(project), name}));
  if (sha.is_nil()) return NotFound("project '" + project + "' has no weights named '" + name + "'");
  return sha.str;
}

// ---------------------------------------------------------------- metrics

Result<QueueStats> RedisStore::GetQueueStats() {
  std::vector<std::vector<std::string>> commands;
  for (v1::TaskKind kind : kAllKinds) commands.push_back({"ZCARD", keys_.Queue(kind)});
  commands.push_back({"ZCARD", keys_.Leases()});
  IMPULSE_ASSIGN_OR_RETURN(std::vector<RedisValue> counts, pool_->Pipeline(commands));
  QueueStats stats;
  for (size_t i = 0; i < kAllKinds.size(); ++i)
    stats.queued.emplace_back(kAllKinds[i], counts[i].AsInt());
  stats.running = counts.back().AsInt();
  return stats;
}

}  // namespace impulse::coordinator
