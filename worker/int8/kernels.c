/* The int8 kernels of kernels.h. Pasted verbatim into every exported
 * model.c (worker/export/c_emitter.cc), so: C99, no floating point, no
 * allocation, no warnings under gcc -std=c99 -Wall -Wextra -pedantic. Helpers
 * are `static inline` so that a model which calls no convolution, say, draws
 * no unused-function warning. */
#include "worker/int8/kernels.h"

/* The rounding shift relies on >> of a negative int64 being arithmetic
 * (implementation-defined in C99; true of GCC, Clang, Arm, IAR and MSVC).
 * A compiler where it is not fails here rather than computing wrong. */
typedef char ic_requires_arithmetic_right_shift[((int64_t)-1 >> 1) == -1 ? 1 : -1];

/* Output pixels of a row a depthwise convolution computes per pass over its
 * kernel: their accumulators stay in registers while each weight is loaded
 * once. */
#define IC_TILE 16

/* --- requantization ------------------------------------------------------------
 * The kernels call these static inline versions (inlined into their loops);
 * the IC_KERNEL functions below expose the same code for tests. */

static inline int32_t ic_saturate(int64_t value) {
  if (value > INT32_MAX) return INT32_MAX;
  if (value < INT32_MIN) return INT32_MIN;
  return (int32_t)value;
}

/* x * multiplier / 2^(31 - shift) with one rounding, half up. The int64
 * product is below 2^62 in magnitude (multiplier < 2^31), so adding half a
 * step cannot overflow, and a shift of 63 or more leaves less than half a
 * step: 0. A shift above 31 (beyond QuantizeMultiplier's range) multiplies
 * instead of shifting a negative value left, saturating. */
static inline int32_t ic_scale(int32_t x, int32_t multiplier, int32_t shift) {
  const int64_t product = (int64_t)x * (int64_t)multiplier;
  const int64_t right = 31 - (int64_t)shift;
  if (right >= 63) return 0;
  if (right > 0) return ic_saturate((product + ((int64_t)1 << (right - 1))) >> right);
  if (product == 0) return 0;
  if (right <= -32 || product > INT32_MAX || product < INT32_MIN) {
    return product > 0 ? INT32_MAX : INT32_MIN;
  }
  return ic_saturate(product * ((int64_t)1 << -right));
}

static inline int8_t ic_clamp_to(int32_t value, int32_t low, int32_t high) {
  if (value < low) value = low;
  if (value > high) value = high;
  return (int8_t)value;
}

static inline int8_t ic_requant(int32_t x, int32_t multiplier, int32_t shift,
                                int32_t output_zero_point, int32_t activation_min,
                                int32_t activation_max) {
  /* In int64: a saturated product plus the zero point would overflow int32. */
  const int64_t value = (int64_t)ic_scale(x, multiplier, shift) + output_zero_point;
  if (value < activation_min) return (int8_t)activation_min;
  if (value > activation_max) return (int8_t)activation_max;
  return (int8_t)value;
}

/* sum / count to nearest, ties to even; count > 0. */
static inline int32_t ic_divide_even(int32_t sum, int32_t count) {
  int32_t quotient = sum / count;
  int32_t remainder = sum % count;
  if (remainder < 0) { /* C99 truncates toward zero: make it the floor */
    quotient -= 1;
    remainder += count;
  }
  if (2 * remainder > count || (2 * remainder == count && quotient % 2 != 0)) quotient += 1;
  return quotient;
}

IC_KERNEL int32_t ic_multiply_by_quantized_multiplier(int32_t x, int32_t multiplier,
                                                      int32_t shift) {
  return ic_scale(x, multiplier, shift);
}

IC_KERNEL int8_t ic_requantize(int32_t x, int32_t multiplier, int32_t shift,
                               int32_t output_zero_point, int32_t activation_min,
                               int32_t activation_max) {
  return ic_requant(x, multiplier, shift, output_zero_point, activation_min, activation_max);
}

IC_KERNEL int32_t ic_divide_round_half_even(int32_t sum, int32_t count) {
  return ic_divide_even(sum, count);
}

