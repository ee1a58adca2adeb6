#include "worker/features/generate_features.h"

#include <algorithm>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <new>
#include <opencv2/core.hpp>

#include "worker/features/feature_matrix.h"
#include "worker/features/image_source.h"
#include "worker/features/parallel.h"
#include "worker/features/plots.h"
#include "worker/features/processing.h"
#include "worker/features/projection.h"

namespace impulse::worker::features {
namespace {

// Shares of the task's progress bar.
constexpr double kProcessingShare = 0.8;
constexpr double kExplorerShare = 0.15;
constexpr size_t kProgressSteps = 50;  // one report per ~2 % of the samples
constexpr size_t kMaxChunkBytes = 64u << 20;
constexpr size_t kMaxSkippedNames = 100;
constexpr size_t kMaxSkippedLogs = 1000;
constexpr size_t kPreviewItems = 8;

// OpenCV's thread count is process-wide; this task sets it for its duration.
class ScopedOpenCvThreads {
 public:
  explicit ScopedOpenCvThreads(int threads) : previous_(cv::getNumThreads()) {
    cv::setNumThreads(threads);
  }
  ~ScopedOpenCvThreads() { cv::setNumThreads(previous_); }
  ScopedOpenCvThreads(const ScopedOpenCvThreads&) = delete;
  ScopedOpenCvThreads& operator=(const ScopedOpenCvThreads&) = delete;

