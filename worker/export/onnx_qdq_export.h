// model_i8.onnx: a QuantizedModel (worker/int8/quantized_model.h) as an
// ONNX file in QDQ form — the float graph with QuantizeLinear /
// DequantizeLinear pairs around every op — that ONNX Runtime and other
// runtimes fuse back into integer kernels (QLinearConv, QGemm, QLinearAdd,
// ...). Same contract as model_f32.onnx (onnx_export.h):
//   input   "input"  float32 [N, C, H, W], N free: the processing block's
//           pixels / 255; quantized at once with the model's input
//           parameters (1/255: exactly the pixel, see "activations");
//   output  "scores" float32 [N, classes]: the dequantized int8 softmax
//           (multiples of 1/256); a model without a final softmax gets a
//           float Softmax after its dequantized logits, as model_f32.onnx;
//   metadata_props as model_f32.onnx ("labels", "normalization", "impulse",
//           "architecture", "input_shape") plus "quantization" (the
//           calibration method, QuantizedModel::method).
//
// Activations are uint8 in the file: our int8 code q with zero point z is
// the uint8 code q + 128 with zero point z + 128 — the same scale, the same
// real values, the same rounding and saturation, so the file computes what
// the int8 model computes. It is the form ONNX Runtime's x86 kernels fuse
// everywhere (U8S8: uint8 activations, int8 weights); with int8 activations
// ORT converts each Q/DQ pair to uint8 itself, which it cannot do for a
// tensor with two readers (a residual), and runs those convs and adds in
// float. Weights are int8, biases int32.
//
// Per op (opset 13, the first with per-axis DequantizeLinear):
//   * every op's float inputs come from a DequantizeLinear of the
//     quantized tensor (one DQ per reader) and its float output goes
//     through one QuantizeLinear with the op's output parameters;
//   * conv2d / depthwise_conv2d -> Conv (group = channels for depthwise,
//     pads [top, left, bottom, right]) over int8 weight initializers with
//     per-output-channel scales (DQ axis 0, zero points 0) and an int32 bias
//     initializer at scale input scale x weight scale[c];
//   * dense -> Gemm (transB = 1: weights stay [units, inputs]) over a
//     per-tensor int8 weight and int32 bias; a 4-D input is flattened
//     first (ONNX Flatten on the quantized tensor: [C, H, W] C-major, as
//     ours);
//   * add -> Add; max / avg pool -> MaxPool / AveragePool
//     (count_include_pad 0); global pool -> GlobalAveragePool, then Flatten
//     of the quantized [N, C, 1, 1]; softmax -> Softmax, Q at 1/256, -128
//     (uint8 zero point 0, what ORT's QLinearSoftmax wants);
//   * a fused ReLU / ReLU6 clamp is written only where it is narrower than
//     the int8 range of the output's QuantizeLinear (which saturates
//     anyway): as Relu when its lower bound is real 0 and it has no upper
//     bound, else as Clip with the clamp's dequantized bounds. With
//     calibrated ReLU ranges (zero point -128) that leaves no node, so ORT
//     fuses DQ -> Conv -> Q into one integer kernel.
// ONNX Runtime 1.30 (x86) runs the whole of the default network and
// MobileNetV2 as QLinearConv / QLinearAdd / QGemm / QLinearGlobalAveragePool
// / QLinearSoftmax. Its arithmetic differs from ours only in rounding (a
// float multiplier, half to even; ours is fixed-point):
// tests/onnx_agreement/qdq_agreement_test.cc measures by how much.
//
// Thread safety: the functions share nothing.
#pragma once

#include <onnx/onnx_pb.h>

#include <string>

#include "impulse/status.h"
#include "worker/export/onnx_export.h"
#include "worker/int8/quantized_model.h"

namespace impulse::worker::exporters {

// The QDQ ONNX model of `model`. InvalidArgument when the model has no ops,
// labels of the wrong count, an op input that is not an earlier op, or
// weights / scales / biases whose sizes do not fit the op's shapes (the
// message names the op).
Result<onnx::ModelProto> BuildQdqOnnx(const int8::QuantizedModel& model,
                                      const OnnxExportInfo& info);

// BuildQdqOnnx, CheckOnnxModel, and the file at `path` (model_i8.onnx). The
// checker's failure is Internal: a model the quantizer produced must export.
Status ExportQdqOnnx(const int8::QuantizedModel& model, const OnnxExportInfo& info,
                     const std::string& path);

}  // namespace impulse::worker::exporters
