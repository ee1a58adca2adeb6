// The C int8 kernels against straightforward references: int64
// accumulators from the definition (exact), double-precision real arithmetic
// (within one quantization step, kRoundingSteps).
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <random>
#include <vector>

#include "worker/int8/kernels.h"
#include "worker/int8/quantized_model.h"

namespace impulse::worker::int8 {
namespace {

// One rounding of the product with a multiplier within 2^-31 (relative) of
// the real one: at most one int8 step from the real product rounded, and
// only next to a tie.
constexpr int kRoundingSteps = 1;

std::mt19937 rng(2024);

int32_t Uniform(int32_t lo, int32_t hi) {
  return std::uniform_int_distribution<int32_t>(lo, hi)(rng);
}
double UniformReal(double lo, double hi) {
  return std::uniform_real_distribution<double>(lo, hi)(rng);
}

std::vector<int8_t> RandomInt8(size_t n, int lo = -128, int hi = 127) {
  std::vector<int8_t> v(n);
  for (int8_t& x : v) x = static_cast<int8_t>(Uniform(lo, hi));
  return v;
}

// The documented rule, in 128-bit integers: x * multiplier / 2^(31 - shift)
// rounded half up (the floor of the value plus 1/2), saturated to int32.
__int128 FloorDiv(__int128 n, __int128 d) {  // d > 0
  const __int128 q = n / d;
  return q * d > n ? q - 1 : q;
}
int32_t ReferenceMultiply(int32_t x, FixedPointMultiplier m) {
  const __int128 product = __int128{x} * m.multiplier;
  const int right = 31 - m.shift;
  const __int128 rounded =
      right > 0 ? FloorDiv(2 * product + (__int128{1} << right), __int128{1} << (right + 1))
                : product * (__int128{1} << -right);
  return static_cast<int32_t>(std::clamp<__int128>(rounded, INT32_MIN, INT32_MAX));
}
int8_t Clamp8(int64_t v, int32_t lo = -128, int32_t hi = 127) {
  return static_cast<int8_t>(std::clamp<int64_t>(v, lo, hi));
}

// Each test draws the same numbers whether it runs alone or after others.
class Int8KernelsTest : public ::testing::Test {
 protected:
  void SetUp() override { rng.seed(2024); }
};

TEST_F(Int8KernelsTest, QuantizeMultiplierEdgeCases) {
  EXPECT_EQ(QuantizeMultiplier(0.0).multiplier, 0);
  EXPECT_EQ(QuantizeMultiplier(0.0).shift, 0);
  EXPECT_EQ(QuantizeMultiplier(-1.0).multiplier, 0);
  EXPECT_EQ(QuantizeMultiplier(std::nan("")).multiplier, 0);
  EXPECT_EQ(QuantizeMultiplier(1e-12).multiplier, 0);  // 2^-40: shifted away entirely
  const FixedPointMultiplier half = QuantizeMultiplier(0.5);
  EXPECT_EQ(half.multiplier, 1 << 30);
  EXPECT_EQ(half.shift, 0);
  const FixedPointMultiplier one = QuantizeMultiplier(1.0);
  EXPECT_EQ(one.multiplier, 1 << 30);
  EXPECT_EQ(one.shift, 1);
  // Rounds up to 2^31: renormalized.
  const FixedPointMultiplier almost = QuantizeMultiplier(1.0 - 1e-12);
  EXPECT_EQ(almost.multiplier, 1 << 30);
  EXPECT_EQ(almost.shift, 1);
  const FixedPointMultiplier huge = QuantizeMultiplier(1e12);
  EXPECT_EQ(huge.multiplier, INT32_MAX);
  EXPECT_EQ(huge.shift, 31);
  for (double real : {1e-9, 3e-5, 0.0123, 0.7, 1.0, 3.7, 100.25}) {
    const FixedPointMultiplier m = QuantizeMultiplier(real);
    EXPECT_GE(m.multiplier, 1 << 30) << real;
    EXPECT_NEAR(std::ldexp(static_cast<double>(m.multiplier), m.shift - 31) / real, 1.0, 1e-9)
        << real;
  }
}

// The multiply by m = multiplier * 2^(shift - 31), by hand: once rounded,
// ties up.
int32_t Multiply(int32_t x, int32_t multiplier, int32_t shift) {
  return ic_multiply_by_quantized_multiplier(x, multiplier, shift);
}

TEST_F(Int8KernelsTest, RequantizeRoundsOnceHalfUp) {
  constexpr int32_t kHalf = 1 << 30;      // with shift 0: m = 0.5
  EXPECT_EQ(Multiply(5, kHalf, 0), 3);    // 2.5
  EXPECT_EQ(Multiply(-5, kHalf, 0), -2);  // -2.5
  EXPECT_EQ(Multiply(3, kHalf, 0), 2);    // 1.5
  EXPECT_EQ(Multiply(-3, kHalf, 0), -1);  // -1.5
  EXPECT_EQ(Multiply(-4, kHalf, 0), -2);
  EXPECT_EQ(Multiply(-7, kHalf, -1), -2);  // m = 0.25: -1.75
  EXPECT_EQ(Multiply(-6, kHalf, -1), -1);  // -1.5
  // 1.25 is 1: the two roundings of TFLite's default rule made it 2
  // (x * m * 2 = 2.5 rounded up to 3, then 3 / 2 = 1.5 rounded to 2).
  EXPECT_EQ(Multiply(5, kHalf, -1), 1);
  EXPECT_EQ(Multiply(-5, kHalf, -1), -1);
  // The int64 product at its extremes: -(2^31 - 1), exactly.
  EXPECT_EQ(Multiply(INT32_MIN, INT32_MAX, 0), -INT32_MAX);
  EXPECT_EQ(Multiply(INT32_MIN, INT32_MAX, -30), -2);  // -2 + 2^-30
  // The smallest multipliers: 2^-32 leaves a half at most, which rounds to 0.
  EXPECT_EQ(Multiply(INT32_MIN, kHalf, -31), 0);  // -0.5
  EXPECT_EQ(Multiply(INT32_MAX, kHalf, -31), 0);  // 0.5 - 2^-32
  EXPECT_EQ(Multiply(INT32_MIN, INT32_MAX, -32), 0);
  EXPECT_EQ(Multiply(INT32_MIN, INT32_MAX, INT32_MIN), 0);
  // The largest, m = 2^30: no shift at all, then saturation.
  EXPECT_EQ(Multiply(1, kHalf, 31), 1 << 30);
  EXPECT_EQ(Multiply(-2, kHalf, 31), INT32_MIN);
  EXPECT_EQ(Multiply(2, kHalf, 31), INT32_MAX);
  EXPECT_EQ(Multiply(-3, kHalf, 31), INT32_MIN);
  // Shifts past 31 multiply (a negative value is never shifted left).
  EXPECT_EQ(Multiply(-3, 1, 33), -12);
  EXPECT_EQ(Multiply(1, kHalf, 40), INT32_MAX);
  EXPECT_EQ(Multiply(-1, 1, 63), INT32_MIN);
  EXPECT_EQ(Multiply(0, kHalf, 40), 0);
  EXPECT_EQ(Multiply(-1, 1, INT32_MAX), INT32_MIN);
  // The zero point is added past int32's saturation without overflow.
  EXPECT_EQ(ic_requantize(INT32_MAX, INT32_MAX, 31, 127, -128, 127), 127);
  EXPECT_EQ(ic_requantize(INT32_MIN, INT32_MAX, 31, -128, -128, 127), -128);
  EXPECT_EQ(ic_requantize(-5, kHalf, 0, 4, -128, 127), 2);    // -2.5 -> -2, + 4
  EXPECT_EQ(ic_requantize(123456, 0, 0, -7, -128, 127), -7);  // multiplier 0

  for (int i = 0; i < 200000; ++i) {
    const int32_t x = i % 3 == 0   ? Uniform(-300, 300)
                      : i % 3 == 1 ? Uniform(INT32_MIN / 4, INT32_MAX / 4)
                                   : Uniform(INT32_MIN, INT32_MAX);
    const double real = i % 7 == 0 ? UniformReal(1.0, 40.0) : std::exp(UniformReal(-25.0, 0.0));
    const FixedPointMultiplier m = QuantizeMultiplier(real);
    const int32_t got = Multiply(x, m.multiplier, m.shift);
    ASSERT_EQ(got, ReferenceMultiply(x, m)) << x << " * " << real;
    // Unsaturated, within half a step of the real product, and 2^-31 of it.
    const double exact = x * real;
    if (std::fabs(exact) < 2e9) {
      ASSERT_LE(std::fabs(got - exact), 0.5 + std::fabs(exact) * 0x1p-30) << x << " * " << real;
    }
  }
  // Every shift QuantizeMultiplier can give, at random multipliers.
  for (int i = 0; i < 100000; ++i) {
    const FixedPointMultiplier m{Uniform(1 << 30, INT32_MAX), Uniform(-31, 31)};
    const int32_t x = Uniform(INT32_MIN, INT32_MAX);
    ASSERT_EQ(Multiply(x, m.multiplier, m.shift), ReferenceMultiply(x, m))
        << x << " * " << m.multiplier << " shift " << m.shift;
  }
}

TEST_F(Int8KernelsTest, RoundingDivideIsHalfToEven) {
  EXPECT_EQ(ic_divide_round_half_even(1, 2), 0);
  EXPECT_EQ(ic_divide_round_half_even(3, 2), 2);
  EXPECT_EQ(ic_divide_round_half_even(5, 2), 2);
  EXPECT_EQ(ic_divide_round_half_even(-1, 2), 0);
  EXPECT_EQ(ic_divide_round_half_even(-3, 2), -2);
  EXPECT_EQ(ic_divide_round_half_even(-5, 2), -2);
  EXPECT_EQ(ic_divide_round_half_even(-4, 3), -1);
  EXPECT_EQ(ic_divide_round_half_even(-5, 3), -2);
  EXPECT_EQ(ic_divide_round_half_even(-6, 4), -2);  // -1.5
  EXPECT_EQ(ic_divide_round_half_even(7, 1), 7);
  for (int i = 0; i < 10000; ++i) {
    const int32_t sum = Uniform(-255 * 400, 255 * 400), count = Uniform(1, 400);
    // std::nearbyint in the default rounding mode: ties to even.
    ASSERT_EQ(ic_divide_round_half_even(sum, count),
              static_cast<int32_t>(std::nearbyint(static_cast<double>(sum) / count)))
        << sum << " / " << count;
  }
}

// A conv or depthwise case: shapes, random tensors, per-channel multipliers.
struct ConvCase {
  bool depthwise;
  uint32_t c, h, w, filters, kh, kw, sh, sw;
  uint32_t top, bottom, left, right;
};

void RunConvCase(const ConvCase& t) {
  SCOPED_TRACE(::testing::Message()
               << "c" << t.c << " " << t.h << "x" << t.w << " k" << t.kh << "x" << t.kw << " s"
               << t.sh << "," << t.sw << " pad " << t.top << t.bottom << t.left << t.right
               << (t.depthwise ? " depthwise" : ""));
  const uint32_t filters = t.depthwise ? t.c : t.filters;
  const uint32_t per_filter = (t.depthwise ? 1 : t.c) * t.kh * t.kw;
  const uint32_t oh = (t.h + t.top + t.bottom - t.kh) / t.sh + 1;
  const uint32_t ow = (t.w + t.left + t.right - t.kw) / t.sw + 1;
  const std::vector<int8_t> input = RandomInt8(t.c * t.h * t.w);
  const std::vector<int8_t> weights = RandomInt8(filters * per_filter, -127, 127);
  const int32_t in_zp = Uniform(-128, 127), out_zp = Uniform(-30, 30);
  std::vector<int32_t> bias(filters), folded(filters), mult(filters), shift(filters);
  std::vector<double> real(filters);
  for (uint32_t o = 0; o < filters; ++o) {
    // A bias of the accumulator's order (~74 * 74 * sqrt(window)).
    bias[o] = static_cast<int32_t>(UniformReal(-0.5, 0.5) * 5500.0 * std::sqrt(per_filter));
    int64_t sum = 0;
    for (uint32_t i = 0; i < per_filter; ++i) sum += weights[o * per_filter + i];
    folded[o] = static_cast<int32_t>(bias[o] - in_zp * sum);
    real[o] = UniformReal(0.2, 1.5) / (std::sqrt(double(per_filter)) * 100.0);
    const FixedPointMultiplier m = QuantizeMultiplier(real[o]);
    mult[o] = m.multiplier;
    shift[o] = m.shift;
  }
  ic_conv_params p{};
  p.window = {t.c, t.h, t.w, filters, oh, ow, t.kh, t.kw, t.sh, t.sw, t.top, t.left};
  p.input_zero_point = in_zp;
  p.output_zero_point = out_zp;
  p.activation_min = -100;
  p.activation_max = 120;
  std::vector<int8_t> packed(ic_conv2d_packed_size(&p.window));
  ic_conv2d_pack_weights(&p.window, weights.data(), packed.data());
  p.weights = t.depthwise ? weights.data() : packed.data();
  p.bias = folded.data();
  p.output_multiplier = mult.data();
  p.output_shift = shift.data();
  std::vector<int8_t> output(filters * oh * ow);
  (t.depthwise ? ic_depthwise_conv2d_run : ic_conv2d_run)(&p, input.data(), output.data());

  int saturated = 0;
  for (uint32_t o = 0; o < filters; ++o) {
    for (uint32_t y = 0; y < oh; ++y) {
      for (uint32_t x = 0; x < ow; ++x) {
        // The definition: padded cells are real zeros, so they are skipped.
        int64_t acc = bias[o];
        for (uint32_t ci = 0; ci < (t.depthwise ? 1 : t.c); ++ci) {
          const uint32_t c = t.depthwise ? o : ci;
          for (uint32_t ky = 0; ky < t.kh; ++ky) {
            for (uint32_t kx = 0; kx < t.kw; ++kx) {
              const int64_t iy = int64_t{y} * t.sh + ky - t.top,
                            ix = int64_t{x} * t.sw + kx - t.left;
              if (iy < 0 || ix < 0 || iy >= t.h || ix >= t.w) continue;
              acc += weights[o * per_filter + (ci * t.kh + ky) * t.kw + kx] *
                     (input[(c * t.h + iy) * t.w + ix] - in_zp);
            }
          }
        }
        const int8_t got = output[(o * oh + y) * ow + x];
        const FixedPointMultiplier m{mult[o], shift[o]};
        ASSERT_EQ(got, Clamp8(ReferenceMultiply(static_cast<int32_t>(acc), m) + int64_t{out_zp},
                              -100, 120))
            << o << "," << y << "," << x;
        const int8_t from_real = Clamp8(std::llround(acc * real[o]) + out_zp, -100, 120);
        ASSERT_LE(std::abs(got - from_real), kRoundingSteps);
        saturated += got == -100 || got == 120;
      }
    }
  }
  EXPECT_LT(saturated, static_cast<int>(output.size() / 4)) << "the case tests little";
}

TEST_F(Int8KernelsTest, Conv2dMatchesTheDefinition) {
  // depthwise, c, h, w, filters, kh, kw, sh, sw, top, bottom, left, right
  const ConvCase cases[] = {
      {false, 3, 9, 37, 5, 3, 3, 1, 1, 1, 1, 1, 1},
      {false, 4, 8, 8, 6, 3, 3, 2, 2, 0, 1, 0, 1},    // TensorFlow "same", stride 2
      {false, 2, 11, 19, 3, 5, 3, 2, 1, 2, 0, 1, 2},  // asymmetric everything
      {false, 7, 5, 9, 4, 1, 1, 1, 1, 0, 0, 0, 0},    // pointwise
      {false, 3, 6, 6, 2, 1, 1, 2, 2, 0, 0, 0, 0},    // pointwise, stride 2
      {false, 1, 3, 3, 2, 3, 3, 1, 1, 2, 2, 2, 2},    // windows mostly padding
      {false, 3, 4, 50, 2, 3, 3, 1, 3, 1, 1, 1, 1},   // stride 3 across
      {false, 5, 6, 7, 37, 3, 3, 1, 1, 1, 1, 1, 1},   // 3 blocks of channels, the last partial
  };
  for (const ConvCase& c : cases) RunConvCase(c);
}

TEST_F(Int8KernelsTest, DepthwiseConv2dMatchesTheDefinition) {
  // depthwise, c, h, w, filters (unused), kh, kw, sh, sw, top, bottom, left, right
  const ConvCase cases[] = {
      {true, 3, 9, 37, 0, 3, 3, 1, 1, 1, 1, 1, 1},
      {true, 8, 16, 16, 0, 3, 3, 2, 2, 0, 1, 0, 1},  // TensorFlow "same", stride 2
      {true, 5, 7, 21, 0, 3, 5, 1, 2, 1, 2, 2, 0},
      {true, 3, 5, 40, 0, 3, 3, 1, 1, 1, 1, 1, 1},  // rows of 38: tiles of 16, 16, 4, 1, 1
      {true, 2, 3, 3, 0, 3, 3, 1, 1, 2, 2, 2, 2},   // windows mostly padding
  };
  for (const ConvCase& c : cases) RunConvCase(c);
}

TEST_F(Int8KernelsTest, DenseMatchesTheDefinition) {
  const uint32_t n = 300, units = 17;
  const std::vector<int8_t> input = RandomInt8(n), weights = RandomInt8(n * units, -127, 127);
  const int32_t in_zp = -37, out_zp = 12;
  const double real = 1.0 / (std::sqrt(double(n)) * 70.0);
  const FixedPointMultiplier m = QuantizeMultiplier(real);
  std::vector<int32_t> bias(units), folded(units);
  for (uint32_t u = 0; u < units; ++u) {
    bias[u] = Uniform(-5000, 5000);
    int64_t sum = 0;
    for (uint32_t i = 0; i < n; ++i) sum += weights[u * n + i];
    folded[u] = static_cast<int32_t>(bias[u] - in_zp * sum);
  }
  const ic_dense_params p{
      n, units, out_zp, -128, 127, weights.data(), folded.data(), m.multiplier, m.shift};
  std::vector<int8_t> output(units);
  ic_dense_run(&p, input.data(), output.data());
  for (uint32_t u = 0; u < units; ++u) {
    int64_t acc = bias[u];
    for (uint32_t i = 0; i < n; ++i) acc += weights[u * n + i] * (input[i] - in_zp);
    EXPECT_EQ(output[u], Clamp8(ReferenceMultiply(static_cast<int32_t>(acc), m) + out_zp));
    EXPECT_LE(std::abs(output[u] - Clamp8(std::llround(acc * real) + out_zp)), kRoundingSteps);
  }
}

TEST_F(Int8KernelsTest, AddMatchesTheRealSum) {
  const uint32_t n = 5000;
  for (int trial = 0; trial < 20; ++trial) {
    const double s1 = UniformReal(0.01, 0.1), s2 = UniformReal(0.01, 0.1);
    const double s_out = UniformReal(0.6, 1.5) * (s1 + s2);
    const int32_t z1 = Uniform(-128, 127), z2 = Uniform(-128, 127), z_out = Uniform(-50, 50);
    // TFLite's parameters: both inputs to 2 * the larger scale, shifted left.
    const double twice_max = 2.0 * std::max(s1, s2);
    const FixedPointMultiplier m1 = QuantizeMultiplier(s1 / twice_max);
    const FixedPointMultiplier m2 = QuantizeMultiplier(s2 / twice_max);
    const FixedPointMultiplier mo =
        QuantizeMultiplier(twice_max / ((1 << IC_ADD_LEFT_SHIFT) * s_out));
    const ic_add_params p{
        n,        z1,   z2, z_out, m1.multiplier, m1.shift, m2.multiplier, m2.shift, mo.multiplier,
        mo.shift, -128, 127};
    const std::vector<int8_t> a = RandomInt8(n), b = RandomInt8(n);
    std::vector<int8_t> out(n);
    ic_add_run(&p, a.data(), b.data(), out.data());
    for (uint32_t i = 0; i < n; ++i) {
      const double real = s1 * (a[i] - z1) + s2 * (b[i] - z2);
      const int8_t want = Clamp8(std::llround(real / s_out) + z_out);
      ASSERT_LE(std::abs(out[i] - want), kRoundingSteps) << trial << " " << i;
    }
  }
}

// num / den to nearest, ties to even (std::nearbyint in the default
// rounding mode).
int64_t RoundHalfEven(int num, int den) {
  return static_cast<int64_t>(std::nearbyint(static_cast<double>(num) / den));
}

struct PoolCase {
  uint32_t c, h, w, k, s, top, bottom, left, right;
};

TEST_F(Int8KernelsTest, PoolsMatchTheirDefinitions) {
  // c, h, w, kernel, stride, top, bottom, left, right
  const PoolCase cases[] = {
      {3, 7, 9, 3, 2, 1, 1, 1, 0},
      {2, 8, 8, 2, 2, 0, 0, 0, 0},
      {4, 5, 6, 3, 1, 2, 1, 0, 2},
  };
  for (const PoolCase& t : cases) {
    const uint32_t oh = (t.h + t.top + t.bottom - t.k) / t.s + 1;
    const uint32_t ow = (t.w + t.left + t.right - t.k) / t.s + 1;
    const ic_pool_params p{
        {t.c, t.h, t.w, t.c, oh, ow, t.k, t.k, t.s, t.s, t.top, t.left}, 3, -90, 127};
    const std::vector<int8_t> input = RandomInt8(t.c * t.h * t.w);
    std::vector<int8_t> max_out(t.c * oh * ow), avg_out(t.c * oh * ow);
    ic_max_pool_run(&p, input.data(), max_out.data());
    ic_avg_pool_run(&p, input.data(), avg_out.data());
    for (uint32_t c = 0; c < t.c; ++c) {
      for (uint32_t y = 0; y < oh; ++y) {
        for (uint32_t x = 0; x < ow; ++x) {
          int best = -1000, sum = 0, count = 0;
          for (uint32_t ky = 0; ky < t.k; ++ky) {
            for (uint32_t kx = 0; kx < t.k; ++kx) {
              const int64_t iy = int64_t{y} * t.s + ky - t.top, ix = int64_t{x} * t.s + kx - t.left;
              if (iy < 0 || ix < 0 || iy >= t.h || ix >= t.w) continue;  // never counted
              const int v = input[(c * t.h + iy) * t.w + ix];
              best = std::max(best, v);
              sum += v;
              ++count;
            }
          }
          const size_t o = (c * oh + y) * ow + x;
          EXPECT_EQ(max_out[o], Clamp8(best, -90, 127));
          EXPECT_EQ(avg_out[o], Clamp8(RoundHalfEven(sum, count), -90, 127));
        }
      }
    }
  }
}

TEST_F(Int8KernelsTest, GlobalAveragePoolAndClamp) {
  const uint32_t c = 6, h = 5, w = 3;
  const std::vector<int8_t> input = RandomInt8(c * h * w);
  const ic_pool_params p{{c, h, w, c, 1, 1, h, w, 1, 1, 0, 0}, -3, -128, 100};
  std::vector<int8_t> out(c);
  ic_global_avg_pool_run(&p, input.data(), out.data());
  for (uint32_t ch = 0; ch < c; ++ch) {
    int sum = 0;
    for (uint32_t i = 0; i < h * w; ++i) sum += input[ch * h * w + i];
    EXPECT_EQ(out[ch], Clamp8(RoundHalfEven(sum + 3 * h * w, h * w) - 3, -128, 100));
  }
  // Ties, by hand: 2x2 planes at zero point 1 (odd, so the global pool's
  // even neighbour of the real mean is not the average pool's of the codes).
  const int8_t ties[] = {1,  2,  1,  2,   // codes mean 1.5, real mean 0.5
                         2,  3,  2,  3,   // 2.5, real 1.5
                         -1, -2, -1, -2,  // -1.5, real -2.5
                         0,  0,  0,  1};  // 0.25, real -0.75
  const ic_pool_params two{{4, 2, 2, 4, 1, 1, 2, 2, 1, 1, 0, 0}, 1, -128, 127};
  int8_t global[4], average[4];
  ic_global_avg_pool_run(&two, ties, global);
  ic_avg_pool_run(&two, ties, average);
  EXPECT_THAT(global, ::testing::ElementsAre(1, 3, -1, 0));  // real 0, 2, -2, -1 + 1
  EXPECT_THAT(average, ::testing::ElementsAre(2, 2, -2, 0));
  const ic_clamp_params clamp{static_cast<uint32_t>(input.size()), -10, 60};
  std::vector<int8_t> clamped(input.size());
  ic_clamp_run(&clamp, input.data(), clamped.data());
  for (size_t i = 0; i < input.size(); ++i) EXPECT_EQ(clamped[i], Clamp8(input[i], -10, 60));
}

TEST_F(Int8KernelsTest, SoftmaxMatchesTheFloatSoftmax) {
  for (int trial = 0; trial < 200; ++trial) {
    const double scale = std::exp(UniformReal(std::log(0.005), std::log(0.5)));
    std::vector<uint32_t> table(256);
    for (int d = 0; d < 256; ++d)
      table[d] = static_cast<uint32_t>(std::lround(65536.0 * std::exp(-d * scale)));
    const uint32_t n = Uniform(2, 40);
    const std::vector<int8_t> logits = RandomInt8(n);
    const ic_softmax_params p{n, table.data()};
    std::vector<int8_t> out(n);
    ic_softmax_run(&p, logits.data(), out.data());
    const int max = *std::max_element(logits.begin(), logits.end());
    double sum = 0;
    for (int8_t x : logits) sum += std::exp(scale * (x - max));
    for (uint32_t i = 0; i < n; ++i) {
      const double prob = std::exp(scale * (logits[i] - max)) / sum;
      const int8_t want = Clamp8(std::llround(prob * 256.0) - 128);
      // The table's own rounding (2^-17 relative) may move a tie by one step.
      ASSERT_LE(std::abs(out[i] - want), kRoundingSteps) << trial << " " << i;
      // And exactly the documented integer rule.
      uint64_t s = 0;
      for (int8_t x : logits) s += table[max - x];
      const int64_t q =
          static_cast<int64_t>((256 * uint64_t{table[max - logits[i]]} + s / 2) / s) - 128;
      ASSERT_EQ(out[i], Clamp8(q));
    }
  }
}

}  // namespace
}  // namespace impulse::worker::int8
