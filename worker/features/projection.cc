#include "worker/features/projection.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <numeric>
#include <opencv2/imgproc.hpp>
#include <random>

#include "worker/features/parallel.h"

namespace impulse::worker::features {
namespace {

constexpr int kMinTsnePoints = 5;
constexpr int kPcaOversampling = 10;
constexpr float kExaggeration = 12.0f;
constexpr size_t kMaxPcaDims = 4096;

// Uniform in [0, n) from the raw engine, by rejection: unlike
// std::uniform_int_distribution, the same on every standard library.
uint64_t UniformBelow(std::mt19937_64& rng, uint64_t n) {
  const uint64_t limit =
      std::numeric_limits<uint64_t>::max() - std::numeric_limits<uint64_t>::max() % n;
  uint64_t v;
  do {
    v = rng();
  } while (v >= limit);
  return v % n;
}

// Standard normal by Box-Muller from the raw engine (portable, as above).
double Gaussian(std::mt19937_64& rng) {
  const double u1 = (static_cast<double>(rng() >> 11) + 1.0) * 0x1.0p-53;  // (0, 1]
  const double u2 = static_cast<double>(rng() >> 11) * 0x1.0p-53;          // [0, 1)
  return std::sqrt(-2.0 * std::log(u1)) * std::cos(2.0 * M_PI * u2);
}

// Modified Gram-Schmidt on the columns of an n x l row-major matrix, in
// place. A column that is (numerically) dependent on the earlier ones is set
// to zero: it then contributes a zero eigenvalue, not noise.
void Orthonormalize(std::vector<double>& m, size_t n, size_t l) {
  for (size_t j = 0; j < l; ++j) {
    for (size_t k = 0; k < j; ++k) {
      double dot = 0;
      for (size_t i = 0; i < n; ++i) dot += m[i * l + j] * m[i * l + k];
      for (size_t i = 0; i < n; ++i) m[i * l + j] -= dot * m[i * l + k];
    }
    double norm = 0;
    for (size_t i = 0; i < n; ++i) norm += m[i * l + j] * m[i * l + j];
    norm = std::sqrt(norm);
    const double inv = norm > 1e-9 ? 1.0 / norm : 0.0;
    for (size_t i = 0; i < n; ++i) m[i * l + j] *= inv;
  }
}

// The centred data X (n x d, from uint8 rows) against an l-column basis.
class CentredRows {
 public:
  CentredRows(const std::vector<const uint8_t*>& rows, size_t dims, int threads)
      : rows_(rows), dims_(dims), threads_(threads), mean_(dims, 0.0f) {
    std::vector<double> sum(dims, 0.0);
    for (const uint8_t* row : rows) {
      for (size_t d = 0; d < dims; ++d) sum[d] += row[d];
    }
    for (size_t d = 0; d < dims; ++d) mean_[d] = static_cast<float>(sum[d] / rows.size());
  }

  // out (n x l) = X * basis (d x l).
  void Times(const std::vector<float>& basis, size_t l, std::vector<double>& out) const {
    out.assign(rows_.size() * l, 0.0);
    ParallelFor(threads_, rows_.size(), 16, [&](size_t begin, size_t end, int) {
      std::vector<float> acc(l);
      for (size_t i = begin; i < end; ++i) {
        std::fill(acc.begin(), acc.end(), 0.0f);
        const uint8_t* row = rows_[i];
        for (size_t d = 0; d < dims_; ++d) {
          const float v = row[d] - mean_[d];
          const float* b = &basis[d * l];
          for (size_t j = 0; j < l; ++j) acc[j] += v * b[j];
        }
        for (size_t j = 0; j < l; ++j) out[i * l + j] = acc[j];
      }
    });
  }

