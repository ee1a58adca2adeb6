#include "worker/features/processing.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <opencv2/imgproc.hpp>
#include <string>

namespace impulse::worker::features {
namespace {

constexpr uint32_t kMaxSide = 4096;

int InterpolationFor(cv::Size from, cv::Size to) {
  return (to.width <= from.width && to.height <= from.height) ? cv::INTER_AREA : cv::INTER_LINEAR;
}

void ResizeTo(const cv::Mat& src, cv::Size size, cv::Mat& dst) {
  if (src.size() == size) {
    src.copyTo(dst);
  } else {
    cv::resize(src, dst, size, 0, 0, InterpolationFor(src.size(), size));
  }
}

}  // namespace

Result<ProcessingParams> ProcessingParamsFromImpulse(const v1::Impulse& impulse) {
  ProcessingParams params;
  const v1::InputBlock& input = impulse.input();
  if (input.width() == 0 || input.height() == 0 || input.width() > kMaxSide ||
      input.height() > kMaxSide) {
    return InvalidArgument("input: width and height must be 1.." + std::to_string(kMaxSide) +
                           ", got " + std::to_string(input.width()) + "x" +
                           std::to_string(input.height()));
  }
  params.width = static_cast<int>(input.width());
  params.height = static_cast<int>(input.height());
  switch (input.resize()) {
    case v1::RESIZE_MODE_UNSPECIFIED:
    case v1::RESIZE_MODE_SQUASH:
      params.resize = v1::RESIZE_MODE_SQUASH;
      break;
    case v1::RESIZE_MODE_FIT_SHORTEST:
    case v1::RESIZE_MODE_FIT_LONGEST:
      params.resize = input.resize();
      break;
    default:
      return InvalidArgument("input: unknown resize mode " + std::to_string(input.resize()));
  }
  switch (impulse.processing().color()) {
    case v1::COLOR_DEPTH_UNSPECIFIED:
    case v1::COLOR_DEPTH_RGB:
      params.grayscale = false;
      break;
    case v1::COLOR_DEPTH_GRAYSCALE:
      params.grayscale = true;
      break;
    default:
      return InvalidArgument("processing: unknown color " +
                             std::to_string(impulse.processing().color()));
  }
  switch (impulse.processing().block()) {
    case v1::PROCESSING_KIND_UNSPECIFIED:  // the studio's default block
    case v1::PROCESSING_KIND_IMAGE:
      params.flattened = false;
      break;
    case v1::PROCESSING_KIND_RAW:
      params.flattened = true;
      break;
    default:
      return InvalidArgument("processing: unknown block " +
                             std::to_string(impulse.processing().block()));
  }
  return params;
}

void ResizeImage(const cv::Mat& src, int width, int height, v1::ResizeMode mode, cv::Mat& dst) {
  const cv::Size target(width, height);
  const int w = src.cols;
  const int h = src.rows;
  switch (mode) {
    case v1::RESIZE_MODE_FIT_SHORTEST: {
      // Compare aspect ratios exactly in integers: w/h against W/H.
      const int64_t lhs = static_cast<int64_t>(w) * height;
      const int64_t rhs = static_cast<int64_t>(h) * width;
      cv::Rect crop(0, 0, w, h);
      if (lhs > rhs) {  // source is wider: keep the full height
        crop.width = std::clamp(
            static_cast<int>(std::lround(static_cast<double>(h) * width / height)), 1, w);
        crop.x = (w - crop.width) / 2;
      } else if (lhs < rhs) {  // source is taller: keep the full width
        crop.height = std::clamp(
            static_cast<int>(std::lround(static_cast<double>(w) * height / width)), 1, h);
        crop.y = (h - crop.height) / 2;
      }
      ResizeTo(src(crop), target, dst);
      return;
    }
    case v1::RESIZE_MODE_FIT_LONGEST: {
      const double scale =
          std::min(static_cast<double>(width) / w, static_cast<double>(height) / h);
      const cv::Size scaled(std::clamp(static_cast<int>(std::lround(w * scale)), 1, width),
                            std::clamp(static_cast<int>(std::lround(h * scale)), 1, height));
      dst.create(target, src.type());
      dst.setTo(cv::Scalar::all(0));
      cv::Mat inner = dst(cv::Rect((width - scaled.width) / 2, (height - scaled.height) / 2,
                                   scaled.width, scaled.height));
      // Resizing straight into the ROI: cv::resize keeps a destination that
      // already has the right size and type.
      ResizeTo(src, scaled, inner);
      return;
    }
    default:
      ResizeTo(src, target, dst);
      return;
  }
}

void ImageProcessor::Process(const cv::Mat& image, uint8_t* row) {
  const int plane = params_.width * params_.height;
  const cv::Mat* source = &image;
  if (params_.grayscale && image.channels() == 3) {
    cv::cvtColor(image, gray_, cv::COLOR_BGR2GRAY);
    source = &gray_;
  }
  ResizeImage(*source, params_.width, params_.height, params_.resize, resized_);
  // resized_ is continuous: create()/resize() allocate it whole.
  if (resized_.channels() == 1) {
    std::memcpy(row, resized_.data, plane);
    if (!params_.grayscale) {
      std::memcpy(row + plane, row, plane);
      std::memcpy(row + 2 * plane, row, plane);
    }
    return;
  }
  // BGR interleaved -> R, G, B planes, written in place through Mat headers
  // over `row` (cv::split keeps destinations of the right size and type).
  cv::Mat planes[3] = {cv::Mat(params_.height, params_.width, CV_8UC1, row + 2 * plane),
                       cv::Mat(params_.height, params_.width, CV_8UC1, row + plane),
                       cv::Mat(params_.height, params_.width, CV_8UC1, row)};
  cv::split(resized_, planes);
}

std::vector<uint8_t> ProcessImage(const cv::Mat& image, const v1::Impulse& impulse) {
  Result<ProcessingParams> params = ProcessingParamsFromImpulse(impulse);
  if (!params.ok() || image.empty() || image.depth() != CV_8U ||
      (image.channels() != 1 && image.channels() != 3)) {
    return {};
  }
  std::vector<uint8_t> row(params->row_bytes());
  ImageProcessor processor(*params);
  processor.Process(image, row.data());
  return row;
}

cv::Mat FeatureRowToMat(const uint8_t* row, int channels, int height, int width) {
  const size_t plane = static_cast<size_t>(height) * width;
  if (channels == 1) {
    return cv::Mat(height, width, CV_8UC1, const_cast<uint8_t*>(row)).clone();
  }
  // Planes are R, G, B; OpenCV draws B, G, R.
  const cv::Mat planes[3] = {cv::Mat(height, width, CV_8UC1, const_cast<uint8_t*>(row + 2 * plane)),
                             cv::Mat(height, width, CV_8UC1, const_cast<uint8_t*>(row + plane)),
                             cv::Mat(height, width, CV_8UC1, const_cast<uint8_t*>(row))};
  cv::Mat bgr;
  cv::merge(planes, 3, bgr);
  return bgr;
}

}  // namespace impulse::worker::features
