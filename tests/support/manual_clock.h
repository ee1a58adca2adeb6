// ManualClock: a Clock that moves only when told, so tests drive lease
// expiry and deadlines without sleeping.
//
// Thread-safe. SleepForMs() advances the clock instead of blocking, so code
// that polls "until now >= deadline" finishes at once in tests.
#pragma once

#include <atomic>
#include <cstdint>

#include "coordinator/clock.h"

namespace impulse::testing {

class ManualClock final : public coordinator::Clock {
 public:
  explicit ManualClock(int64_t start_ms = 1'700'000'000'000) : now_ms_(start_ms) {}

  int64_t NowMs() override { return now_ms_.load(); }
  void SleepForMs(int64_t duration_ms) override {
    if (duration_ms > 0) now_ms_ += duration_ms;
  }

  void AdvanceMs(int64_t duration_ms) { now_ms_ += duration_ms; }
  void SetMs(int64_t now_ms) { now_ms_ = now_ms; }

 private:
  std::atomic<int64_t> now_ms_;
};

}  // namespace impulse::testing
