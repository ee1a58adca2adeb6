// Feature generation throughput on an IDX dataset (Fashion-MNIST's training
// images), through the worker's own path: ReadIdxImages, ImageProcessor on
// ParallelFor, FeatureMatrixWriter. bench/features_baseline.py does the same
// work with Python + OpenCV; bench/run_features_bench.sh runs both side by
// side and prints the ratio.
//
// The timed span is the whole job: reading and gunzipping the IDX pair,
// processing every image and writing the feature matrix (to the page cache;
// neither side fsyncs). Prints one JSON line:
//   {"side":"ours","color":"rgb","size":96,"threads":2,"images":60000,
//    "seconds":1.23,"images_per_s":48780}
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <opencv2/core.hpp>
#include <string>
#include <thread>
#include <vector>

#include "impulse/idx.h"
#include "impulse/v1/dataset.pb.h"
#include "worker/features/feature_matrix.h"
#include "worker/features/parallel.h"
#include "worker/features/processing.h"

namespace impulse::worker::features {
namespace {

// Same chunking as generate_features.cc: ~2 % of the samples per chunk, at
// most 64 MiB, rows appended in order by the calling thread between chunks.
constexpr size_t kChunks = 50;
constexpr size_t kMaxChunkBytes = 64u << 20;
constexpr size_t kGrain = 8;

struct Options {
  std::string data_dir = "/usr/share/datasets/fashion-mnist";
  std::string images = "train-images-idx3-ubyte.gz";
  std::string labels = "train-labels-idx1-ubyte.gz";
  std::string out;  // default: a file in the temp dir, removed afterwards
  int size = 32;
  std::string color = "grayscale";
  int threads = 0;  // 0: every core
  size_t count = 0;  // 0: every image; else the first `count`
};

Result<uint64_t> Run(const Options& options, const ProcessingParams& params, int threads) {
  IMPULSE_ASSIGN_OR_RETURN(const IdxImages images,
                           ReadIdxImages(options.data_dir + "/" + options.images));
  IMPULSE_ASSIGN_OR_RETURN(const std::vector<uint8_t> labels,
                           ReadIdxLabels(options.data_dir + "/" + options.labels));
  if (labels.empty() || labels.size() != images.count) {
    return InvalidArgument("images and labels disagree: " + std::to_string(images.count) +
                           " images, " + std::to_string(labels.size()) + " labels");
  }

  FeatureShape shape;
  shape.channels = params.channels();
  shape.height = params.height;
  shape.width = params.width;
  const uint8_t max_label = *std::max_element(labels.begin(), labels.end());
  for (int label = 0; label <= max_label; ++label) shape.labels.push_back(std::to_string(label));
  const size_t total =
      options.count > 0 ? std::min<size_t>(options.count, images.count) : images.count;
  IMPULSE_ASSIGN_OR_RETURN(std::unique_ptr<FeatureMatrixWriter> writer,
                           FeatureMatrixWriter::Create(options.out, shape, total));

  const size_t image_bytes = static_cast<size_t>(images.rows) * images.cols;
  const size_t row_bytes = params.row_bytes();
  const size_t chunk = std::clamp<size_t>((total + kChunks - 1) / kChunks, 1,
                                          std::max<size_t>(kMaxChunkBytes / row_bytes, 1));
  std::vector<uint8_t> rows(chunk * row_bytes);
  std::vector<ImageProcessor> processors(threads, ImageProcessor(params));
  for (size_t start = 0; start < total; start += chunk) {
    const size_t count = std::min(chunk, total - start);
    ParallelFor(threads, count, kGrain, [&](size_t begin, size_t end, int thread) {
      for (size_t k = begin; k < end; ++k) {
        // A view, as SampleReader hands out for an IDX sample.
        const cv::Mat image(static_cast<int>(images.rows), static_cast<int>(images.cols), CV_8UC1,
                            const_cast<uint8_t*>(images.pixels.data() + (start + k) * image_bytes));
        processors[thread].Process(image, &rows[k * row_bytes]);
      }
    });
    for (size_t k = 0; k < count; ++k) {
      FeatureRowInfo info;
      info.label = labels[start + k];
      info.split = v1::SPLIT_TRAIN;
      info.sample = static_cast<uint32_t>(start + k);
      IMPULSE_RETURN_IF_ERROR(writer->Append(info, &rows[k * row_bytes]));
    }
  }
  IMPULSE_RETURN_IF_ERROR(writer->Finish());
  return writer->rows();
}

int Main(int argc, char** argv) {
  Options options;
  CLI::App app{"Feature generation throughput over an IDX dataset (the worker's path)"};
  app.add_option("--data", options.data_dir, "folder holding the IDX pair");
  app.add_option("--images", options.images, "IDX images file in --data");
  app.add_option("--labels", options.labels, "IDX labels file in --data");
  app.add_option("--out", options.out, "feature matrix to write (kept); default: temp, removed");
  app.add_option("--size", options.size, "output side, pixels")->check(CLI::Range(1, 4096));
  app.add_option("--color", options.color, "grayscale or rgb")
      ->check(CLI::IsMember({"grayscale", "rgb"}));
  app.add_option("--threads", options.threads, "threads; 0 = every core")
      ->check(CLI::NonNegativeNumber);
  app.add_option("--count", options.count, "process only the first N images; 0 = all");
  CLI11_PARSE(app, argc, argv);

  ProcessingParams params;
  params.width = options.size;
  params.height = options.size;
  params.grayscale = options.color == "grayscale";
  const int threads = options.threads > 0
                          ? options.threads
                          : std::max(1, static_cast<int>(std::thread::hardware_concurrency()));
  const bool keep = !options.out.empty();
  if (!keep) {
    options.out = (std::filesystem::temp_directory_path() /
                   ("features_bench." + std::to_string(::getpid()) + ".bin"))
                      .string();
  }
  // As GenerateFeatures does for its duration (OpenCV's count is process-wide).
  cv::setNumThreads(threads);

  const auto start = std::chrono::steady_clock::now();
  Result<uint64_t> images = Run(options, params, threads);
  const double seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  if (!keep) std::filesystem::remove(options.out);
  if (!images.ok()) {
    std::fprintf(stderr, "features_bench: %s\n", images.status().message().c_str());
    return 1;
  }
  std::printf(
      "{\"side\":\"ours\",\"color\":\"%s\",\"size\":%d,\"threads\":%d,\"images\":%llu,"
      "\"seconds\":%.4f,\"images_per_s\":%.0f}\n",
      options.color.c_str(), options.size, threads, static_cast<unsigned long long>(*images),
      seconds, static_cast<double>(*images) / seconds);
  return 0;
}

}  // namespace
}  // namespace impulse::worker::features

int main(int argc, char** argv) { return impulse::worker::features::Main(argc, argv); }
