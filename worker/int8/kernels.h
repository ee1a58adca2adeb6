/* Integer-only int8 kernels, plain C99: the arithmetic of an int8 model
 * (worker/int8/quantized_model.h), once. The worker's interpreter links
 * kernels.c; the C library exporter pastes this header and kernels.c into
 * model.c, so the library a device runs computes exactly what the worker
 * measured.
 *
 * Rules for this file and kernels.c: no floating point, no allocation, no
 * libc beyond <stdint.h>; every tensor is caller-owned, [C, H, W] C-major,
 * batch of one; an op's input and output never share bytes.
 *
 * Quantization: real = scale * (q - zero_point). Each kernel's parameters
 * come precomputed from the exporter (worker/int8/kernel_ops.h), which does
 * all the float work; a kernel only adds, multiplies and shifts integers.
 *
 * IC_KERNEL is the storage class of every function here: empty when the
 * worker links kernels.c, `static inline` when model.c embeds it (so a
 * kernel the model does not call draws no unused-function warning).
 */
#ifndef IMPULSE_WORKER_INT8_KERNELS_H_
#define IMPULSE_WORKER_INT8_KERNELS_H_

#include <stdint.h>

#ifndef IC_KERNEL
#define IC_KERNEL
#endif

#ifdef __cplusplus
extern "C" {
#endif

/* --- Requantization (one rounding) -----------------------------------------
 * A real multiplier m > 0 is held as (multiplier, shift) with
 * m = multiplier * 2^(shift - 31), multiplier in [2^30, 2^31) (or 0 for
 * m = 0), shift in [-31, 31] (QuantizeMultiplier, as TFLite).
 *
 * ic_multiply_by_quantized_multiplier(x, multiplier, shift): x * m rounded
 * once to the nearest integer, ties toward +infinity: the exact int64
 * product x * multiplier, plus 2^(30 - shift), arithmetic-shifted right by
 * 31 - shift bits; saturated to int32 (possible for m > 1 only). This is
 * TFLite's TFLITE_SINGLE_ROUNDING and CMSIS-NN's
 * CMSIS_NN_USE_SINGLE_ROUNDING rule, not TFLite's default two roundings
 * (a rounding doubling high multiply, then a rounding shift): the exactly
 * rounded product, which ONNX Runtime's float requantization of
 * model_i8.onnx also computes (it breaks ties to even: docs/INT8.md).
 * Exact (then saturated) for every int32 x and shift, multiplier >= 0,
 * shifts outside [-31, 31] included. */
IC_KERNEL int32_t ic_multiply_by_quantized_multiplier(int32_t x, int32_t multiplier, int32_t shift);
/* An int32 accumulator to an output int8: x * m + output_zero_point, clamped
 * to [activation_min, activation_max] (a subrange of [-128, 127]). */
IC_KERNEL int8_t ic_requantize(int32_t x, int32_t multiplier, int32_t shift,
                               int32_t output_zero_point, int32_t activation_min,
                               int32_t activation_max);

/* --- Windowed ops: geometry -------------------------------------------------
 * Output pixel (oy, ox) reads input rows oy * stride_height - pad_top + ky,
 * ky in [0, kernel_height), and likewise columns; cells outside the input
 * are padding (pad_bottom / pad_right follow from the output size). */
typedef struct {
  uint32_t input_channels, input_height, input_width;
  uint32_t output_channels, output_height, output_width;
  uint32_t kernel_height, kernel_width;
  uint32_t stride_height, stride_width;
  uint32_t pad_top, pad_left;
} ic_window;

/* --- conv2d (groups 1) and depthwise conv2d ---------------------------------
 * out[o] = requantize(bias[o] + sum over the window of w * x), where a
 * padded cell counts as x = input_zero_point (real 0). `bias` holds the
 * int32 bias with the input zero point folded in:
 *   bias[o] = bias_real_q[o] - input_zero_point * sum(weights of channel o),
 * so the loops multiply raw int8 values only.
 * Overflow: |w * x| <= 128 * 128 = 2^14, so the int32 accumulator holds any
 * window of up to 2^16 cells (conv: in_channels * kernel_h * kernel_w) with
 * a bias below 2^30 in magnitude.
 * Weights: depthwise [C, kh, kw] (output_channels = input_channels); conv2d
 * packed by ic_conv2d_pack_weights from OIHW [out, in, kh, kw] (at export
 * time). Per output channel multiplier / shift. */
#define IC_CONV_BLOCK 16
typedef struct {
  ic_window window;
  int32_t input_zero_point;
  int32_t output_zero_point;
  int32_t activation_min, activation_max;
  const int8_t* weights;
  const int32_t* bias;
  const int32_t* output_multiplier;
  const int32_t* output_shift;
} ic_conv_params;

/* conv2d weights packed: output channels in blocks of IC_CONV_BLOCK, each
 * block [in, kh, kw, IC_CONV_BLOCK] (its channels innermost; zeros past the
 * last output channel). `packed` holds ic_conv2d_packed_size(w) bytes. */
IC_KERNEL uint32_t ic_conv2d_packed_size(const ic_window* w);
IC_KERNEL void ic_conv2d_pack_weights(const ic_window* w, const int8_t* oihw, int8_t* packed);
IC_KERNEL void ic_conv2d_run(const ic_conv_params* params, const int8_t* input, int8_t* output);
IC_KERNEL void ic_depthwise_conv2d_run(const ic_conv_params* params, const int8_t* input,
                                       int8_t* output);

/* --- dense -------------------------------------------------------------------
 * out[u] = requantize(bias[u] + sum_i w[u, i] * x[i]); weights [units,
 * inputs], one multiplier / shift for the tensor; `bias` with the input
 * zero point folded in as for conv (overflow: inputs up to 2^16). */
typedef struct {
  uint32_t input_size, output_size;
  int32_t output_zero_point;
  int32_t activation_min, activation_max;
  const int8_t* weights;
  const int32_t* bias;
  int32_t output_multiplier, output_shift;
} ic_dense_params;

IC_KERNEL void ic_dense_run(const ic_dense_params* params, const int8_t* input, int8_t* output);

/* --- add (TFLite's int8 ADD) -----------------------------------------------
 * Each input, less its zero point, is shifted left by IC_ADD_LEFT_SHIFT bits
 * (headroom for the rounding) and rescaled by its multiplier (input scale /
 * (2 * max input scale), shift <= 0); the sum is rescaled by the output
 * multiplier (2 * max input scale / (2^IC_ADD_LEFT_SHIFT * output scale)),
 * then + output zero point, clamped. |x - zp| <= 255 < 2^8, so the shifted
 * value stays below 2^28. */
#define IC_ADD_LEFT_SHIFT 20
typedef struct {
  uint32_t size;
  int32_t input1_zero_point, input2_zero_point, output_zero_point;
  int32_t input1_multiplier, input1_shift;
  int32_t input2_multiplier, input2_shift;
  int32_t output_multiplier, output_shift;
  int32_t activation_min, activation_max;
} ic_add_params;

IC_KERNEL void ic_add_run(const ic_add_params* params, const int8_t* input1, const int8_t* input2,
                          int8_t* output);

/* --- pools (output at the input's scale and zero point) ---------------------
 * Max pool: the largest input cell of the window; padding never wins.
 * Average pool: the mean of the window's input codes (padded cells are
 * not counted), rounded to nearest with ties to even
 * (ic_divide_round_half_even(sum, count)). Global average pool: the real
 * mean of each whole channel plane rounded so, i.e.
 * ic_divide_round_half_even(sum - plane * zero_point, plane) + zero_point;
 * window.output_* is [C, 1, 1]. The two differ only at a tie with an odd
 * zero point; each is ONNX Runtime's rule for the op (docs/INT8.md). Each
 * then clamps to [activation_min, activation_max].
 * REQUIRES every window to hold at least one input cell (pad < kernel). */
typedef struct {
  ic_window window;
  int32_t zero_point; /* the input's, which is the output's; global pool only */
  int32_t activation_min, activation_max;
} ic_pool_params;

IC_KERNEL void ic_max_pool_run(const ic_pool_params* params, const int8_t* input, int8_t* output);
IC_KERNEL void ic_avg_pool_run(const ic_pool_params* params, const int8_t* input, int8_t* output);
IC_KERNEL void ic_global_avg_pool_run(const ic_pool_params* params, const int8_t* input,
                                      int8_t* output);
/* sum / count rounded to nearest, ties to even; count > 0. */
IC_KERNEL int32_t ic_divide_round_half_even(int32_t sum, int32_t count);

/* --- clamp: a standalone ReLU / ReLU6 at unchanged scale --------------------- */
typedef struct {
  uint32_t size;
  int32_t activation_min, activation_max;
} ic_clamp_params;

IC_KERNEL void ic_clamp_run(const ic_clamp_params* params, const int8_t* input, int8_t* output);

/* --- softmax ------------------------------------------------------------------
 * int8 logits to probabilities at scale 1/256, zero point -128.
 * exp_table[d] = round(2^16 * exp(-d * input_scale)), d in [0, 255], so
 * exp_table[0] = 2^16. With m the largest logit and e_i = exp_table[m - x_i],
 * S = sum e_i (<= 2^16 * size < 2^32 for size < 2^16):
 *   out_i = min(127, floor((256 * e_i + S / 2) / S) - 128)
 * i.e. 256 * e_i / S rounded half up (an exact integer division). */
typedef struct {
  uint32_t size;
  const uint32_t* exp_table;
} ic_softmax_params;

IC_KERNEL void ic_softmax_run(const ic_softmax_params* params, const int8_t* input, int8_t* output);

#ifdef __cplusplus
}
#endif

#endif /* IMPULSE_WORKER_INT8_KERNELS_H_ */
