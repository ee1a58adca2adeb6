#include "worker/evaluation/plots.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <opencv2/imgproc.hpp>

#include "worker/features/plots.h"

namespace impulse::worker::evaluation {
namespace {

constexpr int kFont = cv::FONT_HERSHEY_SIMPLEX;
const cv::Scalar kWhite(255, 255, 255);
const cv::Scalar kText(40, 40, 40);
const cv::Scalar kGrid(225, 225, 225);
const cv::Scalar kAxis(120, 120, 120);
// BGR: blue for train, orange for validation (readable by most colour-blind
// viewers, and on grey print as two different darknesses).
const cv::Scalar kTrainColor(180, 119, 31);
const cv::Scalar kValidationColor(14, 127, 255);

std::string Format(const char* format, double value) {
  char buffer[32];
  std::snprintf(buffer, sizeof(buffer), format, value);
  return buffer;
}

int TextWidth(const std::string& text, double scale) {
  int baseline = 0;
  return cv::getTextSize(text, kFont, scale, 1, &baseline).width;
}

// `text` turned 90 degrees clockwise (read top to bottom), its top edge
// centred on `top_centre`; clipped to the canvas.
void PutTextVertical(cv::Mat& canvas, const std::string& text, cv::Point top_centre, double scale) {
  int baseline = 0;
  const cv::Size size = cv::getTextSize(text, kFont, scale, 1, &baseline);
  cv::Mat strip(size.height + baseline + 2, size.width + 2, CV_8UC3, kWhite);
  cv::putText(strip, text, {1, size.height + 1}, kFont, scale, kText, 1, cv::LINE_AA);
  cv::Mat turned;
  cv::rotate(strip, turned, cv::ROTATE_90_CLOCKWISE);
  cv::Rect at(top_centre.x - turned.cols / 2, top_centre.y, turned.cols, turned.rows);
  at &= cv::Rect(0, 0, canvas.cols, canvas.rows);
  turned(cv::Rect(0, 0, at.width, at.height)).copyTo(canvas(at));
}

}  // namespace

Status WriteConfusionMatrixPng(const std::string& path, const v1::ConfusionMatrix& matrix,
                               const std::vector<std::string>& labels, const std::string& title) {
  const int n = static_cast<int>(matrix.classes());
  if (n == 0 || matrix.counts_size() != n * n || static_cast<int>(labels.size()) != n) {
    return InvalidArgument("confusion matrix: " + std::to_string(matrix.counts_size()) +
                           " counts and " + std::to_string(labels.size()) + " labels for " +
                           std::to_string(n) + " classes");
  }
  const int cell = std::clamp(640 / n, 24, 64);
  const double label_scale = cell >= 40 ? 0.5 : 0.4;
  std::vector<std::string> names;
  int name_width = 0;
  for (const std::string& label : labels) {
    names.push_back(features::PlotText(label, 20));
    name_width = std::max(name_width, TextWidth(names.back(), label_scale));
  }
  constexpr int kMargin = 16, kTitle = 56, kRecallWidth = 80;
  const int left = kMargin + 24 + name_width + 8;  // "true" + the row names
  const int top = kTitle;
  const int grid = cell * n;
  const int width = std::max(left + grid + kRecallWidth + kMargin, 420);
  const int height = top + grid + 8 + name_width + 40 + kMargin;
  cv::Mat canvas(height, width, CV_8UC3, kWhite);

  uint64_t total = 0, correct = 0;
  for (int i = 0; i < n; ++i) {
    for (int j = 0; j < n; ++j) total += matrix.counts(i * n + j);
    correct += matrix.counts(i * n + i);
  }
  const std::string accuracy =
      total == 0 ? "no samples"
                 : Format("accuracy %.2f %%", 100.0 * static_cast<double>(correct) / total) +
                       " of " + std::to_string(total) + " samples";
  cv::putText(canvas, features::PlotText(title, 60), {kMargin, 24}, kFont, 0.6, kText, 1, cv::LINE_AA);
  cv::putText(canvas, accuracy, {kMargin, 44}, kFont, 0.45, kText, 1, cv::LINE_AA);

  const double count_scale = cell >= 48 ? 0.45 : 0.35;
  for (int i = 0; i < n; ++i) {
    uint64_t row_total = 0;
    for (int j = 0; j < n; ++j) row_total += matrix.counts(i * n + j);
    for (int j = 0; j < n; ++j) {
      const uint64_t count = matrix.counts(i * n + j);
      const double fraction = row_total == 0 ? 0 : static_cast<double>(count) / row_total;
      // White -> dark blue (BGR 130, 50, 10).
      const cv::Scalar shade(255 - fraction * 125, 255 - fraction * 205, 255 - fraction * 245);
      const cv::Rect box(left + j * cell, top + i * cell, cell, cell);
      cv::rectangle(canvas, box, shade, cv::FILLED);
      cv::rectangle(canvas, box, kGrid, 1);
      const std::string text = std::to_string(count);
      const int text_width = TextWidth(text, count_scale);
      if (text_width + 4 > cell) continue;
      const cv::Scalar ink = fraction > 0.5 ? kWhite : kText;
      cv::putText(canvas, text, {box.x + (cell - text_width) / 2, box.y + cell / 2 + 5}, kFont,
                  count_scale, ink, 1, cv::LINE_AA);
    }
    cv::putText(canvas, names[i],
                {left - 8 - TextWidth(names[i], label_scale), top + i * cell + cell / 2 + 5}, kFont,
                label_scale, kText, 1, cv::LINE_AA);
    const double recall = row_total == 0 ? 0
                                         : static_cast<double>(matrix.counts(i * n + i)) /
                                               static_cast<double>(row_total);
    cv::putText(canvas, Format("%.1f %%", 100 * recall),
                {left + grid + 8, top + i * cell + cell / 2 + 5}, kFont, 0.4, kText, 1,
                cv::LINE_AA);
    PutTextVertical(canvas, names[i], {left + i * cell + cell / 2, top + grid + 6}, label_scale);
  }
  cv::rectangle(canvas, cv::Rect(left, top, grid, grid), kAxis, 1);
  cv::putText(canvas, "recall", {left + grid + 8, top - 8}, kFont, 0.4, kText, 1, cv::LINE_AA);
  PutTextVertical(canvas, "true", {kMargin + 8, top + grid / 2 - 16}, 0.5);
  const std::string predicted = "predicted";
  cv::putText(canvas, predicted,
              {left + grid / 2 - TextWidth(predicted, 0.5) / 2, top + grid + 8 + name_width + 28},
              kFont, 0.5, kText, 1, cv::LINE_AA);
  return features::WritePng(path, canvas);
}

namespace {

// One panel of the curves: a frame at `plot`, y from lo to hi, epochs
// 1..last on x, the two series, and `title`.
void DrawPanel(cv::Mat& canvas, cv::Rect plot, const std::string& title,
               const std::vector<double>& train, const std::vector<double>& validation, double lo,
               double hi, const char* tick_format) {
  cv::putText(canvas, title, {plot.x, plot.y - 12}, kFont, 0.55, kText, 1, cv::LINE_AA);
  const int epochs = static_cast<int>(train.size());
  auto x_of = [&](int e) {  // e is 1-based
    return epochs <= 1 ? plot.x + plot.width / 2 : plot.x + (e - 1) * plot.width / (epochs - 1);
  };
  auto y_of = [&](double v) {
    return plot.y + plot.height - static_cast<int>((v - lo) / (hi - lo) * plot.height);
  };
  constexpr int kYTicks = 5;
  for (int t = 0; t <= kYTicks; ++t) {
    const double v = lo + (hi - lo) * t / kYTicks;
    const int y = y_of(v);
    cv::line(canvas, {plot.x, y}, {plot.x + plot.width, y}, kGrid, 1);
    const std::string label = Format(tick_format, v);
    cv::putText(canvas, label, {plot.x - 8 - TextWidth(label, 0.4), y + 4}, kFont, 0.4, kText, 1,
                cv::LINE_AA);
  }
  const int x_step = std::max(1, (epochs + 9) / 10);
  for (int e = 1; e <= epochs; e += x_step) {
    const int x = x_of(e);
    cv::line(canvas, {x, plot.y + plot.height}, {x, plot.y + plot.height + 4}, kAxis, 1);
    const std::string label = std::to_string(e);
    cv::putText(canvas, label, {x - TextWidth(label, 0.4) / 2, plot.y + plot.height + 18}, kFont,
                0.4, kText, 1, cv::LINE_AA);
  }
  cv::putText(canvas, "epoch", {plot.x + plot.width / 2 - 20, plot.y + plot.height + 38}, kFont,
              0.45, kText, 1, cv::LINE_AA);
  cv::rectangle(canvas, plot, kAxis, 1);

  auto series = [&](const std::vector<double>& values, const cv::Scalar& color, bool dotted) {
    for (int e = 1; e <= epochs; ++e) {
      const cv::Point at(x_of(e), y_of(values[e - 1]));
      if (e > 1) {
        const cv::Point from(x_of(e - 1), y_of(values[e - 2]));
        if (dotted) {
          // Validation: a dashed line, so the two read apart without colour.
          constexpr int kDashes = 6;
          for (int d = 0; d < kDashes; d += 2) {
            const cv::Point a = from + (at - from) * d / kDashes;
            const cv::Point b = from + (at - from) * (d + 1) / kDashes;
            cv::line(canvas, a, b, color, 2, cv::LINE_AA);
          }
        } else {
          cv::line(canvas, from, at, color, 2, cv::LINE_AA);
        }
      }
      cv::circle(canvas, at, 3, color, cv::FILLED, cv::LINE_AA);
    }
  };
  series(train, kTrainColor, false);
  series(validation, kValidationColor, true);
}

}  // namespace

Status WriteTrainingCurvesPng(const std::string& path, const std::vector<v1::EpochStats>& log) {
  constexpr int kWidth = 1000, kHeight = 440, kLeft = 64, kTop = 70, kGap = 90, kBottom = 60;
  cv::Mat canvas(kHeight, kWidth, CV_8UC3, kWhite);
  cv::putText(canvas, "Training curves", {16, 26}, kFont, 0.6, kText, 1, cv::LINE_AA);
  // Legend, top right.
  const int lx = kWidth - 260;
  cv::line(canvas, {lx, 20}, {lx + 28, 20}, kTrainColor, 2, cv::LINE_AA);
  cv::putText(canvas, "train", {lx + 34, 25}, kFont, 0.45, kText, 1, cv::LINE_AA);
  for (int d = 0; d < 28; d += 10) {
    cv::line(canvas, {lx + 100 + d, 20}, {lx + 105 + d, 20}, kValidationColor, 2, cv::LINE_AA);
  }
  cv::putText(canvas, "validation", {lx + 134, 25}, kFont, 0.45, kText, 1, cv::LINE_AA);

  const int panel_width = (kWidth - 2 * kLeft - kGap) / 2;
  const cv::Rect loss_plot(kLeft, kTop, panel_width, kHeight - kTop - kBottom);
  const cv::Rect accuracy_plot(kLeft + panel_width + kGap, kTop, panel_width,
                               kHeight - kTop - kBottom);
  std::vector<double> train_loss, val_loss, train_acc, val_acc;
  for (const v1::EpochStats& e : log) {
    train_loss.push_back(std::isfinite(e.train_loss()) ? e.train_loss() : 0);
    val_loss.push_back(std::isfinite(e.validation_loss()) ? e.validation_loss() : 0);
    train_acc.push_back(100 * e.train_accuracy());
    val_acc.push_back(100 * e.validation_accuracy());
  }
  double loss_hi = 0;
  for (double v : train_loss) loss_hi = std::max(loss_hi, v);
  for (double v : val_loss) loss_hi = std::max(loss_hi, v);
  loss_hi = loss_hi <= 0 ? 1 : loss_hi * 1.1;
  double acc_lo = 100;
  for (double v : train_acc) acc_lo = std::min(acc_lo, v);
  for (double v : val_acc) acc_lo = std::min(acc_lo, v);
  // Accuracy from a round 10 % below the lowest point, so late epochs are not squashed.
  acc_lo = log.empty() ? 0 : std::max(0.0, std::floor(acc_lo / 10) * 10);
  if (acc_lo >= 100) acc_lo = 90;
  DrawPanel(canvas, loss_plot, "Loss (cross-entropy)", train_loss, val_loss, 0, loss_hi, "%.2f");
  DrawPanel(canvas, accuracy_plot, "Accuracy (%)", train_acc, val_acc, acc_lo, 100, "%.0f");
  if (log.empty()) {
    for (const cv::Rect& plot : {loss_plot, accuracy_plot}) {
      cv::putText(canvas, "no training log",
                  {plot.x + plot.width / 2 - 60, plot.y + plot.height / 2}, kFont, 0.5, kAxis, 1,
                  cv::LINE_AA);
    }
  }
  return features::WritePng(path, canvas);
}

}  // namespace impulse::worker::evaluation
