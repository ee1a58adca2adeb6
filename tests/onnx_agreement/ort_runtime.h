// ONNX Runtime for the agreement tests: onnxruntime-node, installed once per
// build directory into IMPULSE_ORT_CACHE_DIR with `npm install
// --ignore-scripts` (its install script fetches GPU binaries; the CPU
// library is inside the package), under flock so that parallel ctest
// processes install it once; and run_ort.js, which feeds a model the rows
// of a feature matrix as the contract says (pixels / 255, [N, C, H, W]).
#pragma once

#include <gtest/gtest.h>

#include <string>
#include <vector>

namespace impulse::testing {

// "" when onnxruntime-node is ready; else why not. Sets *unreachable when
// the npm registry could not be reached (the tests skip then, and only
// then).
std::string EnsureOnnxRuntime(bool* unreachable);

// A fixture for tests that run onnxruntime-node: EnsureOnnxRuntime once per
// suite; each test skips when the npm registry was unreachable and fails
// when the runtime is not ready for any other reason.
class OnnxRuntimeTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite();
  static void TearDownTestSuite();
  void SetUp() override;

 private:
  static std::string* problem_;
  static bool unreachable_;
};

struct OrtRunOptions {
  std::string split = "test";  // "train", "test" or "all"
  size_t max_rows = 0;         // the first rows of the split only; 0 = all
  // When set, every output of the model is written there too, output i as
  // "i.bin" (raw elements, rows concatenated).
  std::string outputs_dir;
};

// The first output of `onnx_path` on the rows of the feature matrix at
// `features_path` that `options` pick, rows x classes float32 in file
// order; empty with *error set when node fails or the output is not
// rows x classes.
std::vector<float> RunOrtOnFeatures(const std::string& onnx_path, const std::string& features_path,
                                    const OrtRunOptions& options, size_t rows, size_t classes,
                                    const std::string& scratch_dir, std::string* error);

}  // namespace impulse::testing
