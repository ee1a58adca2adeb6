// Fitting a pass's prices to whole networks (worker/training/cost_calibration).
//
// The per-kind prices are measured on small probe graphs, one layer kind at
// a time. Whole networks do not cost exactly what their layers cost alone:
// a real MobileNet step pays more per layer (batch-norm statistics, ReLU6
// backward, the optimizer's per-tensor work) and its large layers run at a
// better rate than a probe's, while channels-last depthwise and pointwise
// layers scale differently from NCHW convolutions. So the calibration also
// times a few reference networks whole and scales three groups of a pass's
// prices to match them:
//   fixed    per batch, per layer with weights, per parameter
//   nchw     k x k conv, dense, batch norm, pools, element-wise
//   mobile   depthwise and pointwise
// The per-kind prices keep each group's internal proportions; the fit sets
// the groups' levels: least squares in relative error over the references,
// each scale kept within [1/8, 8] of the probes' so that one noisy timing
// cannot make a price absurd. A group on which no reference spends 10 % of
// its time (the per-batch costs of inference in batches of 256) keeps its
// probe prices: noise, not the references, would set its scale.
//
// Thread safety: pure functions.
#pragma once

#include <vector>

#include "impulse/estimate/compute_estimate.h"

namespace impulse::estimate {

// One reference network timed whole: one batch (training: one step) of
// `rows` rows of `work` took `seconds`.
struct TimedReference {
  PassWork work;
  double rows = 0;
  double seconds = 0;
};

// The group scales FitToReferences applied, for logs and tests.
struct GroupScales {
  double fixed = 1;
  double nchw = 1;
  double mobile = 1;
};

// `costs` with its three groups scaled to price `references` as timed (the
// parameter term only when `optimizer_step`). With fewer than three
// references, or references that cannot tell the groups apart, `costs`
// unchanged and scales of 1.
PassCosts FitToReferences(const PassCosts& costs, const std::vector<TimedReference>& references,
                          bool optimizer_step, GroupScales* scales = nullptr);

}  // namespace impulse::estimate