  // out (d x l) = X^T * q (n x l). Threads own disjoint blocks of dims.
  void TransposeTimes(const std::vector<double>& q, size_t l, std::vector<float>& out) const {
    out.assign(dims_ * l, 0.0f);
    std::vector<float> qf(q.begin(), q.end());
    ParallelFor(threads_, dims_, 256, [&](size_t begin, size_t end, int) {
      for (size_t i = 0; i < rows_.size(); ++i) {
        const uint8_t* row = rows_[i];
        const float* qi = &qf[i * l];
        for (size_t d = begin; d < end; ++d) {
          const float v = row[d] - mean_[d];
          float* o = &out[d * l];
          for (size_t j = 0; j < l; ++j) o[j] += v * qi[j];
        }
      }
    });
  }

 private:
  const std::vector<const uint8_t*>& rows_;
  size_t dims_;
  int threads_;
  std::vector<float> mean_;
};

// Squared Euclidean distances between the rows of x (n x d CV_32F).
std::vector<float> SquaredDistances(const cv::Mat& x, int threads) {
  const size_t n = x.rows;
  const int d = x.cols;
  std::vector<float> dist(n * n);
  ParallelFor(threads, n, 32, [&](size_t begin, size_t end, int) {
    for (size_t i = begin; i < end; ++i) {
      const float* xi = x.ptr<float>(static_cast<int>(i));
      for (size_t j = 0; j < n; ++j) {
        const float* xj = x.ptr<float>(static_cast<int>(j));
        float s = 0;
        for (int k = 0; k < d; ++k) {
          const float diff = xi[k] - xj[k];
          s += diff * diff;
        }
        dist[i * n + j] = s;
      }
    }
  });
  return dist;
}

// Row i of the conditional P(j|i), bandwidth found by bisection on beta so
// that the row's entropy is log(perplexity). Written into p[i*n ..].
void ConditionalRow(const float* dist_row, size_t i, size_t n, double log_perplexity,
                    float* p_row) {
  double beta = 1.0, lo = 0.0, hi = std::numeric_limits<double>::infinity();
  // Distances shifted by the row's nearest neighbour keep exp() in range.
  float nearest = std::numeric_limits<float>::infinity();
  for (size_t j = 0; j < n; ++j) {
    if (j != i) nearest = std::min(nearest, dist_row[j]);
  }
  std::vector<double> w(n);
  for (int step = 0; step < 100; ++step) {
    double sum = 0, weighted = 0;
    for (size_t j = 0; j < n; ++j) {
      const double dj = dist_row[j] - nearest;
      w[j] = (j == i) ? 0.0 : std::exp(-beta * dj);
      sum += w[j];
      weighted += w[j] * dj;
    }
    const double entropy = std::log(sum) + beta * weighted / sum;
    const double diff = entropy - log_perplexity;
    if (std::abs(diff) < 1e-5) break;
    if (diff > 0) {  // too flat: sharpen
      lo = beta;
      beta = std::isinf(hi) ? beta * 2 : (beta + hi) / 2;
    } else {
      hi = beta;
      beta = (beta + lo) / 2;
    }
  }
  double sum = 0;
  for (size_t j = 0; j < n; ++j) sum += w[j];
  for (size_t j = 0; j < n; ++j) p_row[j] = static_cast<float>(w[j] / sum);
}

}  // namespace

std::vector<uint64_t> StratifiedSample(const std::vector<uint32_t>& labels, uint32_t max_rows,
                                       uint64_t seed) {
  std::vector<uint64_t> picked;
  if (labels.size() <= max_rows) {
    picked.resize(labels.size());
    std::iota(picked.begin(), picked.end(), 0);
    return picked;
  }
  const uint32_t classes = labels.empty() ? 0 : *std::max_element(labels.begin(), labels.end()) + 1;
  std::vector<std::vector<uint64_t>> by_label(classes);
  for (uint64_t i = 0; i < labels.size(); ++i) by_label[labels[i]].push_back(i);
  // Largest remainder: floor shares first, then one more to the largest
  // remainders (lower label first on ties).
  std::vector<uint64_t> quota(classes);
  std::vector<std::pair<uint64_t, uint32_t>> remainders;  // (remainder numerator, label)
  uint64_t given = 0;
  for (uint32_t c = 0; c < classes; ++c) {
    const uint64_t share = by_label[c].size() * max_rows;
    quota[c] = share / labels.size();
    given += quota[c];
    remainders.emplace_back(share % labels.size(), c);
  }
  std::stable_sort(remainders.begin(), remainders.end(),
                   [](const auto& a, const auto& b) { return a.first > b.first; });
  for (size_t k = 0; given < max_rows && k < remainders.size(); ++k) {
    const uint32_t c = remainders[k].second;
    if (quota[c] < by_label[c].size()) {
      ++quota[c];
      ++given;
    }
  }
  std::mt19937_64 rng(seed);
  for (uint32_t c = 0; c < classes; ++c) {
    std::vector<uint64_t>& rows = by_label[c];
    for (uint64_t k = 0; k < quota[c]; ++k) {  // partial Fisher-Yates
      std::swap(rows[k], rows[k + UniformBelow(rng, rows.size() - k)]);
      picked.push_back(rows[k]);
    }
  }
  std::sort(picked.begin(), picked.end());
  return picked;
}

cv::Mat PcaProject(const std::vector<const uint8_t*>& rows, size_t dims, int components,
                   uint64_t seed, int threads) {
  const size_t n = rows.size();
  const size_t k = std::min({static_cast<size_t>(std::max(components, 1)), dims, n});
  const size_t l = std::min({k + kPcaOversampling, dims, n});
  cv::Mat coords(static_cast<int>(n), static_cast<int>(k), CV_32F, cv::Scalar(0));
  if (n == 0 || dims == 0) return coords;

  const CentredRows x(rows, dims, threads);
  std::mt19937_64 rng(seed);
  std::vector<float> basis(dims * l);
  for (float& v : basis) v = static_cast<float>(Gaussian(rng));

  std::vector<double> q;
  x.Times(basis, l, q);  // range sample: Y = X * Omega
  Orthonormalize(q, n, l);
  x.TransposeTimes(q, l, basis);  // one power iteration: Y = X X^T Q
  {
    std::vector<double> z(basis.begin(), basis.end());
    Orthonormalize(z, dims, l);
    basis.assign(z.begin(), z.end());
  }
  x.Times(basis, l, q);
  Orthonormalize(q, n, l);
  // B = Q^T X, stored transposed in `basis` (d x l). Then B B^T = U L U^T,
  // and X V = Q U L^(1/2): the PCA coordinates without forming V.
  x.TransposeTimes(q, l, basis);
  cv::Mat gram(static_cast<int>(l), static_cast<int>(l), CV_64F, cv::Scalar(0));
  for (size_t d = 0; d < dims; ++d) {
    const float* b = &basis[d * l];
    for (size_t a = 0; a < l; ++a) {
      for (size_t c = a; c < l; ++c) gram.at<double>(a, c) += double{b[a]} * b[c];
    }
  }
  for (size_t a = 0; a < l; ++a) {
    for (size_t c = 0; c < a; ++c) gram.at<double>(a, c) = gram.at<double>(c, a);
  }
  cv::Mat eigenvalues, eigenvectors;  // descending; eigenvectors as rows
  cv::eigen(gram, eigenvalues, eigenvectors);
  for (size_t i = 0; i < n; ++i) {
    float* out = coords.ptr<float>(static_cast<int>(i));
    for (size_t c = 0; c < k; ++c) {
      double s = 0;
      for (size_t a = 0; a < l; ++a) s += q[i * l + a] * eigenvectors.at<double>(c, a);
      out[c] = static_cast<float>(s * std::sqrt(std::max(0.0, eigenvalues.at<double>(c))));
    }
  }
  return coords;
}

Result<cv::Mat> Tsne(const cv::Mat& points, const TsneOptions& options) {
  CV_Assert(points.type() == CV_32F && points.rows >= 2);
  const size_t n = points.rows;
  const int threads = std::max(options.threads, 1);

  // Joint probabilities P, dense n x n, symmetric, summing to 1.
  std::vector<float> p = SquaredDistances(points, threads);
  {
    const double perplexity =
        std::clamp<double>(options.perplexity, 1.0, std::max(1.0, (n - 1) / 3.0));
    std::vector<float> conditional(n * n);
    ParallelFor(threads, n, 16, [&](size_t begin, size_t end, int) {
      for (size_t i = begin; i < end; ++i) {
        ConditionalRow(&p[i * n], i, n, std::log(perplexity), &conditional[i * n]);
      }
    });
    const float scale = 1.0f / (2.0f * n);
    for (size_t i = 0; i < n; ++i) {
      for (size_t j = 0; j < n; ++j) {
        p[i * n + j] = (conditional[i * n + j] + conditional[j * n + i]) * scale;
      }
    }
  }

  // Initialisation: the first two input columns (PCA components), scaled.
  std::vector<float> yx(n), yy(n);
  for (size_t i = 0; i < n; ++i) {
    yx[i] = points.at<float>(static_cast<int>(i), 0);
    yy[i] = points.cols > 1 ? points.at<float>(static_cast<int>(i), 1) : 0.0f;
  }
  {
    double var = 0, mean = 0;
    for (float v : yx) mean += v;
    mean /= n;
    for (float v : yx) var += (v - mean) * (v - mean);
    const double sd = std::sqrt(var / n);
    const float scale = sd > 0 ? static_cast<float>(1e-4 / sd) : 1.0f;
    for (size_t i = 0; i < n; ++i) {
      yx[i] *= scale;
      yy[i] *= scale;
    }
  }

  const float learning_rate = std::max(static_cast<float>(n) / kExaggeration / 4.0f, 50.0f);
  std::vector<float> ux(n, 0), uy(n, 0), gx_gain(n, 1), gy_gain(n, 1);
  std::vector<float> attr_x(n), attr_y(n), rep_x(n), rep_y(n), z_row(n);
  for (int iter = 0; iter < options.iterations; ++iter) {
    if (options.stop && iter % 25 == 0 && options.stop()) {
      return Cancelled("t-SNE stopped at iteration " + std::to_string(iter));
    }
    const bool exaggerating = iter < options.exaggeration_iterations;
    const float exaggeration = exaggerating ? kExaggeration : 1.0f;
    const float momentum = exaggerating ? 0.5f : 0.8f;
    ParallelFor(threads, n, 32, [&](size_t begin, size_t end, int) {
      const float* px = yx.data();
      const float* py = yy.data();
      for (size_t i = begin; i < end; ++i) {
        const float xi = px[i], yi = py[i];
        const float* p_row = &p[i * n];
        float ax = 0, ay = 0, rx = 0, ry = 0, z = 0;
#pragma omp simd reduction(+ : ax, ay, rx, ry, z)
        for (size_t j = 0; j < n; ++j) {
          const float dx = xi - px[j];
          const float dy = yi - py[j];
          const float q = 1.0f / (1.0f + dx * dx + dy * dy);
          const float pq = p_row[j] * q;
          const float qq = q * q;
          ax += pq * dx;
          ay += pq * dy;
          rx += qq * dx;
          ry += qq * dy;
          z += q;
        }
        attr_x[i] = ax;
        attr_y[i] = ay;
        rep_x[i] = rx;
        rep_y[i] = ry;
        z_row[i] = z - 1.0f;  // drop q_ii = 1
      }
    });
    double z_sum = 0;
    for (float z : z_row) z_sum += z;
    const float inv_z = static_cast<float>(1.0 / std::max(z_sum, 1e-12));
    double mean_x = 0, mean_y = 0;
    for (size_t i = 0; i < n; ++i) {
      const float gx = 4.0f * (exaggeration * attr_x[i] - rep_x[i] * inv_z);
      const float gy = 4.0f * (exaggeration * attr_y[i] - rep_y[i] * inv_z);
      // Gains grow where the gradient keeps its direction against the update.
      gx_gain[i] = std::max(0.01f, (gx > 0) != (ux[i] > 0) ? gx_gain[i] + 0.2f : gx_gain[i] * 0.8f);
      gy_gain[i] = std::max(0.01f, (gy > 0) != (uy[i] > 0) ? gy_gain[i] + 0.2f : gy_gain[i] * 0.8f);
      ux[i] = momentum * ux[i] - learning_rate * gx_gain[i] * gx;
      uy[i] = momentum * uy[i] - learning_rate * gy_gain[i] * gy;
      yx[i] += ux[i];
      yy[i] += uy[i];
      mean_x += yx[i];
      mean_y += yy[i];
    }
    mean_x /= n;
    mean_y /= n;
    for (size_t i = 0; i < n; ++i) {
      yx[i] -= static_cast<float>(mean_x);
      yy[i] -= static_cast<float>(mean_y);
    }
  }
  cv::Mat out(static_cast<int>(n), 2, CV_32F);
  for (size_t i = 0; i < n; ++i) {
    out.at<float>(static_cast<int>(i), 0) = yx[i];
    out.at<float>(static_cast<int>(i), 1) = yy[i];
  }
  return out;
}

Result<Projection> ProjectFeatures(const FeatureMatrix& matrix, const ExplorerOptions& options) {
  if (matrix.rows() == 0) return InvalidArgument("feature explorer: the feature matrix is empty");
  std::vector<uint32_t> labels(matrix.rows());
  for (uint64_t i = 0; i < matrix.rows(); ++i) labels[i] = matrix.info(i).label;
  const std::vector<uint64_t> picked = StratifiedSample(labels, options.max_points, options.seed);
  // Rows over kMaxPcaDims values are box-downsampled per plane first (a
  // 3x96x96 row becomes 3x36x36): PCA's passes cost D each, and the picture
  // of 2000 points does not change for it.
  const FeatureShape& shape = matrix.shape();
  size_t dims = shape.row_bytes();
  std::vector<const uint8_t*> rows;
  rows.reserve(picked.size());
  std::vector<uint8_t> shrunk;
  if (dims > kMaxPcaDims) {
    const double factor = std::sqrt(static_cast<double>(kMaxPcaDims) / dims);
    const cv::Size size(std::max(1, static_cast<int>(shape.width * factor)),
                        std::max(1, static_cast<int>(shape.height * factor)));
    const size_t plane = static_cast<size_t>(shape.height) * shape.width;
    const size_t small_plane = static_cast<size_t>(size.area());
    dims = small_plane * shape.channels;
    shrunk.resize(dims * picked.size());
    for (size_t k = 0; k < picked.size(); ++k) {
      for (uint32_t c = 0; c < shape.channels; ++c) {
        const cv::Mat src(static_cast<int>(shape.height), static_cast<int>(shape.width), CV_8UC1,
                          const_cast<uint8_t*>(matrix.pixels(picked[k]) + c * plane));
        cv::Mat dst(size, CV_8UC1, &shrunk[k * dims + c * small_plane]);
        cv::resize(src, dst, size, 0, 0, cv::INTER_AREA);
      }
      rows.push_back(&shrunk[k * dims]);
    }
  } else {
    for (uint64_t i : picked) rows.push_back(matrix.pixels(i));
  }

  const int threads = std::max(options.tsne.threads, 1);
  Projection projection;
  cv::Mat coords;
  if (rows.size() < static_cast<size_t>(kMinTsnePoints)) {
    coords = PcaProject(rows, dims, 2, options.seed, threads);
    projection.name = "pca2";
  } else {
    const cv::Mat reduced = PcaProject(rows, dims, options.pca_dims, options.seed, threads);
    IMPULSE_ASSIGN_OR_RETURN(coords, Tsne(reduced, options.tsne));
    projection.name = "pca" + std::to_string(reduced.cols) + "+tsne";
  }
  projection.points.reserve(picked.size());
  for (size_t k = 0; k < picked.size(); ++k) {
    const FeatureRowInfo& info = matrix.info(picked[k]);
    v1::ExplorerPoint& point = projection.points.emplace_back();
    point.set_x(coords.cols > 0 ? coords.at<float>(static_cast<int>(k), 0) : 0.0f);
    point.set_y(coords.cols > 1 ? coords.at<float>(static_cast<int>(k), 1) : 0.0f);
    point.set_label(info.label);
    point.set_sample(info.sample);
    point.set_split(info.split);
  }
  return projection;
}

}  // namespace impulse::worker::features
