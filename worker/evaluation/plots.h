// The pictures of evaluation, as PNG files (cv::imwrite): the confusion
// matrix heat map and the training curves.
//
// Thread safety: the functions share nothing. Failures: InvalidArgument when
// the data cannot be drawn (a matrix whose counts do not match its class
// count, labels of the wrong count); Internal when the file cannot be
// encoded or written, naming the path. Text is drawn with OpenCV's Hershey
// font, ASCII only: other bytes show as '?', long labels end in '~'.
#pragma once

#include <string>
#include <vector>

#include "impulse/status.h"
#include "impulse/v1/results.pb.h"

namespace impulse::worker::evaluation {

// confusion_matrix_f32.png (and _i8 later): one square cell per (true,
// predicted) pair, rows = true labels, columns = predicted labels, shaded
// by the row's fraction (white 0 -> dark blue 1, so rows of different sizes
// compare), each cell printed with its count; true labels on the left,
// predicted labels beneath (turned 90 degrees), each row's recall on the
// right, and `title` plus the overall accuracy on top. Cells are 24..64 px,
// shrinking with the class count; counts are left out of cells too small to
// hold them.
Status WriteConfusionMatrixPng(const std::string& path, const v1::ConfusionMatrix& matrix,
                               const std::vector<std::string>& labels, const std::string& title);

// training_curves.png: two panels, loss and accuracy per epoch, train
// (solid) and validation (dashed-looking: dots) of each, with axes, ticks
// and a legend. An empty log draws the frames and "no training log".
Status WriteTrainingCurvesPng(const std::string& path, const std::vector<v1::EpochStats>& log);

}  // namespace impulse::worker::evaluation
