// Reads the --data path into a DatasetManifest: which files to upload, the
// class names, and one Sample per image with its label and split.
//
// Three layouts, detected from what the path holds:
//
//   image-folder  DIR/<class>/*.png|jpg|jpeg|bmp (any case, sub-folders of a
//                 class included), or DIR/training/<class>/... with
//                 DIR/testing/<class>/... (train/ and test/ work too).
//   idx           a folder (or one of its files) with PREFIX-images-idx3-ubyte[.gz]
//                 + PREFIX-labels-idx1-ubyte[.gz] pairs; the t10k- (or test-)
//                 pair is the test split, every other pair is training data.
//                 An optional labels.txt names the classes, one per line;
//                 without it classes are named "0", "1", ... up to the largest
//                 label. Only the images files are sources; a Sample's index
//                 is the image's position in its file.
//   csv           a .csv with a header naming columns path and label, and
//                 optionally split (train | test | training | testing). Paths
//                 are relative to the CSV's folder. Rows whose file is missing
//                 are skipped with a warning.
//
// Classes are sorted by name (byte order); labels[i] is model output i. When
// the layout names no test samples, a stratified test split of
// options.test_split is drawn per class, seeded by options.seed: the same
// files, fraction and seed always give the same split. When it does name
// some, unnamed samples are training data.
//
// Every distinct file is hashed (sha256) on a few threads, each with one
// 1 MiB buffer; files with the same content share one DataSource.
//
// Thread safety: ReadDataset shares nothing between calls.
// Failures: InvalidArgument, in one line that says what to change, for a path
// that is none of the layouts, an empty dataset, fewer than 2 classes, a
// malformed CSV or IDX pair, a bad option; NotFound for a file that vanished
// or cannot be read while hashing.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "impulse/status.h"
#include "impulse/v1/dataset.pb.h"

namespace impulse {

struct DatasetOptions {
  double test_split = 0.2;  // fraction of each class held out; [0, 1)
  uint64_t seed = 1;        // for the test split
  int hash_threads = 0;     // 0 = min(4, hardware threads)
};

struct DatasetPlan {
  // name, layout, labels, sources (sha256, format, name relative to the
  // dataset root) and samples.
  v1::DatasetManifest manifest;
  // The local file behind each manifest source, same order.
  std::vector<std::string> source_paths;
  // Things the user should know that did not stop the read (skipped rows,
  // ignored files, duplicates), one line each.
  std::vector<std::string> warnings;
};

Result<DatasetPlan> ReadDataset(const std::string& path, const DatasetOptions& options = {});

}  // namespace impulse
