// The Interpreter's plumbing: with the arena plan's shared memory it computes
// what the same kernels compute with one private buffer per tensor, and the
// observer sees every op's output.
#include "worker/int8/interpreter.h"

#include <gtest/gtest.h>

#include <random>

#include "tests/support/model_fixtures.h"
#include "tests/support/random_quantized_model.h"

namespace impulse::worker::int8 {
namespace {

QuantizedModel RandomModel(Result<model::LayerGraph> graph, uint64_t seed) {
  EXPECT_TRUE(graph.ok()) << graph.status().ToString();
  Result<QuantizedModel> model = testing::RandomQuantizedModel(*graph, seed);
  EXPECT_TRUE(model.ok()) << model.status().ToString();
  EXPECT_TRUE(CheckQuantizedModel(*model).ok()) << CheckQuantizedModel(*model).ToString();
  return std::move(model).value();
}

// Every tensor in its own buffer: no sharing to get wrong.
std::vector<std::vector<int8_t>> RunUnshared(const QuantizedModel& model,
                                             const std::vector<int8_t>& input) {
  const std::vector<KernelOp> ops = BuildKernelOps(model);
  std::vector<std::vector<int8_t>> tensors;
  auto in = [&](int op) { return op < 0 ? input.data() : tensors[op].data(); };
  for (size_t i = 0; i < ops.size(); ++i) {
    tensors.emplace_back(model.ops[i].op.output_elements);
    const KernelOp& k = ops[i];
    RunKernelOp(k, in(k.inputs[0]), k.inputs.size() > 1 ? in(k.inputs[1]) : nullptr,
                tensors.back().data());
  }
  return tensors;
}

void ExpectSameAsUnshared(const QuantizedModel& model, int inputs) {
  const size_t input_size = ShapeElements(model.input_shape);
  std::mt19937 rng(9);
  Interpreter interpreter(model);
  for (int n = 0; n < inputs; ++n) {
    std::vector<int8_t> input(input_size);
    for (int8_t& x : input) x = static_cast<int8_t>(rng());
    const std::vector<std::vector<int8_t>> want = RunUnshared(model, input);
    std::vector<std::vector<int8_t>> seen;
    std::vector<int8_t> output(model.ops.back().op.output_elements);
    interpreter.Invoke(input, output, [&](int op, std::span<const int8_t> values) {
      EXPECT_EQ(op, static_cast<int>(seen.size()));
      seen.emplace_back(values.begin(), values.end());
    });
    ASSERT_EQ(seen.size(), want.size());
    for (size_t i = 0; i < want.size(); ++i) {
      ASSERT_EQ(seen[i], want[i]) << "op " << i << " (" << model.ops[i].name << ")";
    }
    EXPECT_EQ(output, want.back());
  }
}

TEST(InterpreterTest, ArenaSharingChangesNothing) {
  ExpectSameAsUnshared(RandomModel(model::LayerGraph::FromModel(testing::EveryLayerKindModel()), 1),
                       20);
  ExpectSameAsUnshared(RandomModel(model::BuildMobileNetV2(0.35f, 3, 32, 32, 4, {}), 2), 5);
  ExpectSameAsUnshared(
      RandomModel(model::BuildClassificationGraph(v1::LearningBlock(), 1, 28, 28, 10), 3), 5);
}

TEST(InterpreterTest, ArenaIsReused) {
  const QuantizedModel model = RandomModel(model::BuildMobileNetV2(0.35f, 3, 32, 32, 4, {}), 2);
  uint64_t sum = 0;
  for (const model::ArenaBuffer& b : model.buffers) sum += b.bytes;
  EXPECT_LT(model.arena.arena_bytes, sum / 2);
}

TEST(InterpreterTest, CheckQuantizedModelNamesTheOp) {
  QuantizedModel model =
      RandomModel(model::LayerGraph::FromModel(testing::EveryLayerKindModel()), 1);
  QuantizedModel bad = model;
  bad.ops[0].output_multipliers.pop_back();
  EXPECT_NE(CheckQuantizedModel(bad).message().find("ops[0] (conv1)"), std::string::npos);
  bad = model;
  bad.ops[4].output.zero_point += 1;  // a max pool must keep its input's parameters
  EXPECT_NE(CheckQuantizedModel(bad).message().find("ops[4] (max_pool)"), std::string::npos);
  bad = model;
  bad.arena.offsets[1] = bad.arena.offsets[2];  // live at the same time
  EXPECT_FALSE(CheckQuantizedModel(bad).ok());
  bad = model;
  bad.ops.back().exp_table.resize(10);
  EXPECT_FALSE(CheckQuantizedModel(bad).ok());
}

}  // namespace
}  // namespace impulse::worker::int8
