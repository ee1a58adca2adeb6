// The exported C library (model_i8/) against the worker's Interpreter: for
// several random int8 models, model.c built by the host gcc
// (-std=c99 -Wall -Wextra -pedantic -Werror) gives bit for bit the
// interpreter's outputs on a few hundred random inputs.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <fstream>
#include <random>
#include <regex>
#include <set>
#include <sstream>

#include "tests/support/command.h"
#include "tests/support/model_fixtures.h"
#include "tests/support/random_quantized_model.h"
#include "tests/support/temp_dir.h"
#include "worker/export/c_emitter.h"
#include "worker/int8/interpreter.h"

namespace impulse {
namespace {

using ::testing::HasSubstr;
using worker::int8::QuantizedModel;

constexpr int kInputs = 300;

// Reads inputs from argv[1], writes outputs to argv[2], prints the labels.
constexpr const char* kMain = R"(#include <stdio.h>
#include "model.h"

int main(int argc, char **argv) {
  static int8_t input[IMPULSE_MODEL_INPUT_SIZE];
  static int8_t output[IMPULSE_MODEL_OUTPUT_SIZE];
  FILE *in, *out;
  int i;
  if (argc != 3) return 2;
  in = fopen(argv[1], "rb");
  out = fopen(argv[2], "wb");
  if (!in || !out) return 2;
  while (fread(input, 1, sizeof input, in) == sizeof input) {
    if (impulse_model_invoke(input, output) != 0) return 3;
    fwrite(output, 1, sizeof output, out);
  }
  for (i = 0; i < IMPULSE_MODEL_LABEL_COUNT; ++i) printf("%s\n", impulse_model_labels[i]);
  fclose(in);
  return fclose(out) != 0;
}
)";

std::string ReadFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream text;
  text << in.rdbuf();
  return text.str();
}

void WriteFile(const std::string& path, const std::string& text) {
  std::ofstream(path, std::ios::binary) << text;
}

// The C source without its comments: what the compiler sees.
std::string Code(const std::string& source) {
  return std::regex_replace(source, std::regex(R"(/\*[\s\S]*?\*/|//[^\n]*)"), " ");
}

QuantizedModel RandomModel(v1::Model model, uint64_t seed) {
  Result<model::LayerGraph> graph = model::LayerGraph::FromModel(std::move(model));
  EXPECT_TRUE(graph.ok()) << graph.status().ToString();
  Result<QuantizedModel> quantized = testing::RandomQuantizedModel(*graph, seed);
  EXPECT_TRUE(quantized.ok()) << quantized.status().ToString();
  EXPECT_TRUE(worker::int8::CheckQuantizedModel(*quantized).ok())
      << worker::int8::CheckQuantizedModel(*quantized).ToString();
  return std::move(quantized).value();
}

v1::Model WithLabels(Result<model::LayerGraph> graph) {
  EXPECT_TRUE(graph.ok()) << graph.status().ToString();
  v1::Model model = graph->model();
  model.clear_labels();
  for (uint32_t i = 0; i < graph->classes(); ++i) model.add_labels("class_" + std::to_string(i));
  return model;
}

void ExpectLibraryMatchesInterpreter(const QuantizedModel& model, uint64_t seed) {
  testing::TempDir dir;
  const std::string lib = dir.path() + "/model_i8";
  ASSERT_TRUE(worker::exporters::WriteCLibrary(model, lib).ok());
  const std::string source = ReadFile(lib + "/model.c");
  const std::string header = ReadFile(lib + "/model.h");
  // No floating point and no allocation in the code (the scales are
  // macros of model.h, for the user).
  const std::string code = Code(source);
  for (const char* word : {"float", "double", "malloc", "calloc", "realloc", "free"}) {
    EXPECT_FALSE(std::regex_search(code, std::regex(std::string("\\b") + word + "\\b")))
        << "model.c uses " << word;
  }
  EXPECT_THAT(header, HasSubstr("#define IMPULSE_MODEL_ARENA_BYTES " +
                                std::to_string(model.arena.arena_bytes) + "\n"));
  EXPECT_THAT(header, HasSubstr("int impulse_model_invoke(const int8_t *input, int8_t *output);"));

  WriteFile(dir.path() + "/main.c", kMain);
  const testing::CommandResult build = testing::RunCommand(
      "cd " + testing::ShellQuote(dir.path()) +
      " && gcc -std=c99 -Wall -Wextra -pedantic -Werror -O2 -I model_i8 model_i8/model.c main.c "
      "-o model 2>&1");
  ASSERT_EQ(build.exit_code, 0) << build.output;

  // Random inputs, and the interpreter's outputs for them.
  const size_t input_size = worker::int8::ShapeElements(model.input_shape);
  const size_t output_size = model.ops.back().op.output_elements;
  std::mt19937 rng(static_cast<uint32_t>(seed));
  std::string inputs(input_size * kInputs, '\0');
  for (char& c : inputs) c = static_cast<char>(rng());
  std::string expected(output_size * kInputs, '\0');
  worker::int8::Interpreter interpreter(model);
  for (int i = 0; i < kInputs; ++i) {
    interpreter.Invoke(
        {reinterpret_cast<const int8_t*>(inputs.data()) + i * input_size, input_size},
        {reinterpret_cast<int8_t*>(expected.data()) + i * output_size, output_size});
  }
  WriteFile(dir.path() + "/inputs.bin", inputs);
  const testing::CommandResult run = testing::RunCommand("cd " + testing::ShellQuote(dir.path()) +
                                                         " && ./model inputs.bin outputs.bin");
  ASSERT_EQ(run.exit_code, 0) << run.output;
  const std::string outputs = ReadFile(dir.path() + "/outputs.bin");
  ASSERT_EQ(outputs.size(), expected.size());
  for (int i = 0; i < kInputs; ++i) {
    ASSERT_EQ(outputs.substr(i * output_size, output_size),
              expected.substr(i * output_size, output_size))
        << "input " << i << " differs";
  }
  // The outputs depend on the input (a saturated model would test nothing).
  std::set<std::string> distinct;
  for (int i = 0; i < kInputs; ++i) distinct.insert(outputs.substr(i * output_size, output_size));
  EXPECT_GT(distinct.size(), kInputs / 2u);

  std::string labels;
  for (const std::string& label : model.labels) labels += label + "\n";
  EXPECT_EQ(run.stdout_text, labels);
}

