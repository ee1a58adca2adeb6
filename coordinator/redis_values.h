// Numbers and replies as the RedisStore's .cc files read and write them.
// Internal to the Redis implementation; thread-safe (pure functions).
#pragma once

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <string>

#include "coordinator/redis_connection.h"

namespace impulse::coordinator {

inline double ParseDouble(const std::string& text) { return std::strtod(text.c_str(), nullptr); }

// Round-trips exactly ("%.17g"); Lua's tonumber and HINCRBYFLOAT read it.
inline std::string FormatDouble(double value) {
  char buffer[32];
  std::snprintf(buffer, sizeof buffer, "%.17g", value);
  return buffer;
}

// Seconds a caller reports (an estimate, a worker's compute time): a
// negative or non-finite value counts as 0.
inline std::string SecondsArg(double seconds) {
  return FormatDouble(std::isfinite(seconds) ? std::max(0.0, seconds) : 0.0);
}

// Element i of an array reply as text ("" when absent).
inline std::string At(const RedisValue& reply, size_t i) {
  return i < reply.elements.size() ? reply.elements[i].Text() : std::string();
}

}  // namespace impulse::coordinator
