// The int8 QDQ ONNX exporter on a hand-made QuantizedModel with every op
// kind: the checker, the QDQ structure (int8 weights with per-channel
// scales, int32 biases, Q/DQ around each op), the contract's input and
// output, metadata, and refusals. Numbers are checked against ONNX Runtime
// in tests/onnx_agreement/qdq_agreement_test.cc.
#include "worker/export/onnx_qdq_export.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <cstring>
#include <fstream>
#include <map>
#include <nlohmann/json.hpp>

#include "tests/support/temp_dir.h"
#include "worker/export/onnx_builder.h"

namespace impulse::worker::exporters {
namespace {

using int8::QuantizedModel;
using int8::QuantizedOp;
using model::OpKind;
using ::testing::ElementsAre;
using ::testing::HasSubstr;

QuantizedOp& AddOp(QuantizedModel& m, OpKind kind, const std::string& name, std::vector<int> inputs,
                   std::vector<uint32_t> shape) {
  QuantizedOp& q = m.ops.emplace_back();
  q.op.kind = kind;
  q.op.inputs = std::move(inputs);
  q.op.output_elements = 1;
  for (uint32_t d : shape) q.op.output_elements *= d;
  q.op.output_shape = std::move(shape);
  q.name = name;
  q.output = {0.05f, -10};
  return q;
}

// Weights 1, 2, 3, ... (mod 256, as int8), `scales` scales, `bias` biases.
void Parameters(QuantizedOp& q, size_t weights, size_t scales, size_t bias) {
  for (size_t i = 0; i < weights; ++i) q.weights.push_back(static_cast<int8_t>(i + 1));
  for (size_t c = 0; c < scales; ++c) q.weight_scales.push_back(0.01f * (c + 1));
  for (size_t c = 0; c < bias; ++c) q.bias.push_back(static_cast<int32_t>(100 * c) - 7);
}

// [3, 8, 8] -> conv 4x3x3 pad 1 + ReLU (zero point -128: no clamp node)
// -> depthwise stride 2 TF padding + ReLU6 (clamped below 127: a Clip)
// -> pointwise conv -> add (residual) -> max pool -> avg pool
// -> global pool -> dense 3 -> softmax.
QuantizedModel EveryOpKind() {
  QuantizedModel m;
  m.input_shape = {3, 8, 8};
  m.input = {1.0f / 255, -128};
  m.labels = {"cat", "dog", "ému"};
  m.architecture = "every-op";
  m.method = "minmax";
  QuantizedOp& conv = AddOp(m, OpKind::kConv2D, "conv", {-1}, {4, 8, 8});
  conv.kernel_h = conv.kernel_w = 3;
  conv.pad_top = conv.pad_bottom = conv.pad_left = conv.pad_right = 1;
  conv.output = {0.02f, -128};
  conv.activation_min = -128;
  Parameters(conv, 4 * 3 * 9, 4, 4);
  QuantizedOp& dw = AddOp(m, OpKind::kDepthwiseConv2D, "dw", {0}, {4, 4, 4});
  dw.kernel_h = dw.kernel_w = 3;
  dw.stride_h = dw.stride_w = 2;
  dw.pad_bottom = dw.pad_right = 1;
  dw.output = {0.03f, -128};
  dw.activation_min = -128;
  dw.activation_max = 72;  // 6 / 0.03 - 128
  Parameters(dw, 4 * 9, 4, 4);
  QuantizedOp& pw = AddOp(m, OpKind::kConv2D, "pw", {1}, {4, 4, 4});
  Parameters(pw, 16, 4, 4);
  AddOp(m, OpKind::kAdd, "add", {1, 2}, {4, 4, 4});
  QuantizedOp& max = AddOp(m, OpKind::kMaxPool, "max", {3}, {4, 2, 2});
  max.kernel_h = max.kernel_w = max.stride_h = max.stride_w = 2;
  QuantizedOp& avg = AddOp(m, OpKind::kAvgPool, "avg", {4}, {4, 2, 2});
  avg.kernel_h = avg.kernel_w = 2;
  avg.pad_bottom = avg.pad_right = 1;
  AddOp(m, OpKind::kGlobalAvgPool, "gap", {5}, {4});
  QuantizedOp& dense = AddOp(m, OpKind::kDense, "dense", {6}, {3});
  Parameters(dense, 3 * 4, 1, 3);
  QuantizedOp& softmax = AddOp(m, OpKind::kSoftmax, "softmax", {7}, {3});
  softmax.output = {1.0f / 256, -128};
  return m;
}

// [1, 4, 4] -> dense 2 straight on the input (a RAW block), no softmax.
QuantizedModel FlatDense() {
  QuantizedModel m;
  m.input_shape = {1, 4, 4};
  m.input = {1.0f / 255, -128};
  m.labels = {"a", "b"};
  QuantizedOp& dense = AddOp(m, OpKind::kDense, "dense", {-1}, {2});
  Parameters(dense, 2 * 16, 1, 2);
  return m;
}

const OnnxExportInfo kInfo{.impulse_name = "pets", .normalization = "pixels / 255, NCHW, RGB"};

std::vector<std::string> OpTypes(const onnx::ModelProto& model) {
  std::vector<std::string> ops;
  for (const auto& node : model.graph().node()) {
    if (node.op_type() != "QuantizeLinear" && node.op_type() != "DequantizeLinear") {
      ops.push_back(node.op_type());
    }
  }
  return ops;
}

const onnx::TensorProto* Initializer(const onnx::ModelProto& model, const std::string& name) {
  for (const auto& t : model.graph().initializer()) {
    if (t.name() == name) return &t;
  }
  return nullptr;
}

const onnx::NodeProto* Node(const onnx::ModelProto& model, const std::string& name) {
  for (const auto& n : model.graph().node()) {
    if (n.name() == name) return &n;
  }
  return nullptr;
}

int64_t IntAttribute(const onnx::NodeProto& node, const std::string& name, int64_t missing) {
  for (const auto& a : node.attribute()) {
    if (a.name() == name) return a.i();
  }
  return missing;
}

std::vector<int64_t> Dims(const onnx::TensorProto& t) { return {t.dims().begin(), t.dims().end()}; }

onnx::ModelProto Built(const QuantizedModel& m) {
  auto built = BuildQdqOnnx(m, kInfo);
  EXPECT_TRUE(built.ok()) << built.status().ToString();
  if (!built.ok()) return {};
  const Status checked = CheckOnnxModel(*built);
  EXPECT_TRUE(checked.ok()) << checked.ToString();
  return *std::move(built);
}

TEST(OnnxQdqExportTest, EveryOpKindPassesTheCheckerInQdqForm) {
  const onnx::ModelProto model = Built(EveryOpKind());
  EXPECT_EQ(model.opset_import(0).version(), 13);
  // The ReLU of conv is the output Q's saturation (zero point -128); the
  // ReLU6 of dw clamps below 127, so it is a Clip.
  EXPECT_THAT(OpTypes(model),
              ElementsAre("Conv", "Conv", "Clip", "Conv", "Add", "MaxPool", "AveragePool",
                          "GlobalAveragePool", "Flatten", "Gemm", "Softmax"));
  // Every float op reads DequantizeLinear outputs only and feeds one
  // QuantizeLinear: the QDQ form runtimes fuse into integer kernels.
  std::map<std::string, std::string> producer;
  for (const auto& n : model.graph().node()) producer[n.output(0)] = n.op_type();
  for (const auto& n : model.graph().node()) {
    if (n.op_type() == "Conv" || n.op_type() == "Gemm" || n.op_type() == "Add") {
      for (const auto& in : n.input()) EXPECT_EQ(producer[in], "DequantizeLinear") << n.name();
    }
  }

  // Activations are uint8 (q + 128): the input quantizes at 1/255 with
  // zero point 0, so its code is the pixel.
  const onnx::NodeProto& quantize_input = model.graph().node(0);
  EXPECT_EQ(quantize_input.op_type(), "QuantizeLinear");
  EXPECT_EQ(quantize_input.input(0), "input");
  const onnx::TensorProto* input_zero = Initializer(model, quantize_input.input(2));
  ASSERT_NE(input_zero, nullptr);
  EXPECT_EQ(input_zero->data_type(), onnx::TensorProto_DataType_UINT8);
  EXPECT_EQ(input_zero->raw_data(), std::string(1, '\0'));

  // conv: int8 OIHW weights, 4 per-channel scales on axis 0, int32 bias.
  const onnx::TensorProto* w = Initializer(model, "conv.weight_q");
  ASSERT_NE(w, nullptr);
  EXPECT_EQ(w->data_type(), onnx::TensorProto_DataType_INT8);
  EXPECT_THAT(Dims(*w), ElementsAre(4, 3, 3, 3));
  EXPECT_EQ(w->raw_data().size(), 108u);
  EXPECT_THAT(Dims(*Initializer(model, "conv.weight_scale")), ElementsAre(4));
  EXPECT_EQ(IntAttribute(*Node(model, "conv_weight_dequantize"), "axis", -1), 0);
  const onnx::TensorProto* bias = Initializer(model, "conv.bias_q");
  ASSERT_NE(bias, nullptr);
  EXPECT_EQ(bias->data_type(), onnx::TensorProto_DataType_INT32);
  EXPECT_EQ(bias->raw_data().size(), 16u);
  // Bias scale = input scale (1/255) x weight scale[c].
  const onnx::TensorProto* bias_scale = Initializer(model, "conv.bias_scale");
  ASSERT_NE(bias_scale, nullptr);
  float s[4];
  std::memcpy(s, bias_scale->raw_data().data(), sizeof(s));
  EXPECT_FLOAT_EQ(s[3], 0.04f / 255);

  // depthwise: [C, 1, KH, KW], group = C, TF padding as [t, l, b, r].
  EXPECT_THAT(Dims(*Initializer(model, "dw.weight_q")), ElementsAre(4, 1, 3, 3));
  const onnx::NodeProto* dw = Node(model, "dw");
  ASSERT_NE(dw, nullptr);
  EXPECT_EQ(IntAttribute(*dw, "group", 0), 4);
  for (const auto& a : dw->attribute()) {
    if (a.name() == "pads") EXPECT_THAT(a.ints(), ElementsAre(0, 0, 1, 1));
  }
  // The ReLU6 clamp [-128, 72] at 0.03, -128 dequantized: [0, 6].
  float clip_max = 0;
  std::memcpy(&clip_max, Initializer(model, "dw.clip_max")->raw_data().data(), 4);
  EXPECT_NEAR(clip_max, 6.0f, 1e-5);

  // dense: per-tensor scale, weights [units, inputs] under transB.
  EXPECT_THAT(Dims(*Initializer(model, "dense.weight_q")), ElementsAre(3, 4));
  EXPECT_THAT(Dims(*Initializer(model, "dense.weight_scale")), ElementsAre());
  EXPECT_EQ(IntAttribute(*Node(model, "dense"), "transB", 0), 1);

  // The contract: input [N,3,8,8], output "scores" [N,3] from the softmax's
  // 1/256 quantization.
  const auto& input = model.graph().input(0);
  EXPECT_EQ(input.name(), "input");
  EXPECT_EQ(input.type().tensor_type().elem_type(), onnx::TensorProto_DataType_FLOAT);
  const auto& in_shape = input.type().tensor_type().shape();
  ASSERT_EQ(in_shape.dim_size(), 4);
  EXPECT_EQ(in_shape.dim(0).dim_param(), "N");
  EXPECT_EQ(in_shape.dim(1).dim_value(), 3);
  EXPECT_EQ(in_shape.dim(3).dim_value(), 8);
  ASSERT_EQ(model.graph().output_size(), 1);
  const auto& output = model.graph().output(0);
  EXPECT_EQ(output.name(), "scores");
  EXPECT_EQ(output.type().tensor_type().elem_type(), onnx::TensorProto_DataType_FLOAT);
  EXPECT_EQ(output.type().tensor_type().shape().dim(1).dim_value(), 3);
  EXPECT_EQ(model.graph().node(model.graph().node_size() - 1).op_type(), "DequantizeLinear");

  std::map<std::string, std::string> metadata;
  for (const auto& e : model.metadata_props()) metadata[e.key()] = e.value();
  EXPECT_EQ(nlohmann::json::parse(metadata.at("labels")), nlohmann::json({"cat", "dog", "ému"}));
  EXPECT_EQ(metadata.at("normalization"), "pixels / 255, NCHW, RGB");
  EXPECT_EQ(metadata.at("impulse"), "pets");
  EXPECT_EQ(metadata.at("input_shape"), "[3,8,8]");
  EXPECT_EQ(metadata.at("quantization"), "minmax");
}

TEST(OnnxQdqExportTest, DenseOnTheInputIsFlattenedAndScoresGetASoftmax) {
  const onnx::ModelProto model = Built(FlatDense());
  EXPECT_THAT(OpTypes(model), ElementsAre("Flatten", "Gemm", "Softmax"));
  // The Flatten works on the int8 input, before its DequantizeLinear.
  EXPECT_EQ(model.graph().node(0).op_type(), "QuantizeLinear");
  EXPECT_EQ(model.graph().node(1).op_type(), "Flatten");
  EXPECT_EQ(model.graph().output(0).type().tensor_type().shape().dim(1).dim_value(), 2);
}

TEST(OnnxQdqExportTest, ExportWritesACheckedFile) {
  testing::TempDir dir;
  const std::string path = dir.path() + "/model_i8.onnx";
  const Status exported = ExportQdqOnnx(EveryOpKind(), kInfo, path);
  ASSERT_TRUE(exported.ok()) << exported.ToString();
  onnx::ModelProto read;
  std::ifstream in(path, std::ios::binary);
  ASSERT_TRUE(read.ParseFromIstream(&in));
  EXPECT_EQ(read.graph().output(0).name(), "scores");
}

TEST(OnnxQdqExportTest, RefusesWhatDoesNotFit) {
  QuantizedModel labels = EveryOpKind();
  labels.labels.pop_back();
  EXPECT_THAT(BuildQdqOnnx(labels, kInfo).status().message(), HasSubstr("2 labels for 3 outputs"));

  QuantizedModel weights = EveryOpKind();
  weights.ops[1].weights.pop_back();
  EXPECT_THAT(BuildQdqOnnx(weights, kInfo).status().message(),
              HasSubstr("ops[1] (dw): 35 weights, the shapes need 36"));

  QuantizedModel scales = EveryOpKind();
  scales.ops[0].weight_scales.pop_back();
  EXPECT_THAT(BuildQdqOnnx(scales, kInfo).status().message(),
              HasSubstr("ops[0] (conv): 3 weight scales, expected 4"));

  QuantizedModel order = EveryOpKind();
  order.ops[2].op.inputs = {5};
  EXPECT_THAT(BuildQdqOnnx(order, kInfo).status().message(),
              HasSubstr("ops[2] (pw): input 5 is not an earlier op"));

  EXPECT_THAT(BuildQdqOnnx(QuantizedModel{}, kInfo).status().message(), HasSubstr("no ops"));
}

}  // namespace
}  // namespace impulse::worker::exporters
