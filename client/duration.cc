#include "client/duration.h"

#include <cmath>
#include <cstdio>
#include <cstdlib>

namespace impulse::client {
namespace {

constexpr struct {
  char unit;
  double seconds;
} kUnits[] = {{'d', 86400}, {'h', 3600}, {'m', 60}, {'s', 1}};

double UnitSeconds(char unit) {
  for (const auto& u : kUnits) {
    if (u.unit == unit) return u.seconds;
  }
  return 0;
}

}  // namespace

Result<double> ParseDurationS(std::string_view text, std::string_view flag) {
  const Status bad = InvalidArgument(std::string(flag) + ": '" + std::string(text) +
                                     "' is not a duration (use e.g. 90s, 20m, 10h, 1d)");
  if (text.empty()) return bad;
  double total = 0;
  size_t i = 0;
  while (i < text.size()) {
    const size_t start = i;
    while (i < text.size() && ((text[i] >= '0' && text[i] <= '9') || text[i] == '.')) ++i;
    if (i == start) return bad;
    const std::string number(text.substr(start, i - start));
    char* end = nullptr;
    const double value = std::strtod(number.c_str(), &end);
    if (end != number.c_str() + number.size()) return bad;
    double unit = 1;
    if (i < text.size()) {
      unit = UnitSeconds(text[i]);
      if (unit == 0) return bad;
      ++i;
    } else if (start > 0) {
      return bad;  // "1h30": a bare number only stands alone
    }
    total += value * unit;
  }
  if (!std::isfinite(total)) return bad;
  return total;
}

std::string FormatDurationS(double seconds) {
  char text[64];
  if (seconds != std::floor(seconds) || seconds < 0) {
    std::snprintf(text, sizeof text, "%.1fs", seconds);
    return text;
  }
  if (seconds == 0) return "0s";
  std::string out;
  double left = seconds;
  for (const auto& u : kUnits) {
    const double count = std::floor(left / u.seconds);
    if (count < 1) continue;
    std::snprintf(text, sizeof text, "%.0f%c", count, u.unit);
    out += text;
    left -= count * u.seconds;
  }
  return out;
}

}  // namespace impulse::client
