// Clock: the coordinator's one source of time, a seam so tests can drive
// lease expiry and bounded waits without sleeping.
//
// Thread-safe: every method may be called from any thread.
#pragma once

#include <cstdint>

namespace impulse::coordinator {

class Clock {
 public:
  virtual ~Clock() = default;

  // Unix epoch milliseconds. Redis scripts receive this as ARGV; they never
  // read the time themselves.
  virtual int64_t NowMs() = 0;

  // Blocks the calling thread for about duration_ms (at least 0).
  virtual void SleepForMs(int64_t duration_ms) = 0;
};

// Wall-clock time and real sleeps.
class SystemClock final : public Clock {
 public:
  int64_t NowMs() override;
  void SleepForMs(int64_t duration_ms) override;
};

}  // namespace impulse::coordinator
