#include "tests/onnx_agreement/ort_runtime.h"

#include <fstream>

#include "tests/support/command.h"

namespace impulse::testing {
namespace {

constexpr char kOrtPackage[] = "onnxruntime-node@1.30.0";
constexpr char kOrtVersion[] = "1.30.0";

const std::string kCacheDir = IMPULSE_ORT_CACHE_DIR;
const std::string kScript = IMPULSE_ORT_SCRIPT;

}  // namespace

std::string EnsureOnnxRuntime(bool* unreachable) {
  *unreachable = false;
  const auto tools = RunCommand("command -v node && command -v npm", 30);
  if (tools.exit_code != 0) {
    return "node and npm are needed (Debian packages nodejs and npm; scripts/setup.sh)";
  }
  const std::string package_json = kCacheDir + "/node_modules/onnxruntime-node/package.json";
  const std::string install =
      "mkdir -p " + ShellQuote(kCacheDir) + " && flock " + ShellQuote(kCacheDir + ".lock") +
      " sh -c " +
      ShellQuote("grep -q '\"version\": \"" + std::string(kOrtVersion) + "\"' " +
                 ShellQuote(package_json) + " 2>/dev/null || npm install --prefix " +
                 ShellQuote(kCacheDir) +
                 " --ignore-scripts --no-audit --no-fund --loglevel=error " + kOrtPackage);
  const auto installed = RunCommand(install, 600);
  if (installed.exit_code != 0) {
    for (const char* network : {"ENOTFOUND", "EAI_AGAIN", "ECONNREFUSED", "ETIMEDOUT", "ECONNRESET",
                                "ENETUNREACH", "network request", "FetchError"}) {
      if (installed.output.find(network) != std::string::npos) *unreachable = true;
    }
    return "npm install " + std::string(kOrtPackage) + " failed:\n" + installed.output;
  }
  const auto loaded = RunCommand("NODE_PATH=" + ShellQuote(kCacheDir + "/node_modules") +
                                     " node -e \"require('onnxruntime-node')\"",
                                 60);
  if (loaded.exit_code != 0) return "require('onnxruntime-node') failed:\n" + loaded.output;
  return "";
}

std::vector<float> RunOrtOnFeatures(const std::string& onnx_path, const std::string& features_path,
                                    const OrtRunOptions& options, size_t rows, size_t classes,
                                    const std::string& scratch_dir, std::string* error) {
  const std::string out = scratch_dir + "/ort_scores.f32";
  std::string command = "NODE_PATH=" + ShellQuote(kCacheDir + "/node_modules") + " node " +
                        ShellQuote(kScript) + " " + ShellQuote(onnx_path) + " --features " +
                        ShellQuote(features_path) + " --split " + ShellQuote(options.split);
  if (options.max_rows > 0) command += " --rows " + std::to_string(options.max_rows);
  if (!options.outputs_dir.empty()) command += " --outputs-dir " + ShellQuote(options.outputs_dir);
  const auto ran = RunCommand(command + " " + ShellQuote(out), 600);
  if (ran.exit_code != 0) {
    *error = "run_ort.js failed:\n" + ran.output;
    return {};
  }
  std::vector<float> scores(rows * classes);
  std::ifstream in(out, std::ios::binary);
  in.read(reinterpret_cast<char*>(scores.data()), scores.size() * sizeof(float));
  if (static_cast<size_t>(in.gcount()) != scores.size() * sizeof(float) || in.peek() != EOF) {
    *error = "run_ort.js wrote a different number of scores than " + std::to_string(rows) + " x " +
             std::to_string(classes) + ":\n" + ran.output;
    return {};
  }
  return scores;
}

std::string* OnnxRuntimeTest::problem_ = nullptr;
bool OnnxRuntimeTest::unreachable_ = false;

void OnnxRuntimeTest::SetUpTestSuite() {
  problem_ = new std::string(EnsureOnnxRuntime(&unreachable_));
}

void OnnxRuntimeTest::TearDownTestSuite() {
  delete problem_;
  problem_ = nullptr;
}

void OnnxRuntimeTest::SetUp() {
  if (unreachable_) GTEST_SKIP() << "the npm registry is unreachable: " << *problem_;
  ASSERT_EQ(*problem_, "");
}

}  // namespace impulse::testing
