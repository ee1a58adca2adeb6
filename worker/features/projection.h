// The feature explorer's 2-D projection: a stratified sample of rows, PCA to
// at most 50 dimensions, then exact t-SNE to 2.
//
// Algorithm:
//  1. StratifiedSample: at most max_points rows, each label's share
//     proportional to its count (largest remainder), rows within a label
//     drawn by a seeded Fisher-Yates shuffle, returned in row order.
//  2. PcaProject: randomized PCA (Halko et al. 2011, one power iteration,
//     10 oversampling columns) straight from the uint8 rows, centred on the
//     sample mean: four passes over the data, no D x D or N x N matrix, so
//     a 3x96x96 image (27 648 values) costs the same memory as its rows.
//     ProjectFeatures first box-downsamples rows of over 4096 values, plane
//     by plane (3x96x96 -> 3x36x36): seconds saved, the same picture.
//  3. Tsne: exact t-SNE (van der Maaten 2008): per-point Gaussian bandwidths
//     found by bisection to the perplexity (capped at (N-1)/3), symmetric P,
//     Student-t Q, gradient descent with momentum 0.5 -> 0.8, per-coordinate
//     gains, early exaggeration 12, learning rate max(N / 48, 50), PCA
//     initialisation scaled to std 1e-4. Each iteration is O(N^2) over a
//     dense float P, rows split over threads; one pass per iteration
//     accumulates attraction, repulsion and the normaliser together.
//  Fewer than 5 points: the first two PCA components instead ("pca2").
//
// Everything is deterministic for a given seed and input, whatever the
// thread count: each row's sums are computed by one thread in a fixed order.
#pragma once

#include <cstdint>
#include <functional>
#include <opencv2/core.hpp>
#include <string>
#include <vector>

#include "impulse/status.h"
#include "impulse/v1/results.pb.h"
#include "worker/features/feature_matrix.h"

namespace impulse::worker::features {

struct TsneOptions {
  float perplexity = 30.0f;
  int iterations = 750;
  int exaggeration_iterations = 250;  // of `iterations`, with exaggeration 12
  int threads = 1;
  // Polled every 25 iterations; true stops the run with Cancelled.
  std::function<bool()> stop;
};

struct ExplorerOptions {
  uint32_t max_points = 2000;
  int pca_dims = 50;
  uint64_t seed = 1;
  TsneOptions tsne;
};

struct Projection {
  std::string name;                       // "pca50+tsne", or "pca2" for under 5 points
  std::vector<v1::ExplorerPoint> points;  // in row order of the sample
};

// Step 1. Indices into `labels` (one label per row), ascending.
std::vector<uint64_t> StratifiedSample(const std::vector<uint32_t>& labels, uint32_t max_rows,
                                       uint64_t seed);

// Step 2. `rows` point at `dims` uint8 values each. Returns rows.size() x k
// CV_32F coordinates, k = min(components, dims, rows.size()), columns in
// decreasing variance. Deterministic for a seed.
cv::Mat PcaProject(const std::vector<const uint8_t*>& rows, size_t dims, int components,
                   uint64_t seed, int threads);

// Step 3. `points` is N x d CV_32F, N >= 2 (d >= 2 gives the PCA
// initialisation; d == 1 pads with zeros). Returns N x 2 CV_32F, or
// Cancelled when options.stop said so.
Result<cv::Mat> Tsne(const cv::Mat& points, const TsneOptions& options);

// Steps 1-3 over a feature matrix. ExplorerPoint.sample is the manifest's
// sample index, from the matrix's row table. InvalidArgument for an empty
// matrix; Cancelled from Tsne.
Result<Projection> ProjectFeatures(const FeatureMatrix& matrix, const ExplorerOptions& options);

}  // namespace impulse::worker::features
