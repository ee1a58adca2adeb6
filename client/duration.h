// Durations as impulse-client's flags take and show them: a number with an
// optional unit, s (the default), m, h or d, and sequences such as "1h30m".
// Pure functions; thread-safe.
#pragma once

#include <string>
#include <string_view>

#include "impulse/status.h"

namespace impulse::client {

// Seconds. InvalidArgument naming `flag` for an empty, negative or unknown
// form, e.g. "--job-limit: '20x' is not a duration (use e.g. 90s, 20m, 10h, 1d)".
Result<double> ParseDurationS(std::string_view text, std::string_view flag);

// The largest units, zero parts left out: 1200 -> "20m", 5400 -> "1h30m",
// 86400 -> "1d", 0 -> "0s"; a fraction of a second -> "0.5s".
std::string FormatDurationS(double seconds);

}  // namespace impulse::client