/* --- conv2d ------------------------------------------------------------------
 * One output pixel at a time, IC_CONV_BLOCK output channels at once: each
 * input value is loaded once per block and multiplied by the block's
 * contiguous weights (the packed layout), a loop of constant length that
 * compilers vectorize. The bias arrives with -input_zero_point * sum(all
 * weights) folded in, so a window inside the input needs only raw products
 * sum(w * x); a border window reads its padded cells as the zero point. */

IC_KERNEL uint32_t ic_conv2d_packed_size(const ic_window* w) {
  const uint32_t blocks = (w->output_channels + IC_CONV_BLOCK - 1) / IC_CONV_BLOCK;
  return blocks * IC_CONV_BLOCK * w->input_channels * w->kernel_height * w->kernel_width;
}

IC_KERNEL void ic_conv2d_pack_weights(const ic_window* w, const int8_t* oihw, int8_t* packed) {
  const uint32_t cells = w->input_channels * w->kernel_height * w->kernel_width;
  const uint32_t padded = ic_conv2d_packed_size(w) / cells;
  uint32_t o, cell;
  for (o = 0; o < padded; ++o) {
    for (cell = 0; cell < cells; ++cell) {
      packed[((o / IC_CONV_BLOCK) * cells + cell) * IC_CONV_BLOCK + o % IC_CONV_BLOCK] =
          o < w->output_channels ? oihw[o * cells + cell] : 0;
    }
  }
}

/* acc[j] += sum over the window at (row, col), wholly inside the input, of
 * w[j] * x; `weights` is one packed block. */
static inline void ic_conv_block_inside(const ic_window* w, const int8_t* input,
                                        const int8_t* weights, uint32_t row, uint32_t col,
                                        int32_t* acc) {
  const uint32_t plane = w->input_height * w->input_width;
  uint32_t c, ky, kx, j;
  for (c = 0; c < w->input_channels; ++c) {
    for (ky = 0; ky < w->kernel_height; ++ky) {
      const int8_t* x = input + c * plane + (row + ky) * w->input_width + col;
      for (kx = 0; kx < w->kernel_width; ++kx) {
        const int32_t value = x[kx];
        for (j = 0; j < IC_CONV_BLOCK; ++j) acc[j] += weights[j] * value;
        weights += IC_CONV_BLOCK;
      }
    }
  }
}

/* The same for a window that reaches into the padding. */
static inline void ic_conv_block_border(const ic_window* w, const int8_t* input,
                                        const int8_t* weights, int32_t input_zero_point,
                                        int32_t row, int32_t col, int32_t* acc) {
  const uint32_t plane = w->input_height * w->input_width;
  uint32_t c, ky, kx, j;
  for (c = 0; c < w->input_channels; ++c) {
    for (ky = 0; ky < w->kernel_height; ++ky) {
      const int32_t y = row + (int32_t)ky;
      const int row_inside = y >= 0 && y < (int32_t)w->input_height;
      for (kx = 0; kx < w->kernel_width; ++kx) {
        const int32_t x = col + (int32_t)kx;
        const int32_t value = row_inside && x >= 0 && x < (int32_t)w->input_width
                                  ? input[c * plane + (uint32_t)y * w->input_width + (uint32_t)x]
                                  : input_zero_point;
        for (j = 0; j < IC_CONV_BLOCK; ++j) acc[j] += weights[j] * value;
        weights += IC_CONV_BLOCK;
      }
    }
  }
}

IC_KERNEL void ic_conv2d_run(const ic_conv_params* params, const int8_t* input, int8_t* output) {
  const ic_window* w = &params->window;
  const uint32_t cells = w->input_channels * w->kernel_height * w->kernel_width;
  const uint32_t out_plane = w->output_height * w->output_width;
  uint32_t block, oy, ox, j;
  for (block = 0; block < w->output_channels; block += IC_CONV_BLOCK) {
    const int8_t* weights = params->weights + block * cells;
    const uint32_t count =
        w->output_channels - block < IC_CONV_BLOCK ? w->output_channels - block : IC_CONV_BLOCK;
    for (oy = 0; oy < w->output_height; ++oy) {
      const int32_t row = (int32_t)(oy * w->stride_height) - (int32_t)w->pad_top;
      const int rows_inside = row >= 0 && row + w->kernel_height <= w->input_height;
      for (ox = 0; ox < w->output_width; ++ox) {
        const int32_t col = (int32_t)(ox * w->stride_width) - (int32_t)w->pad_left;
        int8_t* out = output + block * out_plane + oy * w->output_width + ox;
        int32_t acc[IC_CONV_BLOCK];
        for (j = 0; j < IC_CONV_BLOCK; ++j) acc[j] = 0;
        if (rows_inside && col >= 0 && (uint32_t)col + w->kernel_width <= w->input_width) {
          ic_conv_block_inside(w, input, weights, (uint32_t)row, (uint32_t)col, acc);
        } else {
          ic_conv_block_border(w, input, weights, params->input_zero_point, row, col, acc);
        }
        for (j = 0; j < count; ++j) {
          out[j * out_plane] =
              ic_requant(params->bias[block + j] + acc[j], params->output_multiplier[block + j],
                         params->output_shift[block + j], params->output_zero_point,
                         params->activation_min, params->activation_max);
        }
      }
    }
  }
}

