// Projects' compute limits (docs/COMPUTE.md): the defaults, the checks on
// settings, and the one-line refusals a client shows. The state itself
// (settings, usage per budget period, active jobs) lives in the Store.
//
// Limits:
//   job_limit_s          worker-seconds one job may use; a job whose
//                        estimate exceeds it is refused at submit, one that
//                        passes it while running is withdrawn.
//   period_budget_s      worker-seconds the project may use per period; a
//                        job is refused when used + its estimate > budget.
//   max_concurrent_jobs  QUEUED + RUNNING jobs at once.
// Pure functions; thread-safe.
#pragma once

#include <cstdint>
#include <string>

#include "impulse/status.h"
#include "impulse/v1/coordinator.pb.h"

namespace impulse::coordinator {

inline constexpr double kDefaultJobLimitS = 1200;     // the seed's 20 minutes
inline constexpr double kDefaultPeriodS = 86400;      // one day
inline constexpr double kMaxJobLimitS = 7 * 86400.0;  // larger is a typo
inline constexpr double kMinPeriodS = 60;
inline constexpr double kMaxPeriodS = 366 * 86400.0;
inline constexpr double kMaxBudgetS = 1e9;  // ~32 worker-years
inline constexpr uint32_t kMaxConcurrentJobs = 100000;

// The settings with zero fields replaced by their defaults; read-only
// fields are cleared. InvalidArgument naming the field (e.g.
// "job_limit_s: -5 is negative") for a negative, non-finite or
// out-of-range value.
Result<v1::Project> ResolveProjectSettings(const v1::Project& settings);

// "2025-11-27 14:00:00 UTC"
std::string FormatUtc(int64_t ms);

// The refusals, each one line saying what to change.
std::string OverJobLimitMessage(double estimate_s, double limit_s, const std::string& advice);
std::string OverBudgetMessage(const std::string& project, double used_s, double budget_s,
                              double estimate_s, int64_t reset_ms);
std::string TooManyJobsMessage(const std::string& project, int64_t active, int64_t max);

}  // namespace impulse::coordinator
