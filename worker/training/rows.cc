#include "worker/training/rows.h"

#include <algorithm>
#include <cmath>
#include <map>
#include <random>

namespace impulse::worker::training {

uint64_t MixSeed(uint64_t seed, uint64_t stream) {
  uint64_t z = seed + 0x9e3779b97f4a7c15ull * (stream + 1);
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
  return z ^ (z >> 31);
}

RowSplit SplitRows(const features::FeatureMatrix& features, double validation_split,
                   uint64_t seed) {
  RowSplit split;
  std::map<uint32_t, std::vector<uint64_t>> by_label;
  for (uint64_t row = 0; row < features.rows(); ++row) {
    const auto& info = features.info(row);
    if (info.split == 2) {
      split.test.push_back(row);
    } else {
      by_label[info.label].push_back(row);
    }
  }
  // Fisher-Yates with our own index draw: std::shuffle's is left to the
  // library, and the split must not depend on it.
  std::mt19937_64 rng(MixSeed(seed, 0x5b117));
  for (auto& [label, rows] : by_label) {
    for (size_t i = rows.size(); i > 1; --i) std::swap(rows[i - 1], rows[rng() % i]);
    size_t held = static_cast<size_t>(std::llround(rows.size() * validation_split));
    if (validation_split > 0 && held == 0 && rows.size() >= 2) held = 1;
    held = std::min(held, rows.size() - 1);
    split.validation.insert(split.validation.end(), rows.begin(), rows.begin() + held);
    split.train.insert(split.train.end(), rows.begin() + held, rows.end());
  }
  std::sort(split.train.begin(), split.train.end());
  std::sort(split.validation.begin(), split.validation.end());
  return split;
}

}  // namespace impulse::worker::training
