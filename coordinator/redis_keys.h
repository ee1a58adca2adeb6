// RedisKeys: the one place Redis key names are built. Every key starts with
// the namespace prefix ("ic" in production; tests pick their own), so two
// clusters or two tests can share one redis-server.
//
//   PREFIX:{project}:job:{id}          per-project keys (project names never
//   PREFIX:{project}:task:{id}         hold ':' or '/', see ValidProjectName)
//   PREFIX:queue:{kind}                cluster-wide scheduler keys
//   PREFIX:worker:{id}
//
// The Lua scripts find most keys in hash fields written from these
// functions; the one pattern they build themselves, a task key from a
// queue or lease member, is task_key() in coordinator/scripts/common.lua and
// must stay equal to Task() below.
//
// Thread-safe: immutable after construction.
#pragma once

#include <string>
#include <string_view>

#include "impulse/task_names.h"
#include "impulse/v1/job.pb.h"

namespace impulse::coordinator {

class RedisKeys {
 public:
  explicit RedisKeys(std::string prefix = "ic") : prefix_(std::move(prefix)) {}

  const std::string& prefix() const { return prefix_; }

  // ---- per project
  std::string Job(std::string_view project, std::string_view job_id) const {
    return Join(project, "job:", job_id);
  }
  std::string Jobs(std::string_view project) const { return Join(project, "jobs", ""); }
  std::string JobEvents(std::string_view project, std::string_view job_id) const {
    return Job(project, job_id) + ":events";
  }
  std::string Task(std::string_view project, std::string_view task_id) const {
    return Join(project, "task:", task_id);
  }
  std::string Blobs(std::string_view project) const { return Join(project, "blobs", ""); }
  std::string Dataset(std::string_view project, std::string_view sha256) const {
    return Join(project, "dataset:", sha256);
  }
  std::string Cache(std::string_view project, std::string_view cache_key) const {
    return Join(project, "cache:", cache_key);
  }
  std::string Weights(std::string_view project) const { return Join(project, "weights", ""); }
  std::string Project(std::string_view project) const { return Join(project, "project", ""); }
  std::string ActiveJobs(std::string_view project) const { return Join(project, "active", ""); }

  // ---- cluster-wide
  std::string Queue(v1::TaskKind kind) const { return prefix_ + ":queue:" + TaskKindName(kind); }
  std::string Leases() const { return prefix_ + ":leases"; }
  std::string Fence() const { return prefix_ + ":fence"; }
  std::string Projects() const { return prefix_ + ":projects"; }
  std::string Workers() const { return prefix_ + ":workers"; }
  std::string CostTables() const { return prefix_ + ":costs"; }
  std::string EstimateScales() const { return prefix_ + ":estimate_scales"; }
  std::string Worker(std::string_view worker_id) const {
    return prefix_ + ":worker:" + std::string(worker_id);
  }

  // Not a key: the member naming a task in the queue and lease sorted sets.
  static std::string TaskEntry(std::string_view project, std::string_view task_id) {
    std::string entry(project);
    entry += '/';
    entry += task_id;
    return entry;
  }

 private:
  std::string Join(std::string_view project, std::string_view kind, std::string_view id) const {
    std::string key = prefix_;
    key += ':';
    key += project;
    key += ':';
    key += kind;
    key += id;
    return key;
  }

  const std::string prefix_;
};

}  // namespace impulse::coordinator
