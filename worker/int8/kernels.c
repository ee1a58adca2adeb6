/* The int8 kernels of kernels.h. Pasted verbatim into every exported
 * model.c (worker/export/c_emitter.cc), so: C99, no floating point, no
 * allocation, no warnings under gcc -std=c99 -Wall -Wextra -pedantic. Helpers
 * are `static inline` so that a model which calls no convolution, say, draws
 * no unused-function warning. */
#include "worker/int8/kernels.h"

/* The rounding shifts rely on >> of a negative int32 being arithmetic
 * (implementation-defined in C99; true of GCC, Clang, Arm, IAR and MSVC).
 * A compiler where it is not fails here rather than computing wrong. */
typedef char ic_requires_arithmetic_right_shift[(-1 >> 1) == -1 ? 1 : -1];

/* Output pixels a convolution computes per pass over its weights: their
 * accumulators stay in registers while each weight is loaded once. */
#define IC_TILE 16

IC_KERNEL int32_t ic_rounding_doubling_high_mul(int32_t a, int32_t b) {
  int64_t ab;
  int64_t nudge;
  if (a == INT32_MIN && b == INT32_MIN) return INT32_MAX;
  ab = (int64_t)a * (int64_t)b;
  nudge = ab >= 0 ? ((int64_t)1 << 30) : (1 - ((int64_t)1 << 30));
  /* C99 division truncates toward zero: with the nudge, rounds half away. */
  return (int32_t)((ab + nudge) / ((int64_t)1 << 31));
}

IC_KERNEL int32_t ic_rounding_divide_by_pot(int32_t x, int32_t exponent) {
  const int32_t mask = (int32_t)(((uint32_t)1 << exponent) - 1u);
  const int32_t remainder = x & mask;
  const int32_t threshold = (mask >> 1) + (x < 0 ? 1 : 0);
  return (x >> exponent) + (remainder > threshold ? 1 : 0);
}

IC_KERNEL int32_t ic_multiply_by_quantized_multiplier(int32_t x, int32_t multiplier,
                                                      int32_t shift) {
  if (shift > 0) {
    /* A multiplier above 1: saturate the pre-shift instead of wrapping. */
    int64_t shifted = (int64_t)x * ((int64_t)1 << shift);
    if (shifted > INT32_MAX) shifted = INT32_MAX;
    if (shifted < INT32_MIN) shifted = INT32_MIN;
    return ic_rounding_doubling_high_mul((int32_t)shifted, multiplier);
  }
  return ic_rounding_divide_by_pot(ic_rounding_doubling_high_mul(x, multiplier), -shift);
}

static inline int8_t ic_clamp_to(int32_t value, int32_t low, int32_t high) {
  if (value < low) value = low;
  if (value > high) value = high;
  return (int8_t)value;
}

IC_KERNEL int8_t ic_requantize(int32_t x, int32_t multiplier, int32_t shift,
                               int32_t output_zero_point, int32_t activation_min,
                               int32_t activation_max) {
  const int32_t scaled = ic_multiply_by_quantized_multiplier(x, multiplier, shift);
  return ic_clamp_to(scaled + output_zero_point, activation_min, activation_max);
}

IC_KERNEL int32_t ic_rounding_divide(int32_t sum, int32_t count) {
  return sum >= 0 ? (sum + count / 2) / count : (sum - count / 2) / count;
}

/* --- convolution ------------------------------------------------------------ */

/* Adds the window sums of `count` output pixels of one row, whose windows lie
 * wholly inside the input, to acc[0..count). `input` is the first of
 * `channels` planes, (row, col) the top-left input cell of the first window,
 * `weights` the [channels, kh, kw] kernel of one output channel. */
static inline void ic_conv_tile(const ic_window* w, const int8_t* input, uint32_t channels,
                                const int8_t* weights, uint32_t row, uint32_t col, uint32_t count,
                                int32_t* acc) {
  const uint32_t plane = w->input_height * w->input_width;
  const uint32_t stride = w->stride_width;
  uint32_t c, ky, kx, j;
  for (c = 0; c < channels; ++c) {
    for (ky = 0; ky < w->kernel_height; ++ky) {
      const int8_t* in_row = input + c * plane + (row + ky) * w->input_width + col;
      const int8_t* w_row = weights + (c * w->kernel_height + ky) * w->kernel_width;
      for (kx = 0; kx < w->kernel_width; ++kx) {
        const int32_t weight = w_row[kx];
        const int8_t* x = in_row + kx;
        if (stride == 1) {
          for (j = 0; j < count; ++j) acc[j] += weight * x[j];
        } else {
          for (j = 0; j < count; ++j) acc[j] += weight * x[j * stride];
        }
      }
    }
  }
}

