#include "impulse/model/layer_graph.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <cstring>

namespace impulse::model {
namespace {

using ::testing::HasSubstr;

v1::LearningBlock TinyBlock() {
  v1::LearningBlock learning;
  learning.set_block(v1::LEARNING_KIND_CLASSIFICATION);
  auto* conv = learning.add_conv();
  conv->set_filters(4);
  conv->set_kernel_size(3);
  conv->set_pool(2);
  auto* dense = learning.add_dense_layers();
  dense->set_neurons(5);
  return learning;
}

TEST(LayerGraphTest, TinyNetShapesMacsAndParamsMatchHandComputedValues) {
  auto graph = BuildClassificationGraph(TinyBlock(), 1, 8, 8, 3);
  ASSERT_TRUE(graph.ok()) << graph.status().ToString();
  // input, conv1, conv1_bn, conv1_relu, conv1_pool, flatten, dense1,
  // dense1_relu, predictions, softmax
  ASSERT_EQ(graph->size(), 10) << graph->Summary();
  const int conv = graph->FindLayer("conv1");
  ASSERT_GE(conv, 0);
  EXPECT_THAT(graph->layer(conv).output_shape(), ::testing::ElementsAre(4, 8, 8));
  // conv 3x3, 1 -> 4 channels, 8x8 output, no bias: 8*8*4*9 MACs, 36 params.
  EXPECT_EQ(graph->Cost(conv).macs, 8u * 8 * 4 * 9);
  EXPECT_EQ(graph->Cost(conv).params, 36u);
  EXPECT_EQ(graph->Cost(graph->FindLayer("conv1_bn")).params, 8u);
  EXPECT_THAT(graph->layer(graph->FindLayer("flatten")).output_shape(), ::testing::ElementsAre(64));
  // dense 64 -> 5 (+5 bias), classifier 5 -> 3 (+3 bias).
  EXPECT_EQ(graph->Cost(graph->FindLayer("dense1")).macs, 320u);
  EXPECT_EQ(graph->Cost(graph->FindLayer("dense1")).params, 325u);
  EXPECT_EQ(graph->Cost(graph->FindLayer("predictions")).params, 18u);
  const LayerCost total = graph->TotalCost();
  EXPECT_EQ(total.macs, 2304u + 320u + 15u);
  EXPECT_EQ(total.params, 36u + 8u + 325u + 18u);
  EXPECT_EQ(graph->logits_layer(), graph->FindLayer("predictions"));
  EXPECT_EQ(graph->classes(), 3u);
  // Names and shapes of weight tensors follow PyTorch's state dict.
  std::vector<std::string> names;
  for (const auto& spec : graph->AllWeightSpecs()) names.push_back(spec.name);
  EXPECT_THAT(names, ::testing::ElementsAre("conv1.weight", "conv1_bn.weight", "conv1_bn.bias",
                                            "conv1_bn.running_mean", "conv1_bn.running_var",
                                            "dense1.weight", "dense1.bias", "predictions.weight",
                                            "predictions.bias"));
  EXPECT_THAT(graph->SummaryJson(), HasSubstr("\"macs\":2639"));
}

TEST(LayerGraphTest, MobileNetV1At224MatchesThePublishedCost) {
  auto graph = BuildMobileNetV1(1.0f, 3, 224, 224, 1000, {});
  ASSERT_TRUE(graph.ok()) << graph.status().ToString();
  const LayerCost total = graph->TotalCost();
  // Howard et al.: 569 M mult-adds, 4.2 M parameters. Keras: 4,231,976
  // trainable parameters.
  EXPECT_NEAR(static_cast<double>(total.macs), 569e6, 3e6);
  EXPECT_EQ(total.params, 4231976u);
  EXPECT_THAT(graph->layer(graph->FindLayer("conv_pw_13_relu")).output_shape(),
              ::testing::ElementsAre(1024, 7, 7));
  // TensorFlow "same" padding: stride 2 pads only bottom/right on even inputs.
  const v1::Layer& conv1 = graph->layer(graph->FindLayer("conv1"));
  EXPECT_EQ(conv1.pad_top(), 0u);
  EXPECT_EQ(conv1.pad_bottom(), 1u);
}

TEST(LayerGraphTest, MobileNetV2At224MatchesThePublishedCost) {
  auto graph = BuildMobileNetV2(1.0f, 3, 224, 224, 1000, {});
  ASSERT_TRUE(graph.ok()) << graph.status().ToString();
  const LayerCost total = graph->TotalCost();
  // Sandler et al.: 300 M multiply-adds, 3.4 M parameters. Keras: 3,504,872
  // trainable parameters.
  EXPECT_NEAR(static_cast<double>(total.macs), 300e6, 6e6);
  EXPECT_EQ(total.params, 3504872u);
  int adds = 0;
  for (int i = 0; i < graph->size(); ++i) adds += graph->layer(i).kind() == v1::LAYER_KIND_ADD;
  EXPECT_EQ(adds, 10);
}

TEST(LayerGraphTest, MobileNetV2NarrowChannelsAreMultiplesOfEight) {
  auto graph = BuildMobileNetV2(0.35f, 3, 96, 96, 4, {16, 0.1f});
  ASSERT_TRUE(graph.ok()) << graph.status().ToString();
  for (int i = 1; i < graph->size(); ++i) {
    const v1::Layer& layer = graph->layer(i);
    if (layer.kind() == v1::LAYER_KIND_CONV2D) {
      EXPECT_EQ(layer.filters() % 8, 0u) << layer.name();
    }
  }
  EXPECT_EQ(graph->layer(graph->FindLayer("Conv1")).filters(), 16u);
  EXPECT_EQ(graph->layer(graph->FindLayer("head_dense")).filters(), 16u);
  EXPECT_EQ(graph->layer(graph->FindLayer("head_dense")).role(), v1::LAYER_ROLE_HEAD);
  EXPECT_EQ(graph->layer(graph->FindLayer("Conv_1")).role(), v1::LAYER_ROLE_BACKBONE);
}

TEST(LayerGraphTest, RefusesUnknownAlphaAndSmallInputsNamingTheField) {
  auto v1_graph = BuildMobileNetV1(0.3f, 3, 96, 96, 2, {});
  ASSERT_FALSE(v1_graph.ok());
  EXPECT_EQ(v1_graph.status().code(), StatusCode::kInvalidArgument);
  EXPECT_THAT(v1_graph.status().message(), HasSubstr("learning.alpha"));
  auto v2_graph = BuildMobileNetV2(0.25f, 3, 96, 96, 2, {});
  ASSERT_FALSE(v2_graph.ok());
  EXPECT_THAT(v2_graph.status().message(), HasSubstr("learning.alpha: 0.25"));
  auto small = BuildMobileNetV2(0.35f, 3, 31, 96, 2, {});
  ASSERT_FALSE(small.ok());
  EXPECT_THAT(small.status().message(), HasSubstr("input.height"));

  v1::Impulse impulse;
  impulse.set_name("x");
  impulse.mutable_input()->set_width(96);
  impulse.mutable_input()->set_height(96);
  impulse.mutable_processing()->set_block(v1::PROCESSING_KIND_IMAGE);
  impulse.mutable_learning()->set_block(v1::LEARNING_KIND_TRANSFER);
  impulse.mutable_learning()->set_backbone(v1::BACKBONE_MOBILENET_V1);
  impulse.mutable_learning()->set_alpha(0.05f);
  auto built = BuildGraph(impulse, 3);
  ASSERT_FALSE(built.ok());
  EXPECT_THAT(built.status().message(), HasSubstr("learning.alpha"));
}

TEST(LayerGraphTest, RefusesAPoolLargerThanTheActivations) {
  v1::LearningBlock learning = TinyBlock();
  learning.mutable_conv(0)->set_pool(16);
  auto graph = BuildClassificationGraph(learning, 1, 8, 8, 3);
  ASSERT_FALSE(graph.ok());
  EXPECT_THAT(graph.status().message(), HasSubstr("learning.conv[0].pool"));
}

TEST(LayerGraphTest, DefaultNetworksForImageAndRawInputs) {
  v1::Impulse impulse;
  impulse.set_name("x");
  impulse.mutable_input()->set_width(32);
  impulse.mutable_input()->set_height(32);
  impulse.mutable_processing()->set_block(v1::PROCESSING_KIND_IMAGE);
  impulse.mutable_processing()->set_color(v1::COLOR_DEPTH_GRAYSCALE);
  impulse.mutable_learning()->set_block(v1::LEARNING_KIND_CLASSIFICATION);
  auto image = BuildGraph(impulse, 10);
  ASSERT_TRUE(image.ok()) << image.status().ToString();
  EXPECT_EQ(image->model().architecture(), "classification-default");
  EXPECT_THAT(image->input_shape(), ::testing::ElementsAre(1, 32, 32));
  impulse.mutable_processing()->set_block(v1::PROCESSING_KIND_RAW);
  auto raw = BuildGraph(impulse, 10);
  ASSERT_TRUE(raw.ok()) << raw.status().ToString();
  EXPECT_EQ(raw->layer(1).kind(), v1::LAYER_KIND_FLATTEN);
}

v1::Tensor Filled(const WeightSpec& spec, float value) {
  v1::Tensor t;
  t.set_name(spec.name);
  size_t n = 1;
  for (uint32_t d : spec.shape) {
    t.add_shape(d);
    n *= d;
  }
  std::vector<float> values(n, value);
  t.set_data(values.data(), n * sizeof(float));
  return t;
}

TEST(LayerGraphTest, WeightsRoundTripThroughTheProtoAndLoadByName) {
  auto graph = BuildMobileNetV2(0.35f, 3, 32, 32, 0, {});  // backbone only
  ASSERT_TRUE(graph.ok()) << graph.status().ToString();
  for (const auto& spec : graph->AllWeightSpecs()) {
    *graph->mutable_model().add_weights() = Filled(spec, 0.5f);
  }
  ASSERT_TRUE(graph->CheckWeights().ok());
  const std::string bytes = graph->model().SerializeAsString();
  v1::Model file;
  ASSERT_TRUE(file.ParseFromString(bytes));

  // A classifier on the same backbone takes every backbone tensor.
  auto target = BuildMobileNetV2(0.35f, 3, 32, 32, 5, {8, 0.1f});
  ASSERT_TRUE(target.ok());
  auto copied = target->LoadWeights(file, /*backbone_only=*/true);
  ASSERT_TRUE(copied.ok()) << copied.status().ToString();
  EXPECT_EQ(*copied, static_cast<int>(graph->AllWeightSpecs().size()));
  const v1::Tensor* w = target->FindWeight("Conv1.weight");
  ASSERT_NE(w, nullptr);
  float first = 0;
  std::memcpy(&first, w->data().data(), sizeof(float));
  EXPECT_EQ(first, 0.5f);
  EXPECT_EQ(target->FindWeight("predictions.weight"), nullptr);
}

TEST(LayerGraphTest, WeightsOfAnotherWidthAreRefusedNamingTensorAndShapes) {
  auto narrow = BuildMobileNetV2(0.35f, 3, 32, 32, 0, {});
  ASSERT_TRUE(narrow.ok());
  for (const auto& spec : narrow->AllWeightSpecs()) {
    *narrow->mutable_model().add_weights() = Filled(spec, 0.0f);
  }
  auto wide = BuildMobileNetV2(0.5f, 3, 32, 32, 3, {});
  ASSERT_TRUE(wide.ok());
  auto loaded = wide->LoadWeights(narrow->model(), true);
  ASSERT_FALSE(loaded.ok());
  EXPECT_EQ(loaded.status().code(), StatusCode::kInvalidArgument);
  EXPECT_THAT(loaded.status().message(),
              HasSubstr("tensor block_1_project.weight has shape [8,48,1,1] in the file, "
                        "the model needs [16,48,1,1]"));
}

}  // namespace
}  // namespace impulse::model