/* --- depthwise conv2d -----------------------------------------------------------
 * One channel at a time, along output rows: tiles of IC_TILE (then 4, then
 * 1) pixels per pass over the kernel where their windows lie inside the
 * input's columns, one pixel at a time at the borders. With the folded bias,
 * a window reaching into the padding adds zp * (sum of its padded cells'
 * weights): rows of the window are clipped once per output row, columns per
 * border pixel. */

/* The kernel `k` [kh, kw] summed over rows [ky0, ky1) and columns [kx0, kx1). */
static inline int32_t ic_kernel_sum(const ic_window* w, const int8_t* k, uint32_t ky0, uint32_t ky1,
                                    uint32_t kx0, uint32_t kx1) {
  int32_t sum = 0;
  uint32_t ky, kx;
  for (ky = ky0; ky < ky1; ++ky) {
    for (kx = kx0; kx < kx1; ++kx) sum += k[ky * w->kernel_width + kx];
  }
  return sum;
}

/* acc[0..n) += sum of w * x for n pixels of one output row over kernel
 * rows [ky0, ky1) and every kernel column. `row` is the input row of kernel
 * row 0, `col` the input column of the first pixel's kernel column 0 (all of
 * these columns lie inside the input). Called with constant n (IC_TILE, 4,
 * 1), which keeps the accumulators in registers once inlined. */
static inline void ic_depthwise_tile(const ic_window* w, const int8_t* plane, const int8_t* k,
                                     int32_t row, uint32_t ky0, uint32_t ky1, uint32_t col,
                                     uint32_t n, int32_t* acc) {
  const uint32_t stride = w->stride_width;
  uint32_t ky, kx, j;
  for (ky = ky0; ky < ky1; ++ky) {
    const int8_t* in_row = plane + (uint32_t)(row + (int32_t)ky) * w->input_width + col;
    for (kx = 0; kx < w->kernel_width; ++kx) {
      const int32_t weight = k[ky * w->kernel_width + kx];
      const int8_t* x = in_row + kx;
      for (j = 0; j < n; ++j) acc[j] += weight * x[j * stride];
    }
  }
}

/* sum of w * (x - zp) over the valid cells of one border pixel's window:
 * kernel rows [ky0, ky1), the columns of [col, col + kw) inside the input. */
static inline int32_t ic_depthwise_border(const ic_window* w, const int8_t* plane, const int8_t* k,
                                          int32_t input_zero_point, int32_t row, uint32_t ky0,
                                          uint32_t ky1, int32_t col) {
  const uint32_t kx0 = col < 0 ? (uint32_t)(-col) : 0u;
  const int32_t right = (int32_t)w->input_width - col;
  const uint32_t kx1 =
      right < (int32_t)w->kernel_width ? (uint32_t)(right < 0 ? 0 : right) : w->kernel_width;
  int32_t acc = 0;
  uint32_t ky, kx;
  for (ky = ky0; ky < ky1; ++ky) {
    const int8_t* in_row = plane + (uint32_t)(row + (int32_t)ky) * w->input_width;
    for (kx = kx0; kx < kx1; ++kx) {
      acc +=
          k[ky * w->kernel_width + kx] * (in_row[(uint32_t)(col + (int32_t)kx)] - input_zero_point);
    }
  }
  return acc;
}

/* The output columns whose windows lie wholly inside the input:
 * [*lo, *hi), lo <= hi <= out. */
