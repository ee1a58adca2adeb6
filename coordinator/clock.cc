#include "coordinator/clock.h"

#include <chrono>
#include <thread>

namespace impulse::coordinator {

int64_t SystemClock::NowMs() {
  using namespace std::chrono;
  return duration_cast<milliseconds>(system_clock::now().time_since_epoch()).count();
}

void SystemClock::SleepForMs(int64_t duration_ms) {
  if (duration_ms > 0) std::this_thread::sleep_for(std::chrono::milliseconds(duration_ms));
}

}  // namespace impulse::coordinator
