// RedisStore's projects: settings, budget periods and usage (the schema
// and consistency are in the class comment, coordinator/redis_store.h).
// Charging and admission happen inside the job scripts; this file reads
// and writes the settings.
#include <algorithm>

#include "coordinator/projects.h"
#include "coordinator/redis_connection.h"
#include "coordinator/redis_store.h"
#include "coordinator/redis_values.h"

namespace impulse::coordinator {
namespace {

// The settings a project without a hash reads as.
v1::Project DefaultProject(const std::string& name) {
  v1::Project project;
  project.set_name(name);
  project.set_job_limit_s(kDefaultJobLimitS);
  project.set_period_s(kDefaultPeriodS);
  return project;
}

// get_project.lua / set_project.lua: {'OK', job_limit_s, period_budget_s,
// period_s, max_concurrent_jobs, period_start_ms, period_used_s,
// total_used_s, active jobs} or {'NONE'}.
Result<v1::Project> DecodeProject(const RedisValue& reply, const std::string& name) {
  const std::string code = At(reply, 0);
  if (code == "NONE") return DefaultProject(name);
  if (code != "OK" || reply.elements.size() != 9) {
    return Internal("get_project.lua: unexpected reply '" + code + "'");
  }
  v1::Project project;
  project.set_name(name);
  project.set_job_limit_s(ParseDouble(At(reply, 1)));
  project.set_period_budget_s(ParseDouble(At(reply, 2)));
  project.set_period_s(ParseDouble(At(reply, 3)));
  project.set_max_concurrent_jobs(static_cast<uint32_t>(reply.elements[4].AsInt()));
  const double start_ms = ParseDouble(At(reply, 5));
  if (start_ms > 0) {
    project.set_period_reset_ms(static_cast<int64_t>(start_ms + project.period_s() * 1000));
  }
  project.set_period_used_s(ParseDouble(At(reply, 6)));
  project.set_total_used_s(ParseDouble(At(reply, 7)));
  project.set_active_jobs(static_cast<uint32_t>(reply.elements[8].AsInt()));
  return project;
}

const LuaScript& GetProjectScript() {
  static const LuaScript script("get_project");
  return script;
}

const LuaScript& SetProjectScript() {
  static const LuaScript script("set_project");
  return script;
}

}  // namespace

Result<v1::Project> RedisStore::GetProject(const std::string& project, int64_t now_ms) {
  IMPULSE_RETURN_IF_ERROR(ValidateProjectName(project));
  IMPULSE_ASSIGN_OR_RETURN(
      RedisValue reply,
      pool_->Eval(GetProjectScript(), {keys_.Project(project), keys_.ActiveJobs(project)},
                  {std::to_string(now_ms)}));
  return DecodeProject(reply, project);
}

Result<v1::Project> RedisStore::SetProject(const v1::Project& settings, int64_t now_ms) {
  const std::string& project = settings.name();
  IMPULSE_RETURN_IF_ERROR(ValidateProjectName(project));
  IMPULSE_ASSIGN_OR_RETURN(v1::Project resolved, ResolveProjectSettings(settings));
  IMPULSE_ASSIGN_OR_RETURN(
      RedisValue reply,
      pool_->Eval(SetProjectScript(),
                  {keys_.Project(project), keys_.ActiveJobs(project), keys_.Projects()},
                  {project, std::to_string(now_ms), FormatDouble(resolved.job_limit_s()),
                   FormatDouble(resolved.period_budget_s()), FormatDouble(resolved.period_s()),
                   std::to_string(resolved.max_concurrent_jobs())}));
  return DecodeProject(reply, project);
}

Result<std::vector<v1::Project>> RedisStore::ListProjects(int64_t now_ms) {
  IMPULSE_ASSIGN_OR_RETURN(RedisValue names, pool_->Command({"SMEMBERS", keys_.Projects()}));
  std::vector<v1::Project> projects;
  for (const RedisValue& name : names.elements) {
    IMPULSE_ASSIGN_OR_RETURN(v1::Project project, GetProject(name.str, now_ms));
    projects.push_back(std::move(project));
  }
  std::sort(projects.begin(), projects.end(),
            [](const v1::Project& a, const v1::Project& b) { return a.name() < b.name(); });
  return projects;
}

}  // namespace impulse::coordinator