static inline void ic_inside_columns(const ic_window* w, uint32_t* lo, uint32_t* hi) {
  const uint32_t in = w->input_width, kernel = w->kernel_width, stride = w->stride_width;
  uint32_t first = (w->pad_left + stride - 1) / stride;
  uint32_t end = in + w->pad_left >= kernel ? (in + w->pad_left - kernel) / stride + 1 : 0;
  if (first > w->output_width) first = w->output_width;
  if (end > w->output_width) end = w->output_width;
  if (end < first) end = first;
  *lo = first;
  *hi = end;
}

/* Output channel c of a depthwise conv. */
static inline void ic_depthwise_channel(const ic_conv_params* p, const int8_t* input, uint32_t c,
                                        int8_t* output) {
  const ic_window* w = &p->window;
  const int8_t* plane = input + c * w->input_height * w->input_width;
  const int8_t* k = p->weights + c * w->kernel_height * w->kernel_width;
  const int32_t zp = p->input_zero_point;
  const int32_t multiplier = p->output_multiplier[c];
  const int32_t shift = p->output_shift[c];
  const int32_t kernel_sum = ic_kernel_sum(w, k, 0, w->kernel_height, 0, w->kernel_width);
  int8_t* out = output + c * w->output_height * w->output_width;
  uint32_t col_lo, col_hi, oy, ox, j;
  int32_t acc[IC_TILE];
  ic_inside_columns(w, &col_lo, &col_hi);
  for (oy = 0; oy < w->output_height; ++oy) {
    const int32_t row = (int32_t)(oy * w->stride_height) - (int32_t)w->pad_top;
    const int32_t below = (int32_t)w->input_height - row;
    const uint32_t ky0 = row < 0 ? (uint32_t)(-row) : 0u;
    const uint32_t ky1 =
        below < (int32_t)w->kernel_height ? (uint32_t)(below < 0 ? 0 : below) : w->kernel_height;
    /* Kernel rows in the padding: their cells all read as zp. */
    const int32_t row_bias =
        p->bias[c] + zp * (kernel_sum - ic_kernel_sum(w, k, ky0, ky1, 0, w->kernel_width));
    const int32_t border_bias = p->bias[c] + zp * kernel_sum;
    int8_t* out_row = out + oy * w->output_width;
    for (ox = 0; ox < w->output_width;) {
      const int32_t col = (int32_t)(ox * w->stride_width) - (int32_t)w->pad_left;
      const uint32_t n = ox < col_lo || ox >= col_hi ? 0
                         : ox + IC_TILE <= col_hi    ? IC_TILE
                         : ox + 4 <= col_hi          ? 4
                                                     : 1;
      if (n == 0) {
        const int32_t sum = ic_depthwise_border(w, plane, k, zp, row, ky0, ky1, col);
        out_row[ox] = ic_requant(border_bias + sum, multiplier, shift, p->output_zero_point,
                                 p->activation_min, p->activation_max);
        ++ox;
        continue;
      }
      for (j = 0; j < n; ++j) acc[j] = row_bias;
      if (n == IC_TILE) {
        ic_depthwise_tile(w, plane, k, row, ky0, ky1, (uint32_t)col, IC_TILE, acc);
      } else if (n == 4) {
        ic_depthwise_tile(w, plane, k, row, ky0, ky1, (uint32_t)col, 4, acc);
      } else {
        ic_depthwise_tile(w, plane, k, row, ky0, ky1, (uint32_t)col, 1, acc);
      }
      for (j = 0; j < n; ++j) {
        out_row[ox + j] = ic_requant(acc[j], multiplier, shift, p->output_zero_point,
                                     p->activation_min, p->activation_max);
      }
      ox += n;
    }
  }
}

IC_KERNEL void ic_depthwise_conv2d_run(const ic_conv_params* params, const int8_t* input,
                                       int8_t* output) {
  uint32_t c;
  for (c = 0; c < params->window.output_channels; ++c) {
    ic_depthwise_channel(params, input, c, output);
  }
}

/* --- dense ------------------------------------------------------------------- */

