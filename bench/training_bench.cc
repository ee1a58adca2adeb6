// Training throughput through the worker's own code path: the impulse's
// LayerGraph (model::BuildGraph), GraphModule, the train task's optimizer
// and its inner loop (worker/training/train_step.h: MakeBatch from the
// uint8 feature matrix, forward, cross-entropy, backward, step), with
// torch::set_num_threads as Train sets it. bench/training_baseline.py
// trains the same graph in Python PyTorch; bench/run_training_bench.sh runs
// both side by side and prints the ratio.
//
// Rows: the first --rows rows of a feature matrix (written by
// features_bench --out, the worker's processing), shuffled per epoch as
// Train does. --warmup batches run untimed, then --batches batches are
// timed (steady state; the per-epoch validation and checkpoint are not in
// it). Prints one JSON line:
//   {"side":"ours","config":"default-32","batch":64,"images":12800,
//    "seconds":5.1,"images_per_s":2510,"loss_first":2.3,"loss_last":0.5}
//
// --dump-model FILE writes the graph (v1::Model, layers only) as JSON and
// --export-npy PREFIX writes PREFIX.x.npy (uint8 [rows, C, H, W]) and
// PREFIX.y.npy (int64 labels): the baseline's architecture and data.
#include <google/protobuf/util/json_util.h>

#include <CLI/CLI.hpp>
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <fstream>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "impulse/impulse_spec.h"
#include "impulse/model/layer_graph.h"
#include "worker/features/feature_matrix.h"
#include "worker/training/graph_module.h"
#include "worker/training/train_step.h"

