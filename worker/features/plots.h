// The pictures of feature generation, as PNG files (cv::imwrite).
//
// Thread safety: the functions share nothing. Failures: Internal when the
// file cannot be encoded or written; the message names the path. Text is
// drawn with OpenCV's Hershey font, ASCII only: other bytes show as '?'.
#pragma once

#include <cstdint>
#include <opencv2/core.hpp>
#include <string>
#include <vector>

#include "impulse/status.h"
#include "impulse/v1/results.pb.h"

namespace impulse::worker::features {

// The colour of class `label` (BGR): 20 hand-picked colours that stay apart
// on white, then golden-angle hues.
cv::Scalar ClassColor(uint32_t label);

// feature_explorer.png: 800 x 600, the points scaled to fill the plot area,
// coloured by class (train filled, test as rings), a legend of class names on
// the right, and a title naming the projection.
Status WriteExplorerPng(const std::string& path, const std::vector<v1::ExplorerPoint>& points,
                        const std::vector<std::string>& labels, const std::string& projection);

// One sample of preview.png.
struct PreviewItem {
  cv::Mat original;     // as decoded: 8-bit gray or BGR
  cv::Mat processed;    // the feature row as an image (FeatureRowToMat)
  std::string caption;  // e.g. "cat  #12"
};

// preview.png: up to 8 items in a grid, each the original (fitted into
// 128 x 128) beside the processed image (scaled up by a whole factor,
// nearest neighbour, so single pixels and letterbox zeros stay visible),
// with the caption and both sizes beneath.
Status WritePreviewPng(const std::string& path, const std::vector<PreviewItem>& items);

// Helpers every picture of the worker uses (the evaluation's too).
// `text` cut to max_chars (the last shown as '~') with non-ASCII bytes as
// '?': OpenCV's Hershey fonts draw ASCII only.
std::string PlotText(const std::string& text, size_t max_chars);
// cv::imwrite as a Status naming the path.
Status WritePng(const std::string& path, const cv::Mat& image);

}  // namespace impulse::worker::features
