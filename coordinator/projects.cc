#include "coordinator/projects.h"

#include <cmath>
#include <cstdio>
#include <ctime>

namespace impulse::coordinator {
namespace {

// Whole seconds when the value is one, else one decimal: "1200", "0.4".
std::string Seconds(double value) {
  char text[48];
  std::snprintf(text, sizeof text, value == std::floor(value) ? "%.0f" : "%.1f", value);
  return text;
}

// A zero setting takes `fallback`; anything else must lie in [min, max].
Result<double> CheckSetting(const char* field, double value, double fallback, double min,
                            double max) {
  if (!std::isfinite(value)) return InvalidArgument(std::string(field) + ": not a number");
  if (value < 0)
    return InvalidArgument(std::string(field) + ": " + Seconds(value) + " is negative");
  if (value == 0) return fallback;
  if (value < min || value > max) {
    return InvalidArgument(std::string(field) + ": " + Seconds(value) + " s is outside [" +
                           Seconds(min) + ", " + Seconds(max) + "] s");
  }
  return value;
}

}  // namespace

Result<v1::Project> ResolveProjectSettings(const v1::Project& settings) {
  v1::Project resolved;
  resolved.set_name(settings.name());
  IMPULSE_ASSIGN_OR_RETURN(double job_limit_s, CheckSetting("job_limit_s", settings.job_limit_s(),
                                                            kDefaultJobLimitS, 1, kMaxJobLimitS));
  IMPULSE_ASSIGN_OR_RETURN(
      double budget_s,
      CheckSetting("period_budget_s", settings.period_budget_s(), 0, 1, kMaxBudgetS));
  IMPULSE_ASSIGN_OR_RETURN(
      double period_s,
      CheckSetting("period_s", settings.period_s(), kDefaultPeriodS, kMinPeriodS, kMaxPeriodS));
  if (settings.max_concurrent_jobs() > kMaxConcurrentJobs) {
    return InvalidArgument(
        "max_concurrent_jobs: " + std::to_string(settings.max_concurrent_jobs()) + " is above " +
        std::to_string(kMaxConcurrentJobs));
  }
  resolved.set_job_limit_s(job_limit_s);
  resolved.set_period_budget_s(budget_s);
  resolved.set_period_s(period_s);
  resolved.set_max_concurrent_jobs(settings.max_concurrent_jobs());
  return resolved;
}

std::string FormatUtc(int64_t ms) {
  const std::time_t seconds = static_cast<std::time_t>(ms / 1000);
  std::tm tm{};
  gmtime_r(&seconds, &tm);
  char text[40];
  std::strftime(text, sizeof text, "%Y-%m-%d %H:%M:%S UTC", &tm);
  return text;
}

std::string OverJobLimitMessage(double estimate_s, double limit_s, const std::string& advice) {
  std::string message = "estimated " + Seconds(std::ceil(estimate_s)) +
                        " s of compute exceeds the project's limit of " + Seconds(limit_s) +
                        " s per job; ";
  message += advice.empty() ? "nothing smaller that was tried fits; " : advice + "; or ";
  return message + "raise the limit with: impulse-client project set --job-limit DURATION";
}

std::string OverBudgetMessage(const std::string& project, double used_s, double budget_s,
                              double estimate_s, int64_t reset_ms) {
  return "project '" + project + "' has used " + Seconds(std::ceil(used_s)) + " s of its " +
         Seconds(budget_s) + " s compute budget this period and this job is estimated at " +
         Seconds(std::ceil(estimate_s)) + " s; the budget resets at " + FormatUtc(reset_ms) +
         ", or raise it with: impulse-client project set --budget DURATION";
}

std::string TooManyJobsMessage(const std::string& project, int64_t active, int64_t max) {
  return "project '" + project + "' already has " + std::to_string(active) + " of its " +
         std::to_string(max) +
         " concurrent jobs queued or running; wait for one to end, cancel one, or raise it "
         "with: impulse-client project set --max-jobs N";
}

}  // namespace impulse::coordinator
