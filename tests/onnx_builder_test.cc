// OnnxGraphBuilder: a tiny hand-made classifier passes the ONNX checker and
// strict shape inference; broken graphs do not.
#include "worker/export/onnx_builder.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <fstream>

#include "tests/support/temp_dir.h"

namespace impulse::worker::exporters {
namespace {

using ::testing::HasSubstr;
constexpr int32_t kFloat = onnx::TensorProto_DataType_FLOAT;

// input [N,1,4,4] -> Conv 2x3x3 pad 1 -> Clip(0,6) -> GlobalAveragePool ->
// Flatten -> Gemm 3 -> Softmax -> scores [N,3]
onnx::ModelProto TinyModel() {
  OnnxGraphBuilder b("tiny");
  b.AddInput("input", kFloat, {kDynamicDim, 1, 4, 4});
  b.AddOutput("scores", kFloat, {kDynamicDim, 3});
  const std::vector<float> conv_w(2 * 1 * 3 * 3, 0.1f), conv_b = {0.0f, 0.5f};
  const std::vector<float> dense_w(3 * 2, 0.2f), dense_b = {0.1f, 0.2f, 0.3f};
  const float zero = 0, six = 6;
  const std::string w = b.AddFloatInitializer("conv.weight", {2, 1, 3, 3}, conv_w);
  const std::string bias = b.AddFloatInitializer("conv.bias", {2}, conv_b);
  auto& conv = b.AddNode("Conv", "conv", {"input", w, bias}, {b.UniqueName("conv")});
  OnnxGraphBuilder::SetAttribute(conv, "kernel_shape", std::vector<int64_t>{3, 3});
  OnnxGraphBuilder::SetAttribute(conv, "pads", std::vector<int64_t>{1, 1, 1, 1});
  OnnxGraphBuilder::SetAttribute(conv, "group", int64_t{1});
  const std::string lo = b.AddFloatInitializer("lo", {}, std::span<const float>(&zero, 1));
  const std::string hi = b.AddFloatInitializer("hi", {}, std::span<const float>(&six, 1));
  b.AddNode("Clip", "relu6", {conv.output(0), lo, hi}, {"relu6"});
  b.AddNode("GlobalAveragePool", "gap", {"relu6"}, {"gap"});
  auto& flatten = b.AddNode("Flatten", "flatten", {"gap"}, {"flat"});
  OnnxGraphBuilder::SetAttribute(flatten, "axis", int64_t{1});
  auto& gemm = b.AddNode("Gemm", "dense",
                         {"flat", b.AddFloatInitializer("dense.weight", {3, 2}, dense_w),
                          b.AddFloatInitializer("dense.bias", {3}, dense_b)},
                         {"logits"});
  OnnxGraphBuilder::SetAttribute(gemm, "transB", int64_t{1});
  auto& softmax = b.AddNode("Softmax", "softmax", {"logits"}, {"scores"});
  OnnxGraphBuilder::SetAttribute(softmax, "axis", int64_t{-1});
  return b.Finish({{"labels", R"(["a","b","c"])"}}, "tiny test model");
}

TEST(OnnxBuilderTest, TinyModelPassesTheChecker) {
  const onnx::ModelProto model = TinyModel();
  EXPECT_EQ(model.ir_version(), onnx::IR_VERSION);
  ASSERT_EQ(model.opset_import_size(), 1);
  EXPECT_EQ(model.opset_import(0).version(), kOnnxOpset);
  ASSERT_EQ(model.metadata_props_size(), 1);
  EXPECT_EQ(model.metadata_props(0).key(), "labels");
  EXPECT_EQ(model.graph().input(0).type().tensor_type().shape().dim(0).dim_param(), "N");
  const Status checked = CheckOnnxModel(model);
  EXPECT_TRUE(checked.ok()) << checked.ToString();
}

TEST(OnnxBuilderTest, NamesAreMadeUnique) {
  OnnxGraphBuilder b("names");
  EXPECT_EQ(b.UniqueName("x"), "x");
  EXPECT_EQ(b.UniqueName("x"), "x_1");
  EXPECT_EQ(b.UniqueName("x"), "x_2");
  const float one = 1;
  EXPECT_EQ(b.AddFloatInitializer("x", {}, std::span<const float>(&one, 1)), "x_3");
  EXPECT_EQ(b.AddNode("Relu", "n", {"a"}, {"b"}).name(), "n");
  EXPECT_EQ(b.AddNode("Relu", "n", {"b"}, {"c"}).name(), "n_1");
}

TEST(OnnxBuilderTest, CheckerRefusesAnUndefinedInput) {
  onnx::ModelProto model = TinyModel();
  model.mutable_graph()->mutable_node(1)->set_input(0, "nowhere");
  const Status checked = CheckOnnxModel(model);
  EXPECT_EQ(checked.code(), StatusCode::kInvalidArgument);
  EXPECT_THAT(checked.message(), HasSubstr("nowhere"));
}

TEST(OnnxBuilderTest, ShapeInferenceRefusesAWrongOutputShape) {
  onnx::ModelProto model = TinyModel();
  model.mutable_graph()
      ->mutable_output(0)
      ->mutable_type()
      ->mutable_tensor_type()
      ->mutable_shape()
      ->mutable_dim(1)
      ->set_dim_value(4);
  EXPECT_EQ(CheckOnnxModel(model).code(), StatusCode::kInvalidArgument);
}

TEST(OnnxBuilderTest, WritesAFileThatParsesBack) {
  testing::TempDir dir;
  const std::string path = dir.path() + "/tiny.onnx";
  ASSERT_TRUE(WriteOnnxFile(TinyModel(), path).ok());
  std::ifstream in(path, std::ios::binary);
  onnx::ModelProto back;
  ASSERT_TRUE(back.ParseFromIstream(&in));
  EXPECT_EQ(back.graph().node_size(), 6);
  EXPECT_TRUE(CheckOnnxModel(back).ok());
  EXPECT_EQ(WriteOnnxFile(TinyModel(), dir.path() + "/no/such/dir.onnx").code(),
            StatusCode::kInternal);
}

}  // namespace
}  // namespace impulse::worker::exporters
