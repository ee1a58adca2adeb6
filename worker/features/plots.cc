#include "worker/features/plots.h"

#include <algorithm>
#include <cmath>
#include <numeric>
#include <opencv2/imgcodecs.hpp>
#include <opencv2/imgproc.hpp>

namespace impulse::worker::features {
namespace {

constexpr int kFont = cv::FONT_HERSHEY_SIMPLEX;
const cv::Scalar kWhite(255, 255, 255);
const cv::Scalar kText(40, 40, 40);
const cv::Scalar kFrame(200, 200, 200);

// RGB hex, strongest first; light colours last since they fade on white.
constexpr uint32_t kPalette[] = {0xe6194b, 0x4363d8, 0x3cb44b, 0xf58231, 0x911eb4,
                                 0x42d4f4, 0xf032e6, 0x9a6324, 0x469990, 0x000075,
                                 0x808000, 0x800000, 0xbfef45, 0x808080, 0xd4b000,
                                 0xfabed4, 0xdcbeff, 0xffd8b1, 0xaaffc3, 0x000000};

cv::Mat ToBgr(const cv::Mat& image) {
  if (image.channels() == 3) return image;
  cv::Mat bgr;
  cv::cvtColor(image, bgr, cv::COLOR_GRAY2BGR);
  return bgr;
}

// `image` drawn into `canvas` at `box`, centred, keeping its aspect ratio.
// nearest: scale by a whole factor with INTER_NEAREST (shrinking if needed).
void DrawFitted(const cv::Mat& image, cv::Mat& canvas, cv::Rect box, bool nearest) {
  if (image.empty()) return;
  double scale = std::min(static_cast<double>(box.width) / image.cols,
                          static_cast<double>(box.height) / image.rows);
  int interpolation = scale < 1 ? cv::INTER_AREA : cv::INTER_LINEAR;
  if (nearest && scale >= 1) {
    scale = std::floor(scale);
    interpolation = cv::INTER_NEAREST;
  }
  const cv::Size size(std::max(1, static_cast<int>(image.cols * scale)),
                      std::max(1, static_cast<int>(image.rows * scale)));
  cv::Mat resized;
  cv::resize(ToBgr(image), resized, size, 0, 0, interpolation);
  const cv::Rect at(box.x + (box.width - size.width) / 2, box.y + (box.height - size.height) / 2,
                    size.width, size.height);
  resized.copyTo(canvas(at));
  cv::rectangle(canvas, at, kFrame, 1);
}

}  // namespace

cv::Scalar ClassColor(uint32_t label) {
  constexpr uint32_t kFixed = sizeof(kPalette) / sizeof(kPalette[0]);
  if (label < kFixed) {
    const uint32_t rgb = kPalette[label];
    return cv::Scalar(rgb & 0xFF, (rgb >> 8) & 0xFF, (rgb >> 16) & 0xFF);
  }
  // OpenCV's 8-bit hue runs 0..180; golden-angle steps keep neighbours apart.
  const double hue = std::fmod((label - kFixed) * 137.508, 360.0) / 2.0;
  const cv::Mat hsv(1, 1, CV_8UC3, cv::Scalar(hue, 200, (label % 2 == 0) ? 210 : 150));
  cv::Mat bgr;
  cv::cvtColor(hsv, bgr, cv::COLOR_HSV2BGR);
  const cv::Vec3b c = bgr.at<cv::Vec3b>(0, 0);
  return cv::Scalar(c[0], c[1], c[2]);
}

Status WriteExplorerPng(const std::string& path, const std::vector<v1::ExplorerPoint>& points,
                        const std::vector<std::string>& labels, const std::string& projection) {
  constexpr int kWidth = 800, kHeight = 600, kLegendWidth = 190, kMargin = 16, kTop = 40;
  cv::Mat canvas(kHeight, kWidth, CV_8UC3, kWhite);
  const std::string title = "Feature explorer (" + PlotText(projection, 24) + "), " +
                            std::to_string(points.size()) + " samples";
  cv::putText(canvas, title, {kMargin, 24}, kFont, 0.55, kText, 1, cv::LINE_AA);
  const cv::Rect plot(kMargin, kTop, kWidth - kLegendWidth - 2 * kMargin, kHeight - kTop - kMargin);
  cv::rectangle(canvas, plot, kFrame, 1);

  if (!points.empty()) {
    float min_x = points[0].x(), max_x = min_x, min_y = points[0].y(), max_y = min_y;
    for (const v1::ExplorerPoint& p : points) {
      min_x = std::min(min_x, p.x());
      max_x = std::max(max_x, p.x());
      min_y = std::min(min_y, p.y());
      max_y = std::max(max_y, p.y());
    }
    const float span_x = std::max(max_x - min_x, 1e-6f);
    const float span_y = std::max(max_y - min_y, 1e-6f);
    constexpr int kInset = 8;
    // Drawing in a fixed scrambled order keeps the last class from covering
    // the others wherever classes overlap.
    std::vector<size_t> order(points.size());
    std::iota(order.begin(), order.end(), 0);
    for (size_t i = 0; i < order.size(); ++i) {
      std::swap(order[i], order[(i * 2654435761u) % order.size()]);
    }
    for (size_t i : order) {
      const v1::ExplorerPoint& p = points[i];
      const cv::Point at(
          plot.x + kInset + static_cast<int>((p.x() - min_x) / span_x * (plot.width - 2 * kInset)),
          plot.y + kInset +
              static_cast<int>((max_y - p.y()) / span_y * (plot.height - 2 * kInset)));
      const bool test = p.split() == 2;
      cv::circle(canvas, at, 3, ClassColor(p.label()), test ? 1 : cv::FILLED, cv::LINE_AA);
    }
  }

  // Legend: one row per class, smaller rows when there are many, and a
  // "+N more" line when even those do not fit.
  const int legend_x = kWidth - kLegendWidth;
  const int available = kHeight - kTop - kMargin - 20;
  const int row_height =
      std::clamp(labels.empty() ? 18 : available / static_cast<int>(labels.size()), 10, 18);
  const size_t shown = std::min(labels.size(), static_cast<size_t>(available / row_height));
  const double font_scale = row_height >= 16 ? 0.45 : 0.33;
  for (size_t c = 0; c < shown; ++c) {
    const int y = kTop + 8 + static_cast<int>(c) * row_height;
    cv::circle(canvas, {legend_x + 6, y}, 4, ClassColor(static_cast<uint32_t>(c)), cv::FILLED,
               cv::LINE_AA);
    cv::putText(canvas, PlotText(labels[c], 24), {legend_x + 16, y + 4}, kFont, font_scale, kText, 1,
                cv::LINE_AA);
  }
  if (shown < labels.size()) {
    cv::putText(canvas, "+" + std::to_string(labels.size() - shown) + " more",
                {legend_x + 16, kTop + 8 + static_cast<int>(shown) * row_height + 4}, kFont,
                font_scale, kText, 1, cv::LINE_AA);
  }
  cv::putText(canvas, "filled: train  ring: test", {legend_x, kHeight - kMargin}, kFont, 0.4, kText,
              1, cv::LINE_AA);
  return WritePng(path, canvas);
}

Status WritePreviewPng(const std::string& path, const std::vector<PreviewItem>& items) {
  constexpr int kBox = 128, kGap = 8, kColumns = 4, kCaption = 40;
  constexpr int kCellWidth = 2 * kBox + 3 * kGap;
  constexpr int kCellHeight = kBox + kCaption + 2 * kGap;
  const int shown = std::min<int>(static_cast<int>(items.size()), 8);
  const int columns = std::clamp(shown, 1, kColumns);
  const int rows = std::max(1, (shown + kColumns - 1) / kColumns);
  cv::Mat canvas(rows * kCellHeight + 28, columns * kCellWidth, CV_8UC3, cv::Scalar(235, 235, 235));
  cv::putText(canvas, "original | processed", {kGap, 20}, kFont, 0.5, kText, 1, cv::LINE_AA);
  for (int k = 0; k < shown; ++k) {
    const PreviewItem& item = items[k];
    const int x = (k % kColumns) * kCellWidth;
    const int y = 28 + (k / kColumns) * kCellHeight;
    DrawFitted(item.original, canvas, {x + kGap, y + kGap, kBox, kBox}, false);
    DrawFitted(item.processed, canvas, {x + 2 * kGap + kBox, y + kGap, kBox, kBox}, true);
    const std::string sizes =
        std::to_string(item.original.cols) + "x" + std::to_string(item.original.rows) + " -> " +
        std::to_string(item.processed.cols) + "x" + std::to_string(item.processed.rows) +
        (item.processed.channels() == 1 ? " gray" : " rgb");
    cv::putText(canvas, PlotText(item.caption, 36), {x + kGap, y + kBox + kGap + 16}, kFont, 0.42,
                kText, 1, cv::LINE_AA);
    cv::putText(canvas, sizes, {x + kGap, y + kBox + kGap + 34}, kFont, 0.42, kText, 1,
                cv::LINE_AA);
  }
  return WritePng(path, canvas);
}

std::string PlotText(const std::string& text, size_t max_chars) {
  std::string out;
  for (char c : text) {
    if (out.size() == max_chars) {
      out.back() = '~';
      break;
    }
    out.push_back((c >= 32 && c < 127) ? c : '?');
  }
  return out;
}

Status WritePng(const std::string& path, const cv::Mat& image) {
  try {
    if (cv::imwrite(path, image)) return Status::Ok();
  } catch (const cv::Exception& e) {
    return Internal(path + ": cv::imwrite failed: " + e.what());
  }
  return Internal(path + ": cv::imwrite failed");
}

}  // namespace impulse::worker::features
