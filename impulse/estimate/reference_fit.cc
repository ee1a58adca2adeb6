#include "impulse/estimate/reference_fit.h"

#include <algorithm>
#include <array>
#include <cmath>
#include <vector>

namespace impulse::estimate {
namespace {

constexpr double kMinScale = 1.0 / 8, kMaxScale = 8;
constexpr double kMinGroupShare = 0.1;

// One price of a pass: its getter and setter.
struct Price {
  double (PassCosts::*get)() const;
  void (PassCosts::*set)(double);
};
using Group = std::vector<Price>;

// The three groups, each price in exactly one.
const Group& FixedGroup() {
  static const Group group = {{&PassCosts::batch_overhead_s, &PassCosts::set_batch_overhead_s},
                              {&PassCosts::layer_overhead_s, &PassCosts::set_layer_overhead_s},
                              {&PassCosts::param_s, &PassCosts::set_param_s}};
  return group;
}
const Group& NchwGroup() {
  static const Group group = {
      {&PassCosts::conv_s_per_mac, &PassCosts::set_conv_s_per_mac},
      {&PassCosts::conv_s_per_output, &PassCosts::set_conv_s_per_output},
      {&PassCosts::dense_s_per_mac, &PassCosts::set_dense_s_per_mac},
      {&PassCosts::batch_norm_s_per_element, &PassCosts::set_batch_norm_s_per_element},
      {&PassCosts::pool_s_per_element, &PassCosts::set_pool_s_per_element},
      {&PassCosts::elementwise_s_per_element, &PassCosts::set_elementwise_s_per_element}};
  return group;
}
const Group& MobileGroup() {
  static const Group group = {
      {&PassCosts::depthwise_s_per_mac, &PassCosts::set_depthwise_s_per_mac},
      {&PassCosts::depthwise_s_per_channel, &PassCosts::set_depthwise_s_per_channel},
      {&PassCosts::depthwise_1x1_s_per_channel, &PassCosts::set_depthwise_1x1_s_per_channel},
      {&PassCosts::pointwise_s_per_mac, &PassCosts::set_pointwise_s_per_mac},
      {&PassCosts::pointwise_s_per_output, &PassCosts::set_pointwise_s_per_output}};
  return group;
}

// `c`'s prices of `group` alone, every other price 0.
PassCosts Only(const PassCosts& c, const Group& group) {
  PassCosts only;
  for (const Price& p : group) (only.*p.set)((c.*p.get)());
  return only;
}

void Scale(PassCosts& c, const Group& group, double scale) {
  for (const Price& p : group) (c.*p.set)((c.*p.get)() * scale);
}

// Solves the k x k system a x = b (k <= 3) by Gaussian elimination with
// partial pivoting; false when `a` is (nearly) singular.
bool Solve(std::array<std::array<double, 3>, 3> a, std::array<double, 3> b, int k,
           std::array<double, 3>& x) {
  for (int col = 0; col < k; ++col) {
    int pivot = col;
    for (int row = col + 1; row < k; ++row) {
      if (std::abs(a[row][col]) > std::abs(a[pivot][col])) pivot = row;
    }
    if (!(std::abs(a[pivot][col]) > 1e-12 * std::abs(a[0][0]) + 1e-300)) return false;
    std::swap(a[col], a[pivot]);
    std::swap(b[col], b[pivot]);
    for (int row = col + 1; row < k; ++row) {
      const double f = a[row][col] / a[col][col];
      for (int c = col; c < k; ++c) a[row][c] -= f * a[col][c];
      b[row] -= f * b[col];
    }
  }
  for (int row = k - 1; row >= 0; --row) {
    double sum = b[row];
    for (int c = row + 1; c < k; ++c) sum -= a[row][c] * x[c];
    x[row] = sum / a[row][row];
  }
  return true;
}

}  // namespace

PassCosts FitToReferences(const PassCosts& costs, const std::vector<TimedReference>& references,
                          bool optimizer_step, GroupScales* scales) {
  if (scales) *scales = GroupScales{};
  if (references.size() < 3) return costs;
  const PassCosts groups[] = {Only(costs, FixedGroup()), Only(costs, NchwGroup()),
                              Only(costs, MobileGroup())};
  std::vector<std::array<double, 3>> parts;  // each reference's seconds per group
  bool fixed_matters = false;
  for (const TimedReference& r : references) {
    parts.push_back({BatchSeconds(r.work, groups[0], 0, optimizer_step),
                     r.rows * SampleSeconds(r.work, groups[1]),
                     r.rows * SampleSeconds(r.work, groups[2])});
    const auto& p = parts.back();
    fixed_matters |= p[0] > kMinGroupShare * (p[0] + p[1] + p[2]);
  }
  // A group no reference spends a noticeable share on (the per-batch costs
  // of inference in batches of 256) cannot be fitted: noise would set it.
  const int first = fixed_matters ? 0 : 1, k = 3 - first;
  // Normal equations of seconds ~ sum of scale x part, each reference
  // weighted by 1 / seconds^2 so that the fit is in relative error (a small
  // network counts as much as a large one).
  std::array<std::array<double, 3>, 3> a{};
  std::array<double, 3> b{}, s{};
  for (size_t r = 0; r < references.size(); ++r) {
    const double t = references[r].seconds;
    if (!(t > 0)) continue;
    // An unfitted group is charged at its probe prices.
    const double target = first == 0 ? t : t - parts[r][0];
    for (int i = 0; i < k; ++i) {
      for (int j = 0; j < k; ++j) a[i][j] += parts[r][first + i] * parts[r][first + j] / (t * t);
      b[i] += parts[r][first + i] * target / (t * t);
    }
  }
  if (!Solve(a, b, k, s)) return costs;
  GroupScales fitted;
  double* targets[] = {&fitted.fixed, &fitted.nchw, &fitted.mobile};
  for (int i = 0; i < k; ++i) *targets[first + i] = std::clamp(s[i], kMinScale, kMaxScale);
  PassCosts result = costs;
  Scale(result, FixedGroup(), fitted.fixed);
  Scale(result, NchwGroup(), fitted.nchw);
  Scale(result, MobileGroup(), fitted.mobile);
  if (scales) *scales = fitted;
  return result;
}

}  // namespace impulse::estimate