/* The window sum of one output pixel whose window may reach into the
 * padding, where a cell reads as the input zero point. */
static inline int32_t ic_conv_border_pixel(const ic_window* w, const int8_t* input,
                                           uint32_t channels, const int8_t* weights,
                                           int32_t input_zero_point, int32_t row, int32_t col) {
  const uint32_t plane = w->input_height * w->input_width;
  int32_t acc = 0;
  uint32_t c, ky, kx;
  for (c = 0; c < channels; ++c) {
    for (ky = 0; ky < w->kernel_height; ++ky) {
      const int32_t y = row + (int32_t)ky;
      const int8_t* w_row = weights + (c * w->kernel_height + ky) * w->kernel_width;
      const int row_inside = y >= 0 && y < (int32_t)w->input_height;
      for (kx = 0; kx < w->kernel_width; ++kx) {
        const int32_t x = col + (int32_t)kx;
        const int32_t value = row_inside && x >= 0 && x < (int32_t)w->input_width
                                  ? input[c * plane + (uint32_t)y * w->input_width + (uint32_t)x]
                                  : input_zero_point;
        acc += w_row[kx] * value;
      }
    }
  }
  return acc;
}

/* The first output index at or after which a window starts inside the input
 * (start = index * stride - pad >= 0), and the end of the run of windows
 * that also end inside it; lo <= hi <= out. */
static inline void ic_inside_range(uint32_t in, uint32_t out, uint32_t kernel, uint32_t stride,
                                   uint32_t pad, uint32_t* lo, uint32_t* hi) {
  uint32_t first = (pad + stride - 1) / stride;
  uint32_t end = in + pad >= kernel ? (in + pad - kernel) / stride + 1 : 0;
  if (first > out) first = out;
  if (end > out) end = out;
  if (end < first) end = first;
  *lo = first;
  *hi = end;
}

/* One output channel: `channels` input planes (conv: all of them;
 * depthwise: its own) against one kernel. */
static inline void ic_conv_channel(const ic_conv_params* p, const ic_window* w, const int8_t* input,
                                   uint32_t channels, uint32_t o, int8_t* output) {
  const int8_t* weights = p->weights + o * channels * w->kernel_height * w->kernel_width;
  const int32_t bias = p->bias[o];
  const int32_t multiplier = p->output_multiplier[o];
  const int32_t shift = p->output_shift[o];
  int8_t* out = output + o * w->output_height * w->output_width;
  uint32_t row_lo, row_hi, col_lo, col_hi, oy, ox, j;
  int32_t acc[IC_TILE];
  ic_inside_range(w->input_height, w->output_height, w->kernel_height, w->stride_height, w->pad_top,
                  &row_lo, &row_hi);
  ic_inside_range(w->input_width, w->output_width, w->kernel_width, w->stride_width, w->pad_left,
                  &col_lo, &col_hi);
  for (oy = 0; oy < w->output_height; ++oy) {
    const int32_t row = (int32_t)(oy * w->stride_height) - (int32_t)w->pad_top;
    const int row_inside = oy >= row_lo && oy < row_hi;
    int8_t* out_row = out + oy * w->output_width;
    for (ox = 0; ox < w->output_width;) {
      const int32_t col = (int32_t)(ox * w->stride_width) - (int32_t)w->pad_left;
      uint32_t count;
      if (!row_inside || ox < col_lo || ox >= col_hi) {
        const int32_t sum =
            ic_conv_border_pixel(w, input, channels, weights, p->input_zero_point, row, col);
        out_row[ox] = ic_requantize(bias + sum, multiplier, shift, p->output_zero_point,
                                    p->activation_min, p->activation_max);
        ++ox;
        continue;
      }
      count = col_hi - ox < IC_TILE ? col_hi - ox : IC_TILE;
      for (j = 0; j < count; ++j) acc[j] = bias;
      ic_conv_tile(w, input, channels, weights, (uint32_t)row, (uint32_t)col, count, acc);
      for (j = 0; j < count; ++j) {
        out_row[ox + j] = ic_requantize(acc[j], multiplier, shift, p->output_zero_point,
                                        p->activation_min, p->activation_max);
      }
      ox += count;
    }
  }
}

