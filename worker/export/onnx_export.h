// model_f32.onnx: a trained model's layer graph and weights as an ONNX file
// that any ONNX runtime runs without this project.
//
// The file (opset 13, IR version of the linked libonnx):
//   input   "input"  float32 [N, C, H, W], N free: exactly the processing
//           block's output, uint8 feature pixels / 255 (a RAW block's
//           network flattens it in its first layer);
//   output  "scores" float32 [N, classes]: softmax probabilities; scores[i]
//           is the class labels[i];
//   metadata_props
//           "labels"         JSON array of the class names, output order
//           "normalization"  e.g. "pixels / 255, NCHW, grayscale (BT.601 luma)"
//           "impulse"        the impulse's name
//           "architecture"   v1::Model.architecture
//           "input_shape"    "[C,H,W]"
//
// Layer kinds map one to one: CONV2D and DEPTHWISE_CONV2D -> Conv (group =
// groups), BATCH_NORM -> BatchNormalization (running statistics, not
// folded, so the file keeps the trained layers), RELU -> Relu, RELU6 ->
// Clip(0, 6) with min/max as inputs (opset 13), MAX_POOL -> MaxPool,
// AVG_POOL -> AveragePool (count_include_pad 0), GLOBAL_AVG_POOL ->
// GlobalAveragePool + Flatten, FLATTEN -> Flatten, DENSE -> Gemm
// (transB = 1), ADD -> Add, SOFTMAX -> Softmax(axis -1); DROPOUT is left out
// (identity at inference). A model without a final SOFTMAX gets one, so the
// first output is always probabilities.
//
// Thread safety: the functions share nothing.
#pragma once

#include <onnx/onnx_pb.h>

#include <map>
#include <string>
#include <vector>

#include "impulse/model/layer_graph.h"
#include "impulse/status.h"
#include "impulse/v1/impulse.pb.h"

namespace impulse::worker::exporters {

inline constexpr char kOnnxInputName[] = "input";
inline constexpr char kOnnxOutputName[] = "scores";

struct OnnxExportInfo {
  std::string impulse_name;   // metadata "impulse"
  std::string normalization;  // metadata "normalization"; see NormalizationNote()
};

// The impulse's input normalization in words, for the metadata:
// "pixels / 255, NCHW, RGB" or "pixels / 255, NCHW, grayscale (BT.601 luma)",
// then the input size and resize mode.
std::string NormalizationNote(const v1::Impulse& impulse);

// The metadata_props every exported model carries: "labels" (JSON array,
// output order), "normalization", "impulse", "architecture" and
// "input_shape" ("[C,H,W]").
std::map<std::string, std::string> ExportMetadata(const OnnxExportInfo& info,
                                                  const std::vector<std::string>& labels,
                                                  const std::string& architecture,
                                                  const std::vector<uint32_t>& input_shape);

// CheckOnnxModel, then the file at `path`. A failed check is Internal naming
// `file` ("model_f32.onnx: ONNX checker: ..."): what we build must be valid.
Status CheckAndWriteOnnx(const onnx::ModelProto& model, const std::string& file,
                         const std::string& path);

// The ONNX model of `graph`. InvalidArgument when the graph lacks weights
// (graph.CheckWeights() fails), has no labels or labels of the wrong count,
// or holds a layer kind this exporter does not know (the message names the
// layer).
Result<onnx::ModelProto> BuildFloatOnnx(const model::LayerGraph& graph, const OnnxExportInfo& info);

// BuildFloatOnnx, CheckOnnxModel, and the file at `path`. The checker's
// failure is Internal here: a graph that LayerGraph accepted must export.
Status ExportFloatOnnx(const model::LayerGraph& graph, const OnnxExportInfo& info,
                       const std::string& path);

}  // namespace impulse::worker::exporters
