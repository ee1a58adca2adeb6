// Fashion-MNIST (Debian's dataset-fashion-mnist, IDX files) as a feature
// matrix made by the worker's own processing (features::ProcessImage), for
// tests and benchmarks that need real images without a generate-features
// task. Rows: the first `train_count` training images (split TRAIN), then
// the first `test_count` test images (split TEST); labels are the ten
// Fashion-MNIST classes.
#pragma once

#include <cstdint>
#include <string>

#include "impulse/status.h"
#include "impulse/v1/impulse.pb.h"

namespace impulse::testing {

inline constexpr char kFashionMnistDir[] = "/usr/share/datasets/fashion-mnist";

// True when `dir` holds the four IDX files.
bool HasFashionMnist(const std::string& dir = kFashionMnistDir);

// Writes the feature matrix at `path` with `impulse`'s input and processing
// blocks. Counts beyond the files' are cut to them. NotFound / Internal as
// the IDX reader and the writer report them.
Status WriteFashionMnistFeatures(const v1::Impulse& impulse, uint32_t train_count,
                                 uint32_t test_count, const std::string& path,
                                 const std::string& dir = kFashionMnistDir);

}  // namespace impulse::testing
