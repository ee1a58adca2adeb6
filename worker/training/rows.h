// Which feature rows train, validate and test: one deterministic function
// that the train task and the evaluation task both call, so "validation"
// means the same rows in both. No LibTorch.
#pragma once

#include <cstdint>
#include <vector>

#include "worker/features/feature_matrix.h"

namespace impulse::worker::training {

struct RowSplit {
  std::vector<uint64_t> train;       // split TRAIN rows not held out
  std::vector<uint64_t> validation;  // held out from TRAIN, stratified
  std::vector<uint64_t> test;        // split TEST rows
};

// Stratified hold-out: for each label, its TRAIN rows are shuffled with a
// generator seeded by `seed` and round(count * validation_split) of them
// (at least 1 when the label has 2 or more rows and validation_split > 0)
// go to validation. Each list is in increasing row order. Same inputs, same
// split, on every machine.
RowSplit SplitRows(const features::FeatureMatrix& features, double validation_split, uint64_t seed);

// A 64-bit mix of (seed, stream): independent generator seeds per purpose
// and epoch (SplitMix64 finaliser).
uint64_t MixSeed(uint64_t seed, uint64_t stream);

}  // namespace impulse::worker::training
