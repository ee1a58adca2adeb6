// Int8 inference throughput: one model, the same Fashion-MNIST test images,
// four ways, interleaved in rounds (bench/run_int8_bench.sh runs it):
//   c        the emitted C library (worker/export/c_emitter.h, model_i8/)
//            compiled with `gcc -std=c99 -O2` and bench/int8_c_driver.c:
//            one thread, its one static arena, as on a device;
//   interp   the worker's Interpreter (worker/int8/interpreter.h: the same
//            kernels.c, built -O3 in the worker) on every core, one
//            Interpreter per thread over blocks of rows, as the
//            quantize-evaluate task runs it;
//   torch    float32 LibTorch inference of the same trained model
//            (worker/training/inference.h PredictLogits: batches of 256,
//            every core), as the task's float32 evaluation runs it;
//   ort      onnxruntime-node on model_i8.onnx (bench/int8_ort_bench.js:
//            one session, every core, batches of each --ort-batch).
// The model: the impulse's learning block trained briefly (--epochs on the
// first --train-images; speed does not depend on accuracy, but calibrated
// ranges need real weights), quantized as the task first does (min/max,
// tests/support/quantize_fixtures.h).
//
// Inputs are prepared before the clocks start on the int8 and ORT sides
// (int8 pixel - 128, float32 pixel / 255); PredictLogits converts uint8
// rows itself, inside its time (its API takes the feature matrix).
//
// Checks printed after the table: the C library's outputs equal the
// interpreter's bit for bit, and ORT's top-1 / exact / within-one-step
// agreement with the interpreter over every test image.
//
//   int8_bench --impulse FILE --config NAME [--data DIR] [--train-images N]
//              [--epochs E] [--test-images N] [--rounds R] [--threads T]
//              [--ort-batch 1,256] --node-path DIR --out DIR
#include <CLI/CLI.hpp>
#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <functional>
#include <map>
#include <nlohmann/json.hpp>
#include <numeric>
#include <string>
#include <thread>
#include <vector>

#include "impulse/impulse_spec.h"
#include "tests/support/command.h"
#include "tests/support/dir_task_context.h"
#include "tests/support/fashion_features.h"
#include "tests/support/quantize_fixtures.h"
#include "worker/export/c_emitter.h"
#include "worker/export/onnx_qdq_export.h"
#include "worker/features/feature_matrix.h"
#include "worker/int8/interpreter.h"
#include "worker/training/inference.h"
#include "worker/training/train.h"

