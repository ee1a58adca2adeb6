// The input and processing blocks: one decoded image in, one feature row out.
//
// A feature row is uint8, planar [C, H, W], channels in the order R, G, B
// (or one gray plane). Features stay uint8 on disk and in memory; the model's
// input is exactly these values / 255 (docs/IMPULSE.md), so the float
// conversion happens once, in the learning block.
//
// Pipeline, in this order (each step is hand-checkable):
//  1. Colour: GRAYSCALE converts a BGR source first, with cv::cvtColor's
//     BT.601 luma (0.299 R + 0.587 G + 0.114 B, 14-bit fixed point, rounded).
//     Converting before resizing does a third of the resize work; the two
//     orders differ by at most a rounding step.
//  2. Resize to W x H:
//       SQUASH        cv::resize of the whole image to W x H;
//       FIT_SHORTEST  the largest centred region with W:H's aspect ratio
//                     (cropping floors the offset: the extra column, if any,
//                     is dropped on the right / bottom), resized to W x H;
//       FIT_LONGEST   the whole image scaled by min(W/w, H/h), each side
//                     rounded and at least 1, placed at offset
//                     ((W - w') / 2, (H - h') / 2) (floored) on zeros.
//     Interpolation: INTER_AREA when no axis grows (a box average, no
//     aliasing), else INTER_LINEAR; a same-size step is a plain copy.
//  3. Planar output: RGB writes R, G, B planes (a gray source's plane is
//     repeated three times); GRAYSCALE writes the one plane.
// RAW processing uses the same pixels, flattened: the bytes are identical,
// and the feature matrix keeps C, H, W with kFeatureFlagFlattened set so the
// learning block knows to treat a row as one vector of C*H*W values.
#pragma once

#include <cstddef>
#include <cstdint>
#include <opencv2/core.hpp>
#include <vector>

#include "impulse/status.h"
#include "impulse/v1/impulse.pb.h"

namespace impulse::worker::features {

// The processing of one impulse, with its defaults resolved.
struct ProcessingParams {
  int width = 0;   // pixels
  int height = 0;  // pixels
  v1::ResizeMode resize = v1::RESIZE_MODE_SQUASH;
  bool grayscale = false;  // one channel; else R, G, B
  bool flattened = false;  // RAW processing block

  int channels() const { return grayscale ? 1 : 3; }
  size_t row_bytes() const {
    return static_cast<size_t>(channels()) * static_cast<size_t>(height) * width;
  }
};

// InvalidArgument when width or height is 0 or over 4096, or an enum is out of range.
Result<ProcessingParams> ProcessingParamsFromImpulse(const v1::Impulse& impulse);

// Step 2 alone: an 8-bit image (any channel count) resized to width x height
// by `mode`; the channel count is kept. `dst` may be reused between calls.
void ResizeImage(const cv::Mat& src, int width, int height, v1::ResizeMode mode, cv::Mat& dst);

// Turns images into feature rows, reusing its scratch buffers between calls:
// one per thread (not thread-safe), cheap to construct.
class ImageProcessor {
 public:
  explicit ImageProcessor(const ProcessingParams& params) : params_(params) {}

  const ProcessingParams& params() const { return params_; }

  // Writes params().row_bytes() bytes at `row`. REQUIRES: `image` is 8-bit
  // with 1 or 3 (BGR) channels and not empty. May throw cv::Exception (out of
  // memory inside OpenCV); callers catch it at the task boundary.
  void Process(const cv::Mat& image, uint8_t* row);

 private:
  ProcessingParams params_;
  cv::Mat gray_;
  cv::Mat resized_;
};

// One image, for callers without a pipeline (benchmarks, tests). Empty on an
// invalid impulse or an image that is empty or not 8-bit 1/3-channel.
std::vector<uint8_t> ProcessImage(const cv::Mat& image, const v1::Impulse& impulse);

// A feature row back into an image OpenCV can draw: 1-channel gray or
// 3-channel BGR, height x width. For previews.
cv::Mat FeatureRowToMat(const uint8_t* row, int channels, int height, int width);

}  // namespace impulse::worker::features
