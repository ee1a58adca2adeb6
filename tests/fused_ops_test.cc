#include "impulse/model/fused_ops.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "tests/support/model_fixtures.h"

namespace impulse::model {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;

LayerGraph Graph(v1::Model model) {
  Result<LayerGraph> graph = LayerGraph::FromModel(std::move(model));
  EXPECT_TRUE(graph.ok()) << graph.status().ToString();
  return std::move(graph).value();
}

FusedOps Fuse(const LayerGraph& graph) {
  Result<FusedOps> ops = FusedOps::FromGraph(graph);
  EXPECT_TRUE(ops.ok()) << ops.status().ToString();
  return std::move(ops).value();
}

std::vector<OpKind> Kinds(const FusedOps& ops) {
  std::vector<OpKind> kinds;
  for (const FusedOp& op : ops.ops()) kinds.push_back(op.kind);
  return kinds;
}

// Invariants of every plan: inputs come before, shapes and MACs are those of
// the layers, every computing layer maps to the op that holds it.
void ExpectConsistent(const LayerGraph& graph, const FusedOps& fused) {
  uint64_t macs = 0;
  for (size_t i = 0; i < fused.ops().size(); ++i) {
    const FusedOp& op = fused.ops()[i];
    for (int input : op.inputs) {
      EXPECT_GE(input, -1);
      EXPECT_LT(input, static_cast<int>(i));
    }
    EXPECT_EQ(op.inputs.size(), op.kind == OpKind::kAdd ? 2u : 1u);
    const auto& shape = graph.layer(op.output_layer).output_shape();
    EXPECT_EQ(op.output_shape, std::vector<uint32_t>(shape.begin(), shape.end()));
    EXPECT_EQ(fused.OpOfLayer(op.layer), static_cast<int>(i));
    EXPECT_EQ(fused.OpOfLayer(op.output_layer), static_cast<int>(i));
    if (op.batch_norm >= 0) EXPECT_EQ(fused.OpOfLayer(op.batch_norm), static_cast<int>(i));
    macs += op.macs;
  }
  EXPECT_EQ(macs, graph.TotalCost().macs);
  EXPECT_EQ(fused.OpOfLayer(graph.size() - 1), static_cast<int>(fused.ops().size()) - 1);
  EXPECT_EQ(fused.OpOfLayer(graph.logits_layer()), fused.logits_op());
  EXPECT_EQ(fused.input_shape(), graph.input_shape());
}

TEST(FusedOpsTest, EveryLayerKindFusesConvBatchNormAndActivation) {
  const LayerGraph graph = Graph(testing::EveryLayerKindModel());
  const FusedOps fused = Fuse(graph);
  ExpectConsistent(graph, fused);
  EXPECT_THAT(Kinds(fused), ElementsAre(OpKind::kConv2D, OpKind::kDepthwiseConv2D, OpKind::kConv2D,
                                        OpKind::kAdd, OpKind::kMaxPool, OpKind::kAvgPool,
                                        OpKind::kGlobalAvgPool, OpKind::kDense, OpKind::kSoftmax));
  const auto& ops = fused.ops();
  // conv1 + conv1_bn + conv1_relu (ReLU6).
  EXPECT_EQ(ops[0].batch_norm, graph.FindLayer("conv1_bn"));
  EXPECT_EQ(ops[0].activation, Activation::kRelu6);
  EXPECT_EQ(ops[0].output_layer, graph.FindLayer("conv1_relu"));
  EXPECT_THAT(ops[0].inputs, ElementsAre(-1));
  // dw + dw_relu; dw_relu is read twice (pw and add), so pw takes no ReLU.
  EXPECT_EQ(ops[1].activation, Activation::kRelu);
  EXPECT_EQ(ops[1].batch_norm, -1);
  EXPECT_EQ(ops[2].activation, Activation::kNone);
  EXPECT_THAT(ops[3].inputs, ElementsAre(1, 2));
  EXPECT_THAT(ops[3].output_shape, ElementsAre(4, 4, 4));
  // Dropout aliases the global pool; the dense layer reads it.
  EXPECT_EQ(fused.OpOfLayer(graph.FindLayer("dropout")), 6);
  EXPECT_THAT(ops[7].inputs, ElementsAre(6));
  EXPECT_EQ(fused.logits_op(), 7);
  EXPECT_EQ(fused.OpOfLayer(0), -1);
}

TEST(FusedOpsTest, FlattenOfTheInputAliasesIt) {
  const LayerGraph graph = Graph(testing::FlatModel());
  const FusedOps fused = Fuse(graph);
  ExpectConsistent(graph, fused);
  EXPECT_THAT(Kinds(fused), ElementsAre(OpKind::kDense));
  EXPECT_THAT(fused.ops()[0].inputs, ElementsAre(-1));
  EXPECT_EQ(fused.logits_op(), 0);
}

TEST(FusedOpsTest, DefaultClassificationNetwork) {
  Result<LayerGraph> graph = BuildClassificationGraph(v1::LearningBlock(), 1, 28, 28, 10);
  ASSERT_TRUE(graph.ok()) << graph.status().ToString();
  const FusedOps fused = Fuse(*graph);
  ExpectConsistent(*graph, fused);
  EXPECT_THAT(Kinds(fused),
              ElementsAre(OpKind::kConv2D, OpKind::kMaxPool, OpKind::kConv2D, OpKind::kMaxPool,
                          OpKind::kConv2D, OpKind::kMaxPool, OpKind::kDense, OpKind::kSoftmax));
  for (int i : {0, 2, 4}) {
    EXPECT_GE(fused.ops()[i].batch_norm, 0);
    EXPECT_EQ(fused.ops()[i].activation, Activation::kRelu);
  }
}

TEST(FusedOpsTest, MobileNetV1IsOneOpPerConvolution) {
  Result<LayerGraph> graph = BuildMobileNetV1(0.25f, 3, 32, 32, 4, {.dense = 16, .dropout = 0.1f});
  ASSERT_TRUE(graph.ok()) << graph.status().ToString();
  const FusedOps fused = Fuse(*graph);
  ExpectConsistent(*graph, fused);
  // 27 convolutions (each with BN and ReLU6), pool, dense + ReLU, dense, softmax.
  ASSERT_EQ(fused.ops().size(), 27u + 4u);
  for (int i = 0; i < 27; ++i) {
    EXPECT_EQ(fused.ops()[i].kind, i % 2 == 1 ? OpKind::kDepthwiseConv2D : OpKind::kConv2D);
    EXPECT_EQ(fused.ops()[i].activation, Activation::kRelu6);
  }
  EXPECT_EQ(fused.ops()[28].kind, OpKind::kDense);
  EXPECT_EQ(fused.ops()[28].activation, Activation::kRelu);
}

TEST(FusedOpsTest, MobileNetV2ResidualsAreAddOpsAndProjectionsAreLinear) {
  Result<LayerGraph> graph = BuildMobileNetV2(0.35f, 3, 32, 32, 5, {});
  ASSERT_TRUE(graph.ok()) << graph.status().ToString();
  const FusedOps fused = Fuse(*graph);
  ExpectConsistent(*graph, fused);
  int adds = 0, convs = 0, batch_norms = 0;
  for (int i = 0; i < graph->size(); ++i) {
    const v1::LayerKind kind = graph->layer(i).kind();
    adds += kind == v1::LAYER_KIND_ADD;
    convs += kind == v1::LAYER_KIND_CONV2D || kind == v1::LAYER_KIND_DEPTHWISE_CONV2D;
    batch_norms += kind == v1::LAYER_KIND_BATCH_NORM;
  }
  EXPECT_EQ(adds, 10);
  EXPECT_EQ(batch_norms, convs);  // every BN folded
  EXPECT_EQ(fused.ops().size(), static_cast<size_t>(convs + adds + 3));
  for (const FusedOp& op : fused.ops()) {
    if (op.kind == OpKind::kAdd) EXPECT_EQ(op.activation, Activation::kNone);
    const std::string& name = graph->layer(op.layer).name();
    if (name.ends_with("project")) EXPECT_EQ(op.activation, Activation::kNone) << name;
    if (name.ends_with("expand")) EXPECT_EQ(op.activation, Activation::kRelu6) << name;
  }
}

TEST(FusedOpsTest, StandaloneReluIsAClamp) {
  v1::Model m = testing::FlatModel();
  testing::AddLayer(m, "relu", v1::LAYER_KIND_RELU6, {2});
  const LayerGraph graph = Graph(m);
  const FusedOps fused = Fuse(graph);
  // The dense layer absorbs it.
  EXPECT_THAT(Kinds(fused), ElementsAre(OpKind::kDense));
  testing::AddLayer(m, "relu_again", v1::LAYER_KIND_RELU, {3});
  const LayerGraph graph2 = Graph(m);
  const FusedOps fused2 = Fuse(graph2);
  ASSERT_THAT(Kinds(fused2), ElementsAre(OpKind::kDense, OpKind::kClamp));
  EXPECT_EQ(fused2.ops()[1].activation, Activation::kRelu);
}

Status FuseError(const v1::Model& model) {
  const LayerGraph graph = Graph(model);
  return FusedOps::FromGraph(graph).status();
}

TEST(FusedOpsTest, RefusesABatchNormItCannotFold) {
  // conv1's output read by the BN and by a second layer: nothing to fold into.
  v1::Model m = testing::EveryLayerKindModel();
  m.mutable_layers(4)->set_inputs(0, 1);  // dw reads conv1 directly
  const Status status = FuseError(m);
  EXPECT_FALSE(status.ok());
  EXPECT_THAT(status.message(), HasSubstr("layers[2] (conv1_bn)"));
  EXPECT_THAT(status.message(), HasSubstr("batch_norm"));

  // A BN after a pool.
  v1::Model pooled = testing::EveryLayerKindModel();
  pooled.mutable_layers(9)->set_kind(v1::LAYER_KIND_BATCH_NORM);
  pooled.mutable_layers(9)->set_name("pool_bn");
  const Status pooled_status = FuseError(pooled);
  EXPECT_THAT(pooled_status.message(), HasSubstr("layers[9] (pool_bn)"));
}

TEST(FusedOpsTest, RefusesAMidGraphSoftmax) {
  v1::Model m = testing::FlatModel();
  testing::AddLayer(m, "probs", v1::LAYER_KIND_SOFTMAX, {2});
  testing::AddLayer(m, "after", v1::LAYER_KIND_DENSE, {3})->set_filters(2);
  const Status status = FuseError(m);
  EXPECT_FALSE(status.ok());
  EXPECT_THAT(status.message(), HasSubstr("layers[3] (probs)"));
  EXPECT_THAT(status.message(), HasSubstr("softmax"));
}

TEST(FusedOpsTest, RefusesAGroupedConvolution) {
  v1::Model m = testing::EveryLayerKindModel();
  m.mutable_layers(6)->set_groups(2);  // pw: 4 -> 4 channels in 2 groups
  const Status status = FuseError(m);
  EXPECT_THAT(status.message(), HasSubstr("layers[6] (pw).groups"));
}

TEST(FusedOpsTest, AConvWithGroupsEqualToChannelsIsDepthwise) {
  v1::Model m = testing::EveryLayerKindModel();
  m.mutable_layers(4)->set_kind(v1::LAYER_KIND_CONV2D);  // dw, groups 4 = filters = channels
  const LayerGraph graph = Graph(m);
  EXPECT_EQ(Fuse(graph).ops()[1].kind, OpKind::kDepthwiseConv2D);
}

TEST(FusedOpsTest, RefusesAPoolWindowThatCanLieInThePadding) {
  v1::Model m = testing::EveryLayerKindModel();
  m.mutable_layers(8)->set_pad_top(3);  // max_pool 3x3
  m.mutable_layers(8)->set_pad_bottom(0);
  const Status status = FuseError(m);
  EXPECT_THAT(status.message(), HasSubstr("layers[8] (max_pool)"));
}

}  // namespace
}  // namespace impulse::model