/* A 1x1, stride 1, unpadded window is a matrix product: its planes are one
 * long row, which keeps the tiles full. */
static inline ic_window ic_flatten_pointwise(const ic_window* w) {
  ic_window flat = *w;
  if (w->kernel_height == 1 && w->kernel_width == 1 && w->stride_height == 1 &&
      w->stride_width == 1 && w->pad_top == 0 && w->pad_left == 0 &&
      w->output_height == w->input_height && w->output_width == w->input_width) {
    flat.input_width = flat.output_width = w->input_height * w->input_width;
    flat.input_height = flat.output_height = 1;
  }
  return flat;
}

IC_KERNEL void ic_conv2d(const ic_conv_params* params, const int8_t* input, int8_t* output) {
  const ic_window w = ic_flatten_pointwise(&params->window);
  uint32_t o;
  for (o = 0; o < w.output_channels; ++o) {
    ic_conv_channel(params, &w, input, w.input_channels, o, output);
  }
}

IC_KERNEL void ic_depthwise_conv2d(const ic_conv_params* params, const int8_t* input,
                                   int8_t* output) {
  const ic_window* w = &params->window;
  const uint32_t plane = w->input_height * w->input_width;
  uint32_t c;
  for (c = 0; c < w->output_channels; ++c) {
    /* Channel c alone: its plane as a one-channel input, its output plane. */
    ic_conv_params one = *params;
    one.weights = params->weights + c * w->kernel_height * w->kernel_width;
    one.bias = params->bias + c;
    one.output_multiplier = params->output_multiplier + c;
    one.output_shift = params->output_shift + c;
    ic_conv_channel(&one, w, input + c * plane, 1, 0,
                    output + c * w->output_height * w->output_width);
  }
}

/* --- dense ------------------------------------------------------------------- */

IC_KERNEL void ic_dense(const ic_dense_params* params, const int8_t* input, int8_t* output) {
  const uint32_t n = params->input_size;
  uint32_t u, i;
  for (u = 0; u < params->output_size; ++u) {
    const int8_t* row = params->weights + u * n;
    int32_t acc = params->bias[u];
    for (i = 0; i < n; ++i) acc += row[i] * input[i];
    output[u] =
        ic_requantize(acc, params->output_multiplier, params->output_shift,
                      params->output_zero_point, params->activation_min, params->activation_max);
  }
}

/* --- add --------------------------------------------------------------------- */

IC_KERNEL void ic_add(const ic_add_params* params, const int8_t* input1, const int8_t* input2,
                      int8_t* output) {
  uint32_t i;
  for (i = 0; i < params->size; ++i) {
    const int32_t shifted1 = (input1[i] - params->input1_zero_point) * (1 << IC_ADD_LEFT_SHIFT);
    const int32_t shifted2 = (input2[i] - params->input2_zero_point) * (1 << IC_ADD_LEFT_SHIFT);
    const int32_t sum = ic_multiply_by_quantized_multiplier(shifted1, params->input1_multiplier,
                                                            params->input1_shift) +
                        ic_multiply_by_quantized_multiplier(shifted2, params->input2_multiplier,
                                                            params->input2_shift);
    output[i] =
        ic_requantize(sum, params->output_multiplier, params->output_shift,
                      params->output_zero_point, params->activation_min, params->activation_max);
  }
}

/* --- pools ------------------------------------------------------------------- */

/* The window of output (oy, ox) clipped to the input: rows [*y0, *y1),
 * columns [*x0, *x1). */
