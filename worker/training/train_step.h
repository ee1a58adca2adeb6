// The train task's inner loop, piece by piece: one batch, one optimizer
// step. Train (train.cc) runs its epochs with these, and
// bench/training_bench.cc times the same calls, so the benchmark measures
// the worker's own code path. LibTorch headers: worker/training and bench/
// only.
#pragma once

#include <torch/torch.h>

#include <cstdint>
#include <memory>
#include <random>
#include <vector>

#include "worker/features/feature_matrix.h"
#include "worker/training/graph_module.h"

namespace impulse::worker::training {

// uint8 rows -> [n, C, H, W] float in [0, 1], augmented when asked (random
// horizontal flip, a shift of up to W/16 pixels by zero-padded crop,
// brightness x U(0.8, 1.2); draws from rng, in row order). The features stay
// uint8 in memory; only one batch is ever float.
torch::Tensor MakeBatch(const features::FeatureMatrix& fm, const uint64_t* rows, int64_t n,
                        bool augment, std::mt19937_64& rng);
// The rows' labels as [n] int64.
torch::Tensor BatchLabels(const features::FeatureMatrix& fm, const uint64_t* rows, int64_t n);

// Adam, or SGD with momentum 0.9, over every parameter of `module`.
std::unique_ptr<torch::optim::Optimizer> MakeOptimizer(bool sgd, double learning_rate,
                                                       GraphModule& module);

// `rows` in an epoch's order: a Fisher-Yates shuffle drawing from rng.
std::vector<uint64_t> ShuffledRows(std::vector<uint64_t> rows, std::mt19937_64& rng);

struct StepResult {
  double loss = 0;      // mean cross-entropy of the batch
  int64_t correct = 0;  // rows whose argmax logit is the label
  bool finite = true;   // false: the loss is NaN or infinite and no step was taken
};

// One training step on `n` rows (module in train mode): MakeBatch, forward,
// cross-entropy, backward, optimizer step.
StepResult TrainStep(GraphModule& module, torch::optim::Optimizer& opt,
                     const features::FeatureMatrix& fm, const uint64_t* rows, int64_t n,
                     bool augment, std::mt19937_64& rng);

}  // namespace impulse::worker::training