namespace impulse {
namespace {

using Clock = std::chrono::steady_clock;
using testing::ShellQuote;
using worker::features::FeatureMatrix;
using worker::int8::QuantizedModel;

struct Options {
  std::string impulse;
  std::string config = "custom";
  std::string data = testing::kFashionMnistDir;
  uint32_t train_images = 12000;
  uint32_t epochs = 1;
  uint32_t test_images = 10000;
  int rounds = 3;
  int threads = 0;  // 0: every core
  std::vector<int> ort_batches = {1, 256};
  std::string node_path;
  std::string out;
};

[[noreturn]] void Fail(const std::string& what) {
  std::fprintf(stderr, "int8_bench: %s\n", what.c_str());
  std::exit(1);
}

template <typename T>
T Must(Result<T> r, const std::string& what) {
  if (!r.ok()) Fail(what + ": " + r.status().ToString());
  return std::move(*r);
}

void Must(const Status& s, const std::string& what) {
  if (!s.ok()) Fail(what + ": " + s.ToString());
}

double Seconds(Clock::time_point since) {
  return std::chrono::duration<double>(Clock::now() - since).count();
}

// Runs `command`; its last stdout line as JSON.
nlohmann::json RunJson(const std::string& command) {
  const auto ran = testing::RunCommand(command, 3600);
  if (ran.exit_code != 0) Fail(command + " failed:\n" + ran.output);
  std::string text = ran.stdout_text;
  while (!text.empty() && text.back() == '\n') text.pop_back();
  return nlohmann::json::parse(text.substr(text.find_last_of('\n') + 1));
}

// The trained model of the impulse's learning block on the features.
v1::Model TrainModel(const v1::Impulse& impulse, const std::string& features,
                     const std::string& dir, int threads) {
  testing::DirTaskContext ctx(dir, threads);
  std::ifstream in(features, std::ios::binary);
  v1::TaskSpec spec;
  *spec.mutable_impulse() = impulse;
  spec.set_kind(v1::TASK_KIND_TRAIN);
  (*spec.mutable_inputs())["features"] =
      ctx.PutBytes(std::string((std::istreambuf_iterator<char>(in)), {}));
  const v1::TaskOutput trained = Must(worker::training::Train(spec, ctx), "training");
  v1::Model model;
  std::ifstream model_in(Must(ctx.BlobPath(trained.blobs().at("model")), "model blob"),
                         std::ios::binary);
  if (!model.ParseFromIstream(&model_in)) Fail("cannot read the trained model");
  return model;
}

// Every row through `threads` Interpreters over contiguous blocks.
void RunInterpreters(const QuantizedModel& qm, const std::vector<int8_t>& inputs, size_t rows,
                     int threads, std::vector<int8_t>& outputs) {
  const size_t in_size = inputs.size() / rows, out_size = qm.ops.back().op.output_elements;
  outputs.resize(rows * out_size);
  std::vector<std::thread> pool;
  for (int t = 0; t < threads; ++t) {
    pool.emplace_back([&, t] {
      worker::int8::Interpreter interpreter(qm);
      for (size_t r = rows * t / threads; r < rows * (t + 1) / threads; ++r) {
        interpreter.Invoke({inputs.data() + r * in_size, in_size},
                           {outputs.data() + r * out_size, out_size});
      }
    });
  }
  for (auto& thread : pool) thread.join();
}

double Median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return v.size() % 2 ? v[v.size() / 2] : (v[v.size() / 2 - 1] + v[v.size() / 2]) / 2;
}

size_t ArgMax(const int8_t* v, size_t n) { return std::max_element(v, v + n) - v; }

int Run(const Options& o) {
  const int threads =
      o.threads > 0 ? o.threads : static_cast<int>(std::thread::hardware_concurrency());
  std::filesystem::create_directories(o.out);
  v1::Impulse impulse = WithDefaults(Must(LoadImpulseFile(o.impulse), o.impulse));
  impulse.mutable_training()->set_epochs(o.epochs);

  auto started = Clock::now();
  const std::string features = o.out + "/features.bin";
  Must(testing::WriteFashionMnistFeatures(impulse, o.train_images, o.test_images, features, o.data),
       "features");
  const v1::Model model = TrainModel(impulse, features, o.out + "/ctx", threads);
  const FeatureMatrix fm = Must(FeatureMatrix::Open(features), features);
  const QuantizedModel qm = Must(testing::QuantizeMinMax(model, fm, threads), "quantize");
  std::fprintf(stderr, "int8_bench %s: features, %u epoch(s) on %u images, quantized: %.0f s\n",
               o.config.c_str(), o.epochs, o.train_images, Seconds(started));

  // The artifacts, the inputs, and the C driver.
  const std::string onnx = o.out + "/model_i8.onnx", lib = o.out + "/model_i8";
  Must(worker::exporters::ExportQdqOnnx(qm, {.impulse_name = o.config}, onnx), "model_i8.onnx");
  Must(worker::exporters::WriteCLibrary(qm, lib), "model_i8/");
  std::vector<uint64_t> rows;
  for (uint64_t r = 0; r < fm.rows(); ++r) {
    if (fm.info(r).split == 2) rows.push_back(r);
  }
  const size_t in_size = fm.shape().row_bytes(), classes = qm.ops.back().op.output_elements;
  std::vector<int8_t> inputs(rows.size() * in_size);
  for (size_t i = 0; i < rows.size(); ++i) {
    for (size_t k = 0; k < in_size; ++k) {
      inputs[i * in_size + k] = static_cast<int8_t>(fm.pixels(rows[i])[k] - 128);
    }
  }
  const std::string inputs_path = o.out + "/inputs.i8";
  std::ofstream(inputs_path, std::ios::binary)
      .write(reinterpret_cast<const char*>(inputs.data()), inputs.size());
  const std::string driver = o.out + "/int8_c_driver";
  const auto compiled =
      testing::RunCommand("gcc -std=c99 -O2 -Wall -Werror -o " + ShellQuote(driver) + " " +
                          ShellQuote(std::string(IMPULSE_SOURCE_DIR) + "/bench/int8_c_driver.c") +
                          " " + ShellQuote(lib + "/model.c") + " -I" + ShellQuote(lib));
  if (compiled.exit_code != 0) Fail("gcc failed:\n" + compiled.output);

  // Rounds, interleaved.
  std::map<std::string, std::vector<double>> speed;
  std::vector<int8_t> interp_out;
  const std::string c_out = o.out + "/c_outputs.i8", ort_scores = o.out + "/ort_scores.f32";
  const std::string node = "NODE_PATH=" + ShellQuote(o.node_path) + " node " +
                           ShellQuote(std::string(IMPULSE_SOURCE_DIR) + "/bench/int8_ort_bench.js");
  for (int round = 0; round < o.rounds; ++round) {
    speed["c"].push_back(RunJson(ShellQuote(driver) + " " + ShellQuote(inputs_path) + " " +
                                 std::to_string(rows.size()) + " " + ShellQuote(c_out))
                             .at("images_per_s"));
    started = Clock::now();
    RunInterpreters(qm, inputs, rows.size(), threads, interp_out);
    speed["interp"].push_back(rows.size() / Seconds(started));
    started = Clock::now();
    Must(worker::training::PredictLogits(model, fm, rows, threads), "PredictLogits");
    speed["torch"].push_back(rows.size() / Seconds(started));
    for (int batch : o.ort_batches) {
      speed["ort batch " + std::to_string(batch)].push_back(
          RunJson(node + " " + ShellQuote(onnx) + " --features " + ShellQuote(features) +
                  " --batch " + std::to_string(batch) + " --threads " + std::to_string(threads) +
                  " --config " + ShellQuote(o.config) + " --scores " + ShellQuote(ort_scores))
              .at("images_per_s"));
    }
    std::fprintf(stderr, "int8_bench %s: round %d of %d done\n", o.config.c_str(), round + 1,
                 o.rounds);
  }

  // The table: each side's median, and the median over rounds of each
  // round's ratio (sides measured minutes apart on a shared machine drift
  // together; a round's sides are adjacent). ORT: its faster batch size,
  // per round.
  std::vector<double> ort_best(o.rounds, 0.0), c_torch, c_ort, interp_torch, interp_ort;
  std::map<std::string, int> ort_wins;
  for (int r = 0; r < o.rounds; ++r) {
    std::string best;
    for (const auto& [side, v] : speed) {
      if (side.rfind("ort", 0) == 0 && v[r] > ort_best[r]) ort_best[r] = v[r], best = side;
    }
    ++ort_wins[best];
    c_torch.push_back(speed["c"][r] / speed["torch"][r]);
    c_ort.push_back(speed["c"][r] / ort_best[r]);
    interp_torch.push_back(speed["interp"][r] / speed["torch"][r]);
    interp_ort.push_back(speed["interp"][r] / ort_best[r]);
  }
  const auto most =
      std::max_element(ort_wins.begin(), ort_wins.end(),
                       [](const auto& a, const auto& b) { return a.second < b.second; });
  uint64_t macs = 0;
  for (const auto& op : qm.ops) macs += op.op.macs;
  std::printf("| %s | %.1f | %.0f | %.0f | %.0f | %.0f (%s) | %.2fx | %.2fx | %.2fx | %.2fx |\n",
              o.config.c_str(), macs / 1e6, Median(speed["c"]), Median(speed["interp"]),
              Median(speed["torch"]), Median(ort_best), most->first.c_str(), Median(c_torch),
              Median(c_ort), Median(interp_torch), Median(interp_ort));
  for (const auto& [side, v] : speed) {
    std::printf("    %s: median %.1f img/s over %zu rounds (", side.c_str(), Median(v), v.size());
    for (size_t i = 0; i < v.size(); ++i) std::printf("%s%.1f", i ? ", " : "", v[i]);
    std::printf(")\n");
  }

  // Checks: the C library is the interpreter, bit for bit; ORT agrees.
  std::ifstream c_in(c_out, std::ios::binary);
  std::vector<int8_t> c_outputs(rows.size() * classes);
  c_in.read(reinterpret_cast<char*>(c_outputs.data()), c_outputs.size());
  const size_t c_differ = std::inner_product(c_outputs.begin(), c_outputs.end(), interp_out.begin(),
                                             size_t{0}, std::plus<>(), std::not_equal_to<>());
  std::ifstream ort_in(ort_scores, std::ios::binary);
  std::vector<float> ort(rows.size() * classes);
  ort_in.read(reinterpret_cast<char*>(ort.data()), ort.size() * sizeof(float));
  const worker::int8::QuantParams& q = qm.ops.back().output;
  size_t top1 = 0, exact = 0, within_one = 0, int8_correct = 0;
  std::vector<int8_t> theirs(classes);
  for (size_t i = 0; i < rows.size(); ++i) {
    const int8_t* ours = &interp_out[i * classes];
    for (size_t k = 0; k < classes; ++k) {
      theirs[k] = static_cast<int8_t>(std::lround(ort[i * classes + k] / q.scale) + q.zero_point);
      exact += ours[k] == theirs[k];
      within_one += std::abs(ours[k] - theirs[k]) <= 1;
    }
    top1 += ArgMax(ours, classes) == ArgMax(theirs.data(), classes);
    int8_correct += ArgMax(ours, classes) == fm.info(rows[i]).label;
  }
  std::printf(
      "    checks on %zu test images: C library == interpreter: %s (%zu outputs differ); "
      "ORT vs interpreter: top-1 %.2f %%, outputs exact %.2f %%, within one step %.2f %%; "
      "int8 test accuracy %.4f\n",
      rows.size(), c_differ == 0 ? "yes" : "NO", c_differ, 100.0 * top1 / rows.size(),
      100.0 * exact / ort.size(), 100.0 * within_one / ort.size(),
      static_cast<double>(int8_correct) / rows.size());
  return c_differ == 0 ? 0 : 1;
}

}  // namespace
}  // namespace impulse

int main(int argc, char** argv) {
  impulse::Options o;
  CLI::App app{"int8 inference: C library, interpreter, LibTorch float32, onnxruntime-node"};
  app.add_option("--impulse", o.impulse, "impulse YAML (its input, processing, learning)")
      ->required();
  app.add_option("--config", o.config, "name in the table");
  app.add_option("--data", o.data, "Fashion-MNIST IDX directory");
  app.add_option("--train-images", o.train_images, "training images");
  app.add_option("--epochs", o.epochs, "training epochs");
  app.add_option("--test-images", o.test_images, "timed test images");
  app.add_option("--rounds", o.rounds, "interleaved rounds")->check(CLI::PositiveNumber);
  app.add_option("--threads", o.threads, "threads of the multi-threaded sides; 0: every core");
  app.add_option("--ort-batch", o.ort_batches, "onnxruntime-node batch sizes")->delimiter(',');
  app.add_option("--node-path", o.node_path, "node_modules holding onnxruntime-node")->required();
  app.add_option("--out", o.out, "scratch directory (features, artifacts)")->required();
  CLI11_PARSE(app, argc, argv);
  return impulse::Run(o);
}
