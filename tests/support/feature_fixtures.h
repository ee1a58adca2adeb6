// Feature matrices for tests: random pixels with labels and splits, for
// code that runs a model on rows without caring what it predicts
// (calibration, quantization, integer against float inference), and a
// learnable set for code that needs a trained model.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "worker/features/feature_matrix.h"

namespace impulse::testing {

// Writes `train[l]` TRAIN rows then `test[l]` TEST rows of each label l
// (labels "l0", "l1", ...; test may be empty), [c, h, w] uniform random
// pixels drawn from `seed`, and opens the file. Aborts the test on failure.
worker::features::FeatureMatrix WriteRandomFeatures(const std::string& path,
                                                    const std::vector<int>& train,
                                                    const std::vector<int>& test, uint32_t c,
                                                    uint32_t h, uint32_t w, uint32_t seed = 3);

// Three learnable classes "a", "b", "c" of 1x12x12 images: a bright 4x4
// square in a class-specific corner on dark noise. `train` TRAIN then
// `test` TEST rows per class, interleaved by class. A small CNN separates
// them in a few epochs.
worker::features::FeatureMatrix WriteCornerSquareFeatures(const std::string& path, int train,
                                                          int test, uint32_t seed = 7);

}  // namespace impulse::testing
