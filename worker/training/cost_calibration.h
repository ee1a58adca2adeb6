// Cost calibration: what this worker's CPU charges per unit of work of each
// layer kind, measured once at start and reported to the coordinator
// (DESIGN.md, "Compute limits"; impulse/estimate/compute_estimate.h gives
// the model the figures feed). The header is LibTorch-free.
//
// Algorithm. For each pass (training steps of 64 rows; eval-mode inference
// of 256), on the worker's own code path (GraphModule, MakeBatch, TrainStep
// with Adam) and `threads` threads, one layer kind at a time:
//   1. per-batch and per-layer overhead: a one-layer classifier on an 8x8
//      input against the same behind 24 dense layers of 16 units;
//   2. every other kind from a pair of graphs that differ only in how many
//      copies of one layer follow the same prefix: their time difference,
//      per layer and per sample, less the per-layer overhead, divided by
//      that layer's work (impulse/estimate's WorkOf). Kinds with two terms
//      take two such pairs of different shapes and solve for both:
//        batch norm, ReLU, max pool  after a 3 -> 16 pointwise conv, NCHW,
//                       on 24x24
//        k x k conv     1 -> 16 on 24x24 (9 MACs per output), 32 -> 32 on 12x12
//        pointwise      16 -> 16 on 24x24, 128 -> 128 on 4x4, channels-last
//                       behind a depthwise layer, as MobileNets run
//        depthwise      96 channels of 12x12, 128 channels of 2x2; and 128
//                       channels of 1x1 (a slow path of its own)
//   3. dense and the optimizer: a 0.66 M-parameter MLP at 4 and 128 rows
//      (the slope is per sample, the intercept per step);
//   4. the feature explorer: PCA of 1 000 rows of 256 values, t-SNE of
//      those 1 000 points with 10 and with 30 iterations (the difference
//      prices an iteration, the rest the fixed part; per pair of points);
//   5. the int8 stage's activation statistics over 128 rows of a small CNN,
//      less its inference at the figures of step 2;
//   6. whole reference networks (the default CNN, MobileNetV2 0.35 at two
//      batch sizes and two input sizes, MobileNetV1 0.25), each pass timed
//      four times after a warm-up: three groups of the pass's prices (per
//      batch, NCHW work, depthwise/pointwise work) are scaled to match them
//      (impulse/estimate/reference_fit.h). Layers alone miss what a whole
//      network adds or saves; the probes keep the proportions within each
//      group.
// Each pair of graphs runs alternately, one call each in turn after a
// warm-up, for budget_s / 24 or at least three turns, and each graph's time
// is its fastest call: what the machine does when nothing else runs (a
// worker measures itself once, at start, often while something else is
// busy; other processes only ever add time). A figure that noise would make
// negative is kept at a small positive share of its probe's time, so every
// figure is positive and finite.
//
// The int8 evaluator's figures are the default table's (one thread of the
// development machine) divided by the thread count: the evaluator runs one
// interpreter per thread.
// Image decoding, task, checkpoint and export figures are not measured
// (left 0: the default table's apply).
//
// Sets LibTorch's process-wide thread count. Call it before serving tasks,
// not concurrently with them. Takes about budget_s, plus warm-ups and the
// reference networks (about 5 s more on the development machine).
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
