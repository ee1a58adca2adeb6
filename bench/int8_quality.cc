// Int8 quality: float32 against int8 test accuracy of one impulse trained on
// an IDX dataset (Fashion-MNIST by default), through the worker's own task
// functions: the features by the worker's processing (ImageProcessor), the
// train task (training::Train), then the quantize-evaluate task
// (evaluation::EvaluateAndExport: calibration, quantization, the integer
// interpreter). bench/int8_quality.sh runs it for the example impulse and
// two MobileNets and prints the table. With --model FILE it skips training
// and evaluates that model: the same weights before and after a change to
// the int8 kernels, in minutes.
//
// Prints one JSON line:
//   {"impulse":"fashion-32","feature_rows":70000,"validation_rows":12000,"test_rows":10000,
//    "float32":{"validation":0.91,"test":0.90},"int8":{...},
//    "method":"minmax","warnings":[...],"train_s":300.1,"evaluate_s":40.2}
// and writes the task outputs (metrics as JSON, artifacts) under --out.
#include <google/protobuf/util/json_util.h>

#include <CLI/CLI.hpp>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <nlohmann/json.hpp>
#include <opencv2/core.hpp>
#include <thread>

#include "impulse/idx.h"
#include "impulse/impulse_spec.h"
#include "tests/support/dir_task_context.h"
#include "worker/evaluation/evaluate_export.h"
#include "worker/features/feature_matrix.h"
#include "worker/features/parallel.h"
#include "worker/features/processing.h"
#include "worker/training/train.h"

namespace impulse::bench {
namespace {

namespace fs = std::filesystem;
using worker::features::FeatureMatrixWriter;

struct Options {
  std::string impulse_path;
  std::string data_dir = "/usr/share/datasets/fashion-mnist";
  std::string out;
  size_t train_per_class = 0;  // 0: every training image
  std::string model_path;      // a trained model (v1.Model) to evaluate instead of training
  int threads = 0;             // 0: every core
};

// The task context of the runs: blobs in a directory, epochs and logs on
// stderr as they come.
class BenchContext final : public worker::TaskContext {
 public:
  BenchContext(const std::string& root, int threads) : dir_(root, threads) {}
  Result<std::string> BlobPath(const std::string& sha256) override { return dir_.BlobPath(sha256); }
  Result<std::string> PutBlob(const std::string& path) override { return dir_.PutBlob(path); }
  const std::string& ScratchDir() const override { return dir_.ScratchDir(); }
  void ReportProgress(double, const std::string&) override {}
  void Log(const std::string& line) override { std::cerr << "  " << line << "\n"; }
  bool StopRequested() const override { return false; }
  int Threads() const override { return dir_.Threads(); }
  void ReportEpoch(const v1::EpochStats& s) override {
    std::fprintf(stderr, "  epoch %u: train accuracy %.4f, validation accuracy %.4f (%.0f s)\n",
                 s.epoch(), s.train_accuracy(), s.validation_accuracy(), s.elapsed_s());
  }

 private:
  testing::DirTaskContext dir_;
};

// The first `per_class` images of each label (0: all), in file order.
std::vector<size_t> Pick(const std::vector<uint8_t>& labels, size_t per_class) {
  std::vector<size_t> rows, taken(256, 0);
  for (size_t i = 0; i < labels.size(); ++i) {
    if (per_class == 0 || taken[labels[i]]++ < per_class) rows.push_back(i);
  }
  return rows;
}

// Processes the IDX train and t10k pairs into one feature matrix at `path`.
Result<uint64_t> WriteFeatures(const Options& options, const v1::Impulse& impulse,
                               const std::string& path, int threads) {
  IMPULSE_ASSIGN_OR_RETURN(auto params, worker::features::ProcessingParamsFromImpulse(impulse));
  worker::features::FeatureShape shape{.channels = static_cast<uint32_t>(params.channels()),
                                       .height = static_cast<uint32_t>(params.height),
                                       .width = static_cast<uint32_t>(params.width)};
  struct Part {
    IdxImages images;
    std::vector<uint8_t> labels;
    std::vector<size_t> rows;
    uint8_t split;
  };
  std::vector<Part> parts;
  for (const auto& [prefix, split] :
       {std::pair{"train", v1::SPLIT_TRAIN}, {"t10k", v1::SPLIT_TEST}}) {
    Part part;
    IMPULSE_ASSIGN_OR_RETURN(
        part.images, ReadIdxImages(options.data_dir + "/" + prefix + "-images-idx3-ubyte.gz"));
    IMPULSE_ASSIGN_OR_RETURN(
        part.labels, ReadIdxLabels(options.data_dir + "/" + prefix + "-labels-idx1-ubyte.gz"));
    part.rows = Pick(part.labels, split == v1::SPLIT_TRAIN ? options.train_per_class : 0);
    part.split = static_cast<uint8_t>(split);
    parts.push_back(std::move(part));
  }
  const uint8_t max_label = *std::max_element(parts[0].labels.begin(), parts[0].labels.end());
  std::ifstream names(options.data_dir + "/labels.txt");
  for (int label = 0; label <= max_label; ++label) {
    std::string name;
    if (!std::getline(names, name) || name.empty()) name = std::to_string(label);
    shape.labels.push_back(name);
  }
  IMPULSE_ASSIGN_OR_RETURN(
      auto writer,
      FeatureMatrixWriter::Create(path, shape, parts[0].rows.size() + parts[1].rows.size()));
  std::vector<worker::features::ImageProcessor> processors(
      threads, worker::features::ImageProcessor(params));
  uint32_t sample = 0;
  for (const Part& part : parts) {
    const size_t image_bytes = static_cast<size_t>(part.images.rows) * part.images.cols;
    std::vector<uint8_t> rows(part.rows.size() * params.row_bytes());
    worker::features::ParallelFor(threads, part.rows.size(), 64, [&](size_t b, size_t e, int t) {
      for (size_t k = b; k < e; ++k) {
        const cv::Mat image(
            static_cast<int>(part.images.rows), static_cast<int>(part.images.cols), CV_8UC1,
            const_cast<uint8_t*>(part.images.pixels.data() + part.rows[k] * image_bytes));
        processors[t].Process(image, &rows[k * params.row_bytes()]);
      }
    });
    for (size_t k = 0; k < part.rows.size(); ++k) {
      IMPULSE_RETURN_IF_ERROR(writer->Append(
          {.label = part.labels[part.rows[k]], .split = part.split, .sample = sample++},
          &rows[k * params.row_bytes()]));
    }
  }
  IMPULSE_RETURN_IF_ERROR(writer->Finish());
  return writer->rows();
}

double Seconds(std::chrono::steady_clock::time_point since) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - since).count();
}

