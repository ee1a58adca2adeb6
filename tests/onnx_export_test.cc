// The float32 ONNX exporter: every layer kind, the built-in architectures,
// the contract's input, output and metadata, and refusals. Numbers are
// checked against an independent runtime in tests/onnx_agreement/.
#include "worker/export/onnx_export.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <map>
#include <nlohmann/json.hpp>

#include "tests/support/model_fixtures.h"
#include "tests/support/temp_dir.h"
#include "worker/export/onnx_builder.h"

namespace impulse::worker::exporters {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;

model::LayerGraph Trained(v1::Model m, uint64_t seed = 7) {
  auto graph = model::LayerGraph::FromModel(std::move(m));
  EXPECT_TRUE(graph.ok()) << graph.status().ToString();
  testing::FillRandomWeights(*graph, seed);
  return std::move(graph).value();
}

std::map<std::string, std::string> Metadata(const onnx::ModelProto& model) {
  std::map<std::string, std::string> out;
  for (const auto& e : model.metadata_props()) out[e.key()] = e.value();
  return out;
}

std::vector<std::string> OpTypes(const onnx::ModelProto& model) {
  std::vector<std::string> ops;
  for (const auto& node : model.graph().node()) ops.push_back(node.op_type());
  return ops;
}

std::vector<int64_t> IntsAttribute(const onnx::NodeProto& node, const std::string& name) {
  for (const auto& a : node.attribute()) {
    if (a.name() == name) return {a.ints().begin(), a.ints().end()};
  }
  return {};
}

const OnnxExportInfo kInfo{.impulse_name = "pets", .normalization = "pixels / 255, NCHW, RGB"};

TEST(OnnxExportTest, EveryLayerKindExportsAndPassesTheChecker) {
  auto built = BuildFloatOnnx(Trained(testing::EveryLayerKindModel()), kInfo);
  ASSERT_TRUE(built.ok()) << built.status().ToString();
  const onnx::ModelProto& model = *built;
  const Status checked = CheckOnnxModel(model);
  ASSERT_TRUE(checked.ok()) << checked.ToString();
  EXPECT_EQ(model.opset_import(0).version(), 13);
  EXPECT_THAT(OpTypes(model), ElementsAre("Conv", "BatchNormalization", "Clip", "Conv", "Relu",
                                          "Conv", "Add", "MaxPool", "AveragePool",
                                          "GlobalAveragePool", "Flatten", "Gemm", "Softmax"));
  // Depthwise: group = channels; TensorFlow padding as [top, left, bottom, right].
  const onnx::NodeProto& dw = model.graph().node(3);
  EXPECT_THAT(IntsAttribute(dw, "pads"), ElementsAre(0, 0, 1, 1));
  EXPECT_THAT(IntsAttribute(dw, "strides"), ElementsAre(2, 2));
  bool grouped = false;
  for (const auto& a : dw.attribute()) grouped |= a.name() == "group" && a.i() == 4;
  EXPECT_TRUE(grouped);
  // The contract: input [N,3,8,8], output "scores" [N,3].
  const auto& input = model.graph().input(0);
  EXPECT_EQ(input.name(), "input");
  const auto& in_shape = input.type().tensor_type().shape();
  ASSERT_EQ(in_shape.dim_size(), 4);
  EXPECT_EQ(in_shape.dim(0).dim_param(), "N");
  EXPECT_EQ(in_shape.dim(1).dim_value(), 3);
  EXPECT_EQ(model.graph().output(0).name(), "scores");
  EXPECT_EQ(model.graph().output(0).type().tensor_type().shape().dim(1).dim_value(), 3);
  const auto metadata = Metadata(model);
  EXPECT_EQ(nlohmann::json::parse(metadata.at("labels")), nlohmann::json({"cat", "dog", "ému"}));
  EXPECT_EQ(metadata.at("normalization"), "pixels / 255, NCHW, RGB");
  EXPECT_EQ(metadata.at("impulse"), "pets");
  EXPECT_EQ(metadata.at("input_shape"), "[3,8,8]");
  // Every weight became an initializer of the same name.
  EXPECT_EQ(model.graph().initializer_size(), 2 + 4 + 1 + 1 + 2 + 2 /* Clip bounds */);
}

TEST(OnnxExportTest, AModelWithoutSoftmaxGetsOne) {
  auto built = BuildFloatOnnx(Trained(testing::FlatModel()), kInfo);
  ASSERT_TRUE(built.ok()) << built.status().ToString();
  EXPECT_TRUE(CheckOnnxModel(*built).ok());
  EXPECT_THAT(OpTypes(*built), ElementsAre("Flatten", "Gemm", "Softmax"));
  EXPECT_EQ(built->graph().node(2).output(0), "scores");
}

TEST(OnnxExportTest, BuiltInArchitecturesPassTheChecker) {
  v1::LearningBlock classification;
  classification.set_block(v1::LEARNING_KIND_CLASSIFICATION);
  std::vector<std::pair<std::string, Result<model::LayerGraph>>> graphs;
  graphs.emplace_back("classification-default",
                      model::BuildClassificationGraph(classification, 1, 28, 28, 10));
  graphs.emplace_back("mobilenet_v1 0.25 rgb 64",
                      model::BuildMobileNetV1(0.25f, 3, 64, 64, 4, {.dense = 16, .dropout = 0.1f}));
  graphs.emplace_back("mobilenet_v2 0.35 gray 96",
                      model::BuildMobileNetV2(0.35f, 1, 96, 96, 5, {}));
  for (auto& [name, graph] : graphs) {
    SCOPED_TRACE(name);
    ASSERT_TRUE(graph.ok()) << graph.status().ToString();
    v1::Model& m = graph->mutable_model();
    m.clear_labels();
    const uint32_t classes = graph->classes();  // the logits width while unlabeled
    for (uint32_t c = 0; c < classes; ++c) m.add_labels("class" + std::to_string(c));
    testing::FillRandomWeights(*graph, 3);
    testing::TempDir dir;
    const Status exported = ExportFloatOnnx(*graph, kInfo, dir.path() + "/model_f32.onnx");
    EXPECT_TRUE(exported.ok()) << exported.ToString();
  }
}

TEST(OnnxExportTest, RefusesAModelWithoutWeightsOrLabels) {
  auto untrained = model::LayerGraph::FromModel(testing::EveryLayerKindModel());
  ASSERT_TRUE(untrained.ok());
  auto no_weights = BuildFloatOnnx(*untrained, kInfo);
  EXPECT_EQ(no_weights.status().code(), StatusCode::kInvalidArgument);
  EXPECT_THAT(no_weights.status().message(), HasSubstr("export"));

  model::LayerGraph unlabeled = Trained(testing::EveryLayerKindModel());
  unlabeled.mutable_model().clear_labels();
  auto no_labels = BuildFloatOnnx(unlabeled, kInfo);
  EXPECT_EQ(no_labels.status().code(), StatusCode::kInvalidArgument);
  EXPECT_THAT(no_labels.status().message(), HasSubstr("labels"));
}

TEST(OnnxExportTest, NormalizationNoteNamesColourAndSize) {
  v1::Impulse impulse;
  impulse.mutable_input()->set_width(32);
  impulse.mutable_input()->set_height(24);
  impulse.mutable_input()->set_resize(v1::RESIZE_MODE_FIT_LONGEST);
  impulse.mutable_processing()->set_color(v1::COLOR_DEPTH_GRAYSCALE);
  EXPECT_EQ(NormalizationNote(impulse),
            "pixels / 255, NCHW, grayscale (BT.601 luma, 1 channel); images resized to 32x24 "
            "(fit-longest)");
  impulse.mutable_processing()->set_color(v1::COLOR_DEPTH_RGB);
  EXPECT_THAT(NormalizationNote(impulse), HasSubstr("RGB (3 channels)"));
}

}  // namespace
}  // namespace impulse::worker::exporters
