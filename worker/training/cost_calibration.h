// Cost calibration: what this worker's CPU charges per unit of work of each
// layer kind, measured once at start and reported to the coordinator
// (DESIGN.md, "Compute limits"; impulse/estimate/compute_estimate.h gives
// the model the figures feed). The header is LibTorch-free.
//
// Algorithm. For each pass (training steps of 32 rows; eval-mode inference
// of 64), on the worker's own code path (GraphModule, MakeBatch, TrainStep
// with Adam) and `threads` threads, one layer kind at a time:
//   1. per-batch and per-layer overhead: a one-layer classifier on an 8x8
//      input against the same behind 24 dense layers of 16 units;
//   2. every other kind from a pair of graphs that differ only in how many
//      copies of one layer follow the same prefix: their time difference,
//      per layer and per sample, less the per-layer overhead, divided by
//      that layer's work (impulse/estimate's WorkOf). Kinds with two terms
//      take two such pairs of different shapes and solve for both:
//        batch norm, ReLU (element-wise)  after a 16-channel conv, NCHW
//        k x k conv     1 -> 16 on 32x32 (9 MACs per output), 32 -> 32 on 16x16
//        pointwise      16 -> 16 on 24x24, 96 -> 96 on 12x12, channels-last
//                       behind a depthwise layer, as MobileNets run
//        depthwise      32 channels of 48x48, 128 channels of 2x2
//   3. dense and the optimizer: a 1.8 M-parameter MLP at 4 and 128 rows
//      (the slope is per sample, the intercept per step).
// Each time is the lower quartile of repeated calls after a warm-up; a
// figure that noise would make negative is kept at a small positive share
// of its probe's time, so every figure is positive and finite.
//
//   4. the feature explorer: PCA of 400 rows of 4 096 values, t-SNE of 300
//      points (a fifth of its iterations, scaled).
// The int8 evaluator, image decoding, task and checkpoint figures are not
// measured (left 0: the default table's apply).
//
// Sets LibTorch's process-wide thread count. Call it before serving tasks,
// not concurrently with them. Takes about budget_s, plus warm-ups.
#pragma once

#include <string>

#include "impulse/status.h"
#include "impulse/v1/coordinator.pb.h"

namespace impulse::worker::training {

struct CalibrationOptions {
  int threads = 1;          // as the worker's tasks run
  std::string scratch_dir;  // for a small temporary feature matrix
  double budget_s = 3.0;    // time to spend measuring, roughly
  std::string cpu_model;    // for CostTable.source
};

// The measured table: source "<cpu model> x<threads>", calibration_s and
// measured_ms set. Internal when LibTorch throws; Internal/NotFound when
// the scratch file cannot be written.
Result<v1::CostTable> MeasureCostTable(const CalibrationOptions& options);

}  // namespace impulse::worker::training