 private:
  int previous_;
};

std::string CsvField(const std::string& text) {
  if (text.find_first_of(",\"\r\n") == std::string::npos) return text;
  std::string out = "\"";
  for (char c : text) {
    if (c == '"') out += '"';
    out += c;
  }
  return out + "\"";
}

Status WriteExplorerCsv(const std::string& path, const std::vector<v1::ExplorerPoint>& points,
                        const std::vector<std::string>& labels) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  if (!out) return Internal(path + ": cannot create");
  out << "x,y,label,sample,split\n";
  char xy[64];
  for (const v1::ExplorerPoint& p : points) {
    std::snprintf(xy, sizeof(xy), "%.6g,%.6g", p.x(), p.y());
    out << xy << ',' << CsvField(labels[p.label()]) << ',' << p.sample() << ','
        << (p.split() == v1::SPLIT_TEST ? "test" : "train") << '\n';
  }
  out.close();
  if (!out) return Internal(path + ": write failed");
  return Status::Ok();
}

// The rows for preview.png: the first row of each label, then the next rows
// in order, up to kPreviewItems.
std::vector<uint64_t> PreviewRows(const FeatureMatrix& matrix) {
  std::vector<uint64_t> rows;
  std::vector<bool> label_seen(matrix.shape().labels.size(), false);
  for (uint64_t i = 0; i < matrix.rows() && rows.size() < kPreviewItems; ++i) {
    if (!label_seen[matrix.info(i).label]) {
      label_seen[matrix.info(i).label] = true;
      rows.push_back(i);
    }
  }
  for (uint64_t i = 0; i < matrix.rows() && rows.size() < kPreviewItems; ++i) {
    if (std::find(rows.begin(), rows.end(), i) == rows.end()) rows.push_back(i);
  }
  std::sort(rows.begin(), rows.end());
  return rows;
}

Result<v1::Artifact> Upload(TaskContext& ctx, const std::string& path, const std::string& name) {
  IMPULSE_ASSIGN_OR_RETURN(std::string sha256, ctx.PutBlob(path));
  std::error_code ec;
  const uintmax_t size = std::filesystem::file_size(path, ec);
  if (ec) return Internal(path + ": " + ec.message());
  v1::Artifact artifact;
  artifact.set_name(name);
  artifact.set_sha256(sha256);
  artifact.set_size(size);
  return artifact;
}

Result<v1::TaskOutput> Run(const v1::TaskSpec& spec, TaskContext& ctx) {
  IMPULSE_ASSIGN_OR_RETURN(const ProcessingParams params,
                           ProcessingParamsFromImpulse(spec.impulse()));
  const int threads = std::max(ctx.Threads(), 1);
  const ScopedOpenCvThreads opencv_threads(threads);

  IMPULSE_ASSIGN_OR_RETURN(const std::string manifest_path, ctx.BlobPath(spec.dataset_sha256()));
  IMPULSE_ASSIGN_OR_RETURN(const v1::DatasetManifest manifest, ReadManifest(manifest_path));
  const std::string dataset =
      "dataset '" + manifest.name() + "' (" + spec.dataset_sha256().substr(0, 12) + ")";
  const std::vector<std::string> labels(manifest.labels().begin(), manifest.labels().end());
  if (labels.empty()) return InvalidArgument(dataset + " has no labels");
  const size_t total = manifest.samples_size();
  if (total == 0) return InvalidArgument(dataset + " has no samples");

  FeatureShape shape;
  shape.flags = params.flattened ? kFeatureFlagFlattened : 0;
  shape.channels = params.channels();
  shape.height = params.height;
  shape.width = params.width;
  shape.labels = labels;
  const std::string matrix_path = ctx.ScratchDir() + "/features.bin";
  IMPULSE_ASSIGN_OR_RETURN(std::unique_ptr<FeatureMatrixWriter> writer,
                           FeatureMatrixWriter::Create(matrix_path, shape, total));

  // Samples go through in chunks: threads fill a chunk's rows, then this
  // thread appends the readable ones in manifest order, so the matrix (and
  // its sha256) does not depend on the thread count.
  SampleReader reader(manifest, [&ctx](const std::string& sha256) { return ctx.BlobPath(sha256); });
  const size_t row_bytes = params.row_bytes();
  const size_t chunk = std::clamp<size_t>((total + kProgressSteps - 1) / kProgressSteps, 1,
                                          std::max<size_t>(kMaxChunkBytes / row_bytes, 1));
  std::vector<uint8_t> rows(chunk * row_bytes);
  std::vector<Status> row_status(chunk);
  std::vector<ImageProcessor> processors(threads, ImageProcessor(params));
  v1::FeatureResults features;
  Status first_error;
  for (size_t start = 0; start < total; start += chunk) {
    if (ctx.StopRequested()) {
      return Cancelled("generate-features stopped after " + std::to_string(start) + " of " +
                       std::to_string(total) + " samples");
    }
    const size_t count = std::min(chunk, total - start);
    ParallelFor(threads, count, 8, [&](size_t begin, size_t end, int thread) {
      for (size_t k = begin; k < end; ++k) {
        const auto index = static_cast<uint32_t>(start + k);
        const v1::Sample& sample = manifest.samples(index);
        if (sample.label() >= labels.size()) {
          row_status[k] = InvalidArgument(reader.SampleName(index) + ": label " +
                                          std::to_string(sample.label()) + " out of range of " +
                                          std::to_string(labels.size()) + " labels");
          continue;
        }
        Result<cv::Mat> image = reader.Read(index);
        if (!image.ok()) {
          row_status[k] = image.status();
          continue;
        }
        try {
          processors[thread].Process(*image, &rows[k * row_bytes]);
          row_status[k] = Status::Ok();
        } catch (const cv::Exception& e) {
          row_status[k] =
              InvalidArgument(reader.SampleName(index) + ": processing failed: " + e.what());
        }
      }
    });
    for (size_t k = 0; k < count; ++k) {
      const auto index = static_cast<uint32_t>(start + k);
      if (!row_status[k].ok()) {
        if (first_error.ok()) first_error = row_status[k];
        if (features.skipped() < kMaxSkippedLogs) {
          ctx.Log("skipped " + row_status[k].message());
        } else if (features.skipped() == kMaxSkippedLogs) {
          ctx.Log("more samples skipped; only the first " + std::to_string(kMaxSkippedLogs) +
                  " are logged");
        }
        if (features.skipped_names_size() < static_cast<int>(kMaxSkippedNames)) {
          features.add_skipped_names(reader.SampleName(index));
        }
        features.set_skipped(features.skipped() + 1);
        continue;
      }
      const v1::Sample& sample = manifest.samples(index);
      FeatureRowInfo info;
      info.label = sample.label();
      info.split = sample.split() == v1::SPLIT_TEST ? v1::SPLIT_TEST : v1::SPLIT_TRAIN;
      info.sample = index;
      IMPULSE_RETURN_IF_ERROR(writer->Append(info, &rows[k * row_bytes]));
    }
    ctx.ReportProgress(
        kProcessingShare * static_cast<double>(start + count) / total,
        "processed " + std::to_string(start + count) + " of " + std::to_string(total) + " samples");
  }
  IMPULSE_RETURN_IF_ERROR(writer->Finish());
  if (writer->rows() == 0) {
    return InvalidArgument(dataset + ": none of its " + std::to_string(total) +
                           " samples could be read; the first error: " + first_error.message());
  }
  writer.reset();
  rows = {};  // the chunk buffer is no longer needed; the matrix is mapped next
  ctx.Log("features: " + std::to_string(features.skipped()) + " of " + std::to_string(total) +
          " samples skipped");

  IMPULSE_ASSIGN_OR_RETURN(const FeatureMatrix matrix, FeatureMatrix::Open(matrix_path));
  ctx.ReportProgress(kProcessingShare, "feature explorer");
  ExplorerOptions options;
  options.seed = spec.impulse().training().seed() == 0 ? 1 : spec.impulse().training().seed();
  options.tsne.threads = threads;
  options.tsne.stop = [&ctx] { return ctx.StopRequested(); };
  IMPULSE_ASSIGN_OR_RETURN(const Projection projection, ProjectFeatures(matrix, options));
  ctx.ReportProgress(kProcessingShare + kExplorerShare, "pictures");

  const std::string& scratch = ctx.ScratchDir();
  IMPULSE_RETURN_IF_ERROR(WriteExplorerPng(scratch + "/feature_explorer.png", projection.points,
                                           labels, projection.name));
  IMPULSE_RETURN_IF_ERROR(
      WriteExplorerCsv(scratch + "/feature_explorer.csv", projection.points, labels));
  std::vector<PreviewItem> preview;
  for (uint64_t row : PreviewRows(matrix)) {
    const FeatureRowInfo& info = matrix.info(row);
    Result<cv::Mat> original = reader.Read(info.sample);
    if (!original.ok()) continue;  // it was readable a moment ago; a preview can do without
    PreviewItem& item = preview.emplace_back();
    item.original = *original;
    item.processed = FeatureRowToMat(matrix.pixels(row), shape.channels, shape.height, shape.width);
    item.caption = labels[info.label] + "  #" + std::to_string(info.sample);
  }
  IMPULSE_RETURN_IF_ERROR(WritePreviewPng(scratch + "/preview.png", preview));

  v1::TaskOutput output;
  IMPULSE_ASSIGN_OR_RETURN(const std::string features_sha256, ctx.PutBlob(matrix_path));
  (*output.mutable_blobs())["features"] = features_sha256;
  for (const char* name : {"feature_explorer.png", "feature_explorer.csv", "preview.png"}) {
    IMPULSE_ASSIGN_OR_RETURN(v1::Artifact artifact, Upload(ctx, scratch + "/" + name, name));
    *output.add_artifacts() = std::move(artifact);
  }

  features.set_features_sha256(features_sha256);
  features.set_samples(matrix.rows());
  features.set_channels(shape.channels);
  features.set_height(shape.height);
  features.set_width(shape.width);
  features.set_projection(projection.name);
  for (const v1::ExplorerPoint& point : projection.points) *features.add_explorer() = point;
  v1::JobResults& results = *output.mutable_results();
  for (const std::string& label : labels) results.add_labels(label);
  *results.mutable_features() = std::move(features);
  ctx.ReportProgress(1.0, "features done");
  return output;
}

}  // namespace

Result<v1::DatasetManifest> ReadManifest(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return NotFound(path + ": cannot open the dataset manifest");
  v1::DatasetManifest manifest;
  if (!manifest.ParseFromIstream(&in)) {
    return InvalidArgument(path + ": not a dataset manifest (parse failed)");
  }
  return manifest;
}

Result<v1::TaskOutput> GenerateFeatures(const v1::TaskSpec& spec, TaskContext& ctx) {
  // OpenCV may throw from the steps that are not per sample (pictures,
  // eigen); per-sample failures are caught where they happen.
  try {
    return Run(spec, ctx);
  } catch (const cv::Exception& e) {
    return Internal(std::string("generate-features: OpenCV: ") + e.what());
  } catch (const std::bad_alloc&) {
    return ResourceExhausted("generate-features: out of memory");
  } catch (const std::exception& e) {
    return Internal(std::string("generate-features: ") + e.what());
  }
}

}  // namespace impulse::worker::features