IC_KERNEL void ic_dense_run(const ic_dense_params* params, const int8_t* input, int8_t* output) {
  const uint32_t n = params->input_size;
  uint32_t u, i;
  for (u = 0; u < params->output_size; ++u) {
    const int8_t* row = params->weights + u * n;
    int32_t acc = params->bias[u];
    for (i = 0; i < n; ++i) acc += row[i] * input[i];
    output[u] =
        ic_requant(acc, params->output_multiplier, params->output_shift, params->output_zero_point,
                   params->activation_min, params->activation_max);
  }
}

/* --- add --------------------------------------------------------------------- */

IC_KERNEL void ic_add_run(const ic_add_params* params, const int8_t* input1, const int8_t* input2,
                          int8_t* output) {
  uint32_t i;
  for (i = 0; i < params->size; ++i) {
    const int32_t shifted1 = (input1[i] - params->input1_zero_point) * (1 << IC_ADD_LEFT_SHIFT);
    const int32_t shifted2 = (input2[i] - params->input2_zero_point) * (1 << IC_ADD_LEFT_SHIFT);
    const int32_t sum = ic_scale(shifted1, params->input1_multiplier, params->input1_shift) +
                        ic_scale(shifted2, params->input2_multiplier, params->input2_shift);
    output[i] =
        ic_requant(sum, params->output_multiplier, params->output_shift, params->output_zero_point,
                   params->activation_min, params->activation_max);
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

/* Max pool (take_max) or average pool: one reduction per clipped window.
 * The average rounds the mean of the codes themselves, ties to even: ONNX
 * Runtime's QLinearAveragePool rounds mean / scale + zero_point so. */
static inline void ic_pool(const ic_pool_params* params, const int8_t* input, int8_t* output,
                           int take_max) {
  const ic_window* w = &params->window;
  const uint32_t plane = w->input_height * w->input_width;
  uint32_t c, oy, ox, y, x, y0, y1, x0, x1;
  for (c = 0; c < w->output_channels; ++c) {
    const int8_t* in = input + c * plane;
    for (oy = 0; oy < w->output_height; ++oy) {
      for (ox = 0; ox < w->output_width; ++ox) {
        int32_t best = -128, sum = 0;
        ic_pool_window(w, oy, ox, &y0, &y1, &x0, &x1);
        for (y = y0; y < y1; ++y) {
          for (x = x0; x < x1; ++x) {
            const int32_t v = in[y * w->input_width + x];
            if (v > best) best = v;
            sum += v;
          }
        }
        *output++ =
            ic_clamp_to(take_max ? best : ic_divide_even(sum, (int32_t)((y1 - y0) * (x1 - x0))),
                        params->activation_min, params->activation_max);
      }
    }
  }
}

IC_KERNEL void ic_max_pool_run(const ic_pool_params* params, const int8_t* input, int8_t* output) {
  ic_pool(params, input, output, 1);
}

IC_KERNEL void ic_avg_pool_run(const ic_pool_params* params, const int8_t* input, int8_t* output) {
  ic_pool(params, input, output, 0);
}

/* Rounds the real mean (the codes less the zero point), ties to even, then
 * adds the zero point back: ONNX Runtime's QLinearGlobalAveragePool (a bias
 * of -zero_point * plane, then its requantization). With an odd zero point
 * a tie goes the other way than in the average pool above. */
IC_KERNEL void ic_global_avg_pool_run(const ic_pool_params* params, const int8_t* input,
                                      int8_t* output) {
  const ic_window* w = &params->window;
  const uint32_t plane = w->input_height * w->input_width;
  uint32_t c, i;
  for (c = 0; c < w->input_channels; ++c) {
    const int8_t* in = input + c * plane;
    int32_t sum = 0;
    for (i = 0; i < plane; ++i) sum += in[i];
    output[c] =
        ic_clamp_to(ic_divide_even(sum - (int32_t)plane * params->zero_point, (int32_t)plane) +
                        params->zero_point,
                    params->activation_min, params->activation_max);
  }
}

/* --- clamp and softmax ----------------------------------------------------------- */

IC_KERNEL void ic_clamp_run(const ic_clamp_params* params, const int8_t* input, int8_t* output) {
  uint32_t i;
  for (i = 0; i < params->size; ++i) {
    output[i] = ic_clamp_to(input[i], params->activation_min, params->activation_max);
  }
}

IC_KERNEL void ic_softmax_run(const ic_softmax_params* params, const int8_t* input,
                              int8_t* output) {
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