Status Run(const Options& options) {
  IMPULSE_ASSIGN_OR_RETURN(v1::Impulse impulse, LoadImpulseFile(options.impulse_path));
  const int threads = options.threads > 0
                          ? options.threads
                          : std::max(1, static_cast<int>(std::thread::hardware_concurrency()));
  fs::create_directories(options.out);
  BenchContext ctx(options.out + "/ctx", threads);
  const std::string features_path = options.out + "/features.bin";
  IMPULSE_ASSIGN_OR_RETURN(uint64_t rows, WriteFeatures(options, impulse, features_path, threads));
  IMPULSE_ASSIGN_OR_RETURN(std::string features, ctx.PutBlob(features_path));
  std::cerr << impulse.name() << ": " << rows << " feature rows\n";

  v1::TaskOutput trained;
  double train_s = 0;
  if (options.model_path.empty()) {
    v1::TaskSpec train;
    train.set_kind(v1::TASK_KIND_TRAIN);
    *train.mutable_impulse() = impulse;
    (*train.mutable_inputs())["features"] = features;
    const auto train_start = std::chrono::steady_clock::now();
    IMPULSE_ASSIGN_OR_RETURN(trained, worker::training::Train(train, ctx));
    train_s = Seconds(train_start);
  } else {
    IMPULSE_ASSIGN_OR_RETURN((*trained.mutable_blobs())["model"], ctx.PutBlob(options.model_path));
  }

  v1::TaskSpec evaluate;
  evaluate.set_kind(v1::TASK_KIND_QUANTIZE_EVALUATE);
  *evaluate.mutable_impulse() = impulse;
  (*evaluate.mutable_inputs())["features"] = features;
  (*evaluate.mutable_inputs())["model"] = trained.blobs().at("model");
  *evaluate.mutable_dependency_results()->mutable_training_log() = trained.results().training_log();
  const auto evaluate_start = std::chrono::steady_clock::now();
  IMPULSE_ASSIGN_OR_RETURN(v1::TaskOutput evaluated,
                           worker::evaluation::EvaluateAndExport(evaluate, ctx));
  const double evaluate_s = Seconds(evaluate_start);

  const v1::JobResults& r = evaluated.results();
  std::string results_json;
  google::protobuf::util::JsonPrintOptions json_options;
  json_options.preserve_proto_field_names = true;
  (void)google::protobuf::util::MessageToJsonString(r, &results_json, json_options);
  std::ofstream(options.out + "/results.json") << results_json << "\n";
  for (const auto& artifact : evaluated.artifacts()) {
    const fs::path target = fs::path(options.out) / "artifacts" / artifact.name();
    fs::create_directories(target.parent_path());
    fs::copy_file(*ctx.BlobPath(artifact.sha256()), target, fs::copy_options::overwrite_existing);
  }
  const nlohmann::json line = {
      {"impulse", impulse.name()},
      {"feature_rows", rows},
      {"validation_rows", r.float32().validation().samples()},
      {"test_rows", r.float32().test().samples()},
      {"float32",
       {{"validation", r.float32().validation().accuracy()},
        {"test", r.float32().test().accuracy()}}},
      {"int8",
       {{"validation", r.int8().validation().accuracy()}, {"test", r.int8().test().accuracy()}}},
      {"method", r.quantization_method()},
      {"warnings", std::vector<std::string>(r.warnings().begin(), r.warnings().end())},
      {"train_s", train_s},
      {"evaluate_s", evaluate_s}};
  std::cout << line.dump() << "\n";
  return Status::Ok();
}

int Main(int argc, char** argv) {
  Options options;
  CLI::App app{"float32 against int8 accuracy of one impulse, through the worker's tasks"};
  app.add_option("--impulse", options.impulse_path, "impulse YAML")->required();
  app.add_option("--data", options.data_dir, "folder with the IDX train and t10k pairs");
  app.add_option("--out", options.out, "working folder (features, blobs, outputs)")->required();
  app.add_option("--train-per-class", options.train_per_class,
                 "the first N training images of each class; 0 = all");
  app.add_option("--threads", options.threads, "threads; 0 = every core");
  app.add_option("--model", options.model_path,
                 "evaluate this trained model (a v1.Model file, e.g. an earlier run's model blob "
                 "under OUT/ctx/blobs) instead of training one: the same weights after a kernel "
                 "change");
  CLI11_PARSE(app, argc, argv);
  const Status status = Run(options);
  if (!status.ok()) {
    std::cerr << "int8_quality: " << status.ToString() << "\n";
    return 1;
  }
  return 0;
}

}  // namespace
}  // namespace impulse::bench

int main(int argc, char** argv) { return impulse::bench::Main(argc, argv); }