static inline void ic_pool_window(const ic_window* w, uint32_t oy, uint32_t ox, uint32_t* y0,
                                  uint32_t* y1, uint32_t* x0, uint32_t* x1) {
  const int32_t row = (int32_t)(oy * w->stride_height) - (int32_t)w->pad_top;
  const int32_t col = (int32_t)(ox * w->stride_width) - (int32_t)w->pad_left;
  const int32_t row_end = row + (int32_t)w->kernel_height;
  const int32_t col_end = col + (int32_t)w->kernel_width;
  *y0 = row < 0 ? 0u : (uint32_t)row;
  *x0 = col < 0 ? 0u : (uint32_t)col;
  *y1 = row_end > (int32_t)w->input_height ? w->input_height : (uint32_t)row_end;
  *x1 = col_end > (int32_t)w->input_width ? w->input_width : (uint32_t)col_end;
}

IC_KERNEL void ic_max_pool(const ic_pool_params* params, const int8_t* input, int8_t* output) {
  const ic_window* w = &params->window;
  const uint32_t plane = w->input_height * w->input_width;
  uint32_t c, oy, ox, y, x, y0, y1, x0, x1;
  for (c = 0; c < w->output_channels; ++c) {
    const int8_t* in = input + c * plane;
    for (oy = 0; oy < w->output_height; ++oy) {
      for (ox = 0; ox < w->output_width; ++ox) {
        int32_t best = -128;
        ic_pool_window(w, oy, ox, &y0, &y1, &x0, &x1);
        for (y = y0; y < y1; ++y) {
          for (x = x0; x < x1; ++x) {
            if (in[y * w->input_width + x] > best) best = in[y * w->input_width + x];
          }
        }
        *output++ = ic_clamp_to(best, params->activation_min, params->activation_max);
      }
    }
  }
}

IC_KERNEL void ic_avg_pool(const ic_pool_params* params, const int8_t* input, int8_t* output) {
  const ic_window* w = &params->window;
  const uint32_t plane = w->input_height * w->input_width;
  uint32_t c, oy, ox, y, x, y0, y1, x0, x1;
  for (c = 0; c < w->output_channels; ++c) {
    const int8_t* in = input + c * plane;
    for (oy = 0; oy < w->output_height; ++oy) {
      for (ox = 0; ox < w->output_width; ++ox) {
        int32_t sum = 0;
        ic_pool_window(w, oy, ox, &y0, &y1, &x0, &x1);
        for (y = y0; y < y1; ++y) {
          for (x = x0; x < x1; ++x) sum += in[y * w->input_width + x];
        }
        *output++ = ic_clamp_to(ic_rounding_divide(sum, (int32_t)((y1 - y0) * (x1 - x0))),
                                params->activation_min, params->activation_max);
      }
    }
  }
}

IC_KERNEL void ic_global_avg_pool(const ic_pool_params* params, const int8_t* input,
                                  int8_t* output) {
  const ic_window* w = &params->window;
  const uint32_t plane = w->input_height * w->input_width;
  uint32_t c, i;
  for (c = 0; c < w->input_channels; ++c) {
    const int8_t* in = input + c * plane;
    int32_t sum = 0;
    for (i = 0; i < plane; ++i) sum += in[i];
    output[c] = ic_clamp_to(ic_rounding_divide(sum, (int32_t)plane), params->activation_min,
                            params->activation_max);
  }
}

/* --- clamp and softmax ----------------------------------------------------------- */

IC_KERNEL void ic_clamp(const ic_clamp_params* params, const int8_t* input, int8_t* output) {
  uint32_t i;
  for (i = 0; i < params->size; ++i) {
    output[i] = ic_clamp_to(input[i], params->activation_min, params->activation_max);
  }
}

IC_KERNEL void ic_softmax(const ic_softmax_params* params, const int8_t* input, int8_t* output) {
  const uint32_t* table = params->exp_table;
  int32_t max = input[0];
  uint32_t sum = 0;
  uint32_t i;
  for (i = 1; i < params->size; ++i) {
    if (input[i] > max) max = input[i];
  }
  for (i = 0; i < params->size; ++i) sum += table[max - input[i]];
  for (i = 0; i < params->size; ++i) {
    const uint32_t e = table[max - input[i]];
    const int32_t q = (int32_t)((256u * e + sum / 2u) / sum) - 128;
    output[i] = (int8_t)(q > 127 ? 127 : q);
  }
}
