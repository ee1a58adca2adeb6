#include "tests/support/feature_fixtures.h"

#include <gtest/gtest.h>

#include <cstdlib>
#include <memory>
#include <numeric>
#include <random>

namespace impulse::testing {
namespace {

using worker::features::FeatureMatrix;
using worker::features::FeatureMatrixWriter;
using worker::features::FeatureRowInfo;
using worker::features::FeatureShape;

// A test cannot go on without its features: failures abort the binary.
template <typename T>
T OrAbort(Result<T> result) {
  if (!result.ok()) {
    ADD_FAILURE() << result.status().ToString();
    std::abort();
  }
  return std::move(result).value();
}

void Check(const Status& status) {
  if (!status.ok()) {
    ADD_FAILURE() << status.ToString();
    std::abort();
  }
}

FeatureMatrix FinishAndOpen(FeatureMatrixWriter& writer, const std::string& path) {
  Check(writer.Finish());
  return OrAbort(FeatureMatrix::Open(path));
}

}  // namespace

FeatureMatrix WriteRandomFeatures(const std::string& path, const std::vector<int>& train,
                                  const std::vector<int>& test, uint32_t c, uint32_t h, uint32_t w,
                                  uint32_t seed) {
  FeatureShape shape{.channels = c, .height = h, .width = w};
  for (size_t l = 0; l < train.size(); ++l) shape.labels.push_back("l" + std::to_string(l));
  const int total =
      std::accumulate(train.begin(), train.end(), 0) + std::accumulate(test.begin(), test.end(), 0);
  auto writer = OrAbort(FeatureMatrixWriter::Create(path, shape, total));
  std::mt19937 rng(seed);
  std::vector<uint8_t> px(shape.row_bytes());
  uint32_t sample = 0;
  for (uint8_t split : {1, 2}) {
    const std::vector<int>& counts = split == 1 ? train : test;
    for (size_t l = 0; l < counts.size(); ++l) {
      for (int i = 0; i < counts[l]; ++i) {
        for (uint8_t& p : px) p = static_cast<uint8_t>(rng());
        const FeatureRowInfo info{
            .label = static_cast<uint32_t>(l), .split = split, .sample = sample++};
        Check(writer->Append(info, px.data()));
      }
    }
  }
  return FinishAndOpen(*writer, path);
}

FeatureMatrix WriteCornerSquareFeatures(const std::string& path, int train, int test,
                                        uint32_t seed) {
  const FeatureShape shape{.channels = 1, .height = 12, .width = 12, .labels = {"a", "b", "c"}};
  const int rows = 3 * (train + test);
  auto writer = OrAbort(FeatureMatrixWriter::Create(path, shape, rows));
  std::mt19937 rng(seed);
  std::vector<uint8_t> px(shape.row_bytes());
  for (int i = 0; i < rows; ++i) {
    const uint32_t label = i % 3;
    for (uint8_t& p : px) p = static_cast<uint8_t>(rng() % 60);
    const int oy = label == 1 ? 6 : 1, ox = label == 2 ? 6 : 1;
    for (int y = 0; y < 4; ++y) {
      for (int x = 0; x < 4; ++x)
        px[(oy + y) * 12 + ox + x] = static_cast<uint8_t>(200 + rng() % 55);
    }
    const FeatureRowInfo info{.label = label,
                              .split = static_cast<uint8_t>(i < 3 * train ? 1 : 2),
                              .sample = static_cast<uint32_t>(i)};
    Check(writer->Append(info, px.data()));
  }
  return FinishAndOpen(*writer, path);
}

}  // namespace impulse::testing
