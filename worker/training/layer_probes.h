// The cost calibration's per-kind probes (worker/training/cost_calibration.h,
// steps 1-3): every price of one pass from small graphs that differ in one
// layer kind, timed with `timer`. Internal to the calibration.
#pragma once

#include "impulse/status.h"
#include "impulse/v1/coordinator.pb.h"
#include "worker/training/calibration_timer.h"

namespace impulse::worker::training {

// Every per-kind figure of `timer`'s pass (training or inference), into `c`.
Status MeasurePass(Timer& timer, v1::PassCosts& c);

}  // namespace impulse::worker::training
