#include "tests/support/fashion_features.h"

#include <algorithm>
#include <filesystem>
#include <opencv2/core.hpp>

#include "impulse/idx.h"
#include "worker/features/feature_matrix.h"
#include "worker/features/processing.h"

namespace impulse::testing {
namespace {

const char* const kLabels[] = {"T-shirt/top", "Trouser", "Pullover", "Dress", "Coat",
                               "Sandal",      "Shirt",   "Sneaker",  "Bag",   "Ankle boot"};

}  // namespace

bool HasFashionMnist(const std::string& dir) {
  for (const char* f : {"train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz",
                        "t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz"}) {
    if (!std::filesystem::exists(dir + "/" + f)) return false;
  }
  return true;
}

Status WriteFashionMnistFeatures(const v1::Impulse& impulse, uint32_t train_count,
                                 uint32_t test_count, const std::string& path,
                                 const std::string& dir) {
  IMPULSE_ASSIGN_OR_RETURN(const worker::features::ProcessingParams params,
                           worker::features::ProcessingParamsFromImpulse(impulse));
  worker::features::FeatureShape shape{.channels = static_cast<uint32_t>(params.channels()),
                                       .height = params.height,
                                       .width = params.width};
  shape.labels.assign(std::begin(kLabels), std::end(kLabels));
  IMPULSE_ASSIGN_OR_RETURN(auto writer, worker::features::FeatureMatrixWriter::Create(
                                            path, shape, uint64_t{train_count} + test_count));
  worker::features::ImageProcessor processor(params);
  std::vector<uint8_t> row(shape.row_bytes());
  uint32_t sample = 0;
  for (const auto& [prefix, split, count] :
       {std::tuple<std::string, uint8_t, uint32_t>{"train", 1, train_count},
        {"t10k", 2, test_count}}) {
    IMPULSE_ASSIGN_OR_RETURN(const IdxImages images,
                             ReadIdxImages(dir + "/" + prefix + "-images-idx3-ubyte.gz"));
    IMPULSE_ASSIGN_OR_RETURN(const std::vector<uint8_t> labels,
                             ReadIdxLabels(dir + "/" + prefix + "-labels-idx1-ubyte.gz"));
    for (uint32_t i = 0; i < std::min(count, images.count); ++i) {
      cv::Mat image(
          images.rows, images.cols, CV_8UC1,
          const_cast<uint8_t*>(images.pixels.data()) + size_t{i} * images.rows * images.cols);
      processor.Process(image, row.data());
      IMPULSE_RETURN_IF_ERROR((*writer).Append({labels[i], split, sample++}, row.data()));
    }
  }
  return writer->Finish();
}

}  // namespace impulse::testing