namespace impulse::worker::training {
namespace {

using features::FeatureMatrix;
using Clock = std::chrono::steady_clock;

struct Options {
  std::string features;
  std::string impulse;
  std::string config = "custom";
  uint64_t rows = 0;  // 0: every row
  int warmup = 5;
  int batches = 100;
  int threads = 0;  // 0: every core
  std::string dump_model;
  std::string export_npy;
};

// A .npy v1.0 file: the header dict padded to a multiple of 64 bytes.
bool WriteNpy(const std::string& path, const std::string& descr, const std::vector<uint64_t>& shape,
              const void* data, size_t bytes) {
  std::string dims;
  for (uint64_t d : shape) dims += std::to_string(d) + ",";
  if (shape.size() > 1) dims.pop_back();
  std::string header =
      "{'descr': '" + descr + "', 'fortran_order': False, 'shape': (" + dims + "), }";
  const size_t total = 10 + header.size() + 1;
  header += std::string((64 - total % 64) % 64, ' ') + "\n";
  const uint16_t header_len = static_cast<uint16_t>(header.size());
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out.write("\x93NUMPY\x01\x00", 8);
  out.write(reinterpret_cast<const char*>(&header_len), 2);
  out.write(header.data(), static_cast<std::streamsize>(header.size()));
  out.write(static_cast<const char*>(data), static_cast<std::streamsize>(bytes));
  return static_cast<bool>(out.flush());
}

Status ExportNpy(const FeatureMatrix& fm, uint64_t rows, const std::string& prefix) {
  const auto& shape = fm.shape();
  const size_t row_bytes = shape.row_bytes();
  std::vector<uint8_t> x(rows * row_bytes);
  std::vector<int64_t> y(rows);
  for (uint64_t r = 0; r < rows; ++r) {
    std::copy_n(fm.pixels(r), row_bytes, x.data() + r * row_bytes);
    y[r] = fm.info(r).label;
  }
  if (!WriteNpy(prefix + ".x.npy", "|u1", {rows, shape.channels, shape.height, shape.width},
                x.data(), x.size()) ||
      !WriteNpy(prefix + ".y.npy", "<i8", {rows}, y.data(), y.size() * sizeof(int64_t))) {
    return Internal("cannot write " + prefix + ".{x,y}.npy");
  }
  return Status::Ok();
}

Status DumpModel(const model::LayerGraph& graph, const std::string& path) {
  v1::Model model = graph.model();
  model.clear_weights();
  google::protobuf::util::JsonPrintOptions options;
  options.add_whitespace = true;
  options.always_print_primitive_fields = true;
  options.preserve_proto_field_names = true;
  std::string text;
  if (!google::protobuf::util::MessageToJsonString(model, &text, options).ok()) {
    return Internal("cannot print the model as JSON");
  }
  std::ofstream out(path, std::ios::trunc);
  out << text;
  if (!out.flush()) return Internal("cannot write " + path);
  return Status::Ok();
}

Status Run(const Options& options, int threads) {
  IMPULSE_ASSIGN_OR_RETURN(const v1::Impulse parsed, LoadImpulseFile(options.impulse));
  const v1::Impulse impulse = WithDefaults(parsed);
  IMPULSE_ASSIGN_OR_RETURN(FeatureMatrix fm, FeatureMatrix::Open(options.features));
  const auto& shape = fm.shape();
  const uint64_t rows = options.rows > 0 ? std::min(options.rows, fm.rows()) : fm.rows();
  IMPULSE_ASSIGN_OR_RETURN(
      model::LayerGraph graph,
      model::BuildGraph(impulse, static_cast<uint32_t>(shape.labels.size())));
  const auto input = graph.input_shape();
  if (input[0] != shape.channels || input[1] != shape.height || input[2] != shape.width) {
    return InvalidArgument("the features do not match the impulse's input " +
                           model::ShapeString(input));
  }
  if (!options.dump_model.empty()) IMPULSE_RETURN_IF_ERROR(DumpModel(graph, options.dump_model));
  if (!options.export_npy.empty()) IMPULSE_RETURN_IF_ERROR(ExportNpy(fm, rows, options.export_npy));
  if (options.batches == 0) return Status::Ok();

  // As Train sets up one epoch of a block trained end to end (a transfer
  // block with fine_tune and frozen_epochs 0: the backbone trains too).
  const v1::TrainingSettings& t = impulse.training();
  const bool transfer = impulse.learning().block() == v1::LEARNING_KIND_TRANSFER;
  const bool frozen = transfer && !impulse.learning().fine_tune();
  torch::set_num_threads(threads);
  torch::manual_seed(t.seed());
  GraphModule module(graph);
  std::unique_ptr<torch::optim::Optimizer> opt =
      MakeOptimizer(t.optimizer() == v1::OPTIMIZER_SGD, t.learning_rate(), module);
  module->SetBackboneFrozen(frozen);
  module->train();

  std::vector<uint64_t> all(rows);
  for (uint64_t r = 0; r < rows; ++r) all[r] = r;
  std::mt19937_64 rng(t.seed());
  const int64_t batch = t.batch_size();
  std::vector<uint64_t> order;
  uint64_t next = rows;  // start of the next batch in `order`
  double loss_first = 0, loss_last = 0;
  Clock::time_point start;
  for (int b = 0; b < options.warmup + options.batches; ++b) {
    if (b == options.warmup) start = Clock::now();
    if (next + batch > rows) {  // a new epoch (the short tail is dropped here)
      order = ShuffledRows(all, rng);
      next = 0;
    }
    const StepResult step =
        TrainStep(module, *opt, fm, order.data() + next, batch, t.augmentation(), rng);
    next += batch;
    if (!step.finite) return FailedPrecondition("the loss became NaN or infinite");
    if (b == 0) loss_first = step.loss;
    loss_last = step.loss;
  }
  const double seconds = std::chrono::duration<double>(Clock::now() - start).count();
  const double images = static_cast<double>(options.batches) * batch;
  std::printf(
      "{\"side\":\"ours\",\"config\":\"%s\",\"threads\":%d,\"batch\":%lld,\"batches\":%d,"
      "\"images\":%.0f,\"seconds\":%.4f,\"images_per_s\":%.1f,\"loss_first\":%.4f,"
      "\"loss_last\":%.4f}\n",
      options.config.c_str(), threads, static_cast<long long>(batch), options.batches, images,
      seconds, images / seconds, loss_first, loss_last);
  return Status::Ok();
}

int Main(int argc, char** argv) {
  Options options;
  CLI::App app{"Training throughput through the worker's training loop"};
  app.add_option("--features", options.features, "feature matrix (features_bench --out)")
      ->required();
  app.add_option("--impulse", options.impulse, "impulse YAML: learning block and training")
      ->required();
  app.add_option("--config", options.config, "name printed in the JSON line");
  app.add_option("--rows", options.rows, "use the first N rows; 0 = all");
  app.add_option("--warmup", options.warmup, "untimed batches first")
      ->check(CLI::NonNegativeNumber);
  app.add_option("--batches", options.batches, "timed batches; 0 = only dump/export")
      ->check(CLI::NonNegativeNumber);
  app.add_option("--threads", options.threads, "LibTorch threads; 0 = every core")
      ->check(CLI::NonNegativeNumber);
  app.add_option("--dump-model", options.dump_model, "write the layer graph as JSON here");
  app.add_option("--export-npy", options.export_npy, "write PREFIX.x.npy and PREFIX.y.npy");
  CLI11_PARSE(app, argc, argv);

  const int threads = options.threads > 0
                          ? options.threads
                          : std::max(1, static_cast<int>(std::thread::hardware_concurrency()));
  try {
    const Status status = Run(options, threads);
    if (!status.ok()) {
      std::fprintf(stderr, "training_bench: %s\n", status.message().c_str());
      return 1;
    }
  } catch (const std::exception& e) {
    std::fprintf(stderr, "training_bench: %s\n", e.what());
    return 1;
  }
  return 0;
}

}  // namespace
}  // namespace impulse::worker::training

int main(int argc, char** argv) { return impulse::worker::training::Main(argc, argv); }