TEST(CLibraryTest, DefaultClassificationNetworkIsBitExact) {
  const QuantizedModel model = RandomModel(
      WithLabels(model::BuildClassificationGraph(v1::LearningBlock(), 1, 28, 28, 10)), 1);
  ExpectLibraryMatchesInterpreter(model, 1);
}

TEST(CLibraryTest, MobileNetV2IsBitExact) {
  const QuantizedModel model = RandomModel(
      WithLabels(model::BuildMobileNetV2(0.35f, 3, 32, 32, 5, {.dense = 16, .dropout = 0.1f})), 2);
  ExpectLibraryMatchesInterpreter(model, 2);
}

TEST(CLibraryTest, MobileNetV1IsBitExact) {
  const QuantizedModel model =
      RandomModel(WithLabels(model::BuildMobileNetV1(0.25f, 1, 32, 32, 3, {})), 3);
  ExpectLibraryMatchesInterpreter(model, 3);
}

TEST(CLibraryTest, EveryLayerKindIsBitExact) {
  // Labels with a quote, a backslash and UTF-8 survive as C strings.
  v1::Model fixture = testing::EveryLayerKindModel();
  fixture.set_labels(0, "c\"a\\t?");
  const QuantizedModel model = RandomModel(fixture, 4);
  ExpectLibraryMatchesInterpreter(model, 4);
}

TEST(CLibraryTest, CompilesWithoutWarningsForCortexMAndWithClang) {
  const QuantizedModel model = RandomModel(testing::EveryLayerKindModel(), 7);
  testing::TempDir dir;
  ASSERT_TRUE(worker::exporters::WriteCLibrary(model, dir.path()).ok());
  for (const std::string compiler :
       {"arm-none-eabi-gcc -mcpu=cortex-m4 -mthumb -mfloat-abi=hard", "clang"}) {
    const std::string tool = compiler.substr(0, compiler.find(' '));
    if (testing::RunCommand("command -v " + tool).exit_code != 0) continue;  // not installed
    const testing::CommandResult build = testing::RunCommand(
        "cd " + testing::ShellQuote(dir.path()) + " && " + compiler +
        " -std=c99 -Wall -Wextra -pedantic -Werror -O2 -c model.c -o model.o 2>&1");
    EXPECT_EQ(build.exit_code, 0) << compiler << ": " << build.output;
  }
}

TEST(CLibraryTest, ADenseModelOnItsInputIsBitExact) {
  // One op reading the input and writing the output: an empty arena.
  const QuantizedModel model = RandomModel(testing::FlatModel(), 5);
  EXPECT_EQ(model.arena.arena_bytes, 0u);
  ExpectLibraryMatchesInterpreter(model, 5);
}

TEST(CLibraryTest, RefusesAnInconsistentModel) {
  QuantizedModel model = RandomModel(testing::EveryLayerKindModel(), 6);
  model.ops[2].weights.pop_back();
  testing::TempDir dir;
  const Status status = worker::exporters::WriteCLibrary(model, dir.path() + "/lib");
  EXPECT_EQ(status.code(), StatusCode::kInvalidArgument);
  EXPECT_THAT(status.message(), HasSubstr("ops[2] (pw)"));
}

}  // namespace
}  // namespace impulse
