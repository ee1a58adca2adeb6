// The feature matrix: every processed sample of a dataset, as one file that
// the generate-features task uploads and the train task reads.
//
// Format, version 1. All integers little-endian, no implicit padding:
//
//   offset  size  field
//   0       8     magic "IMPFEAT1"
//   8       4     version = 1
//   12      4     flags: bit 0 kFeatureFlagFlattened (RAW block); others 0
//   16      4     channels C (1 or 3)
//   20      4     height H
//   24      4     width W
//   28      8     rows N
//   36      8     row capacity M >= N (rows the writer reserved room for)
//   44      8     data offset: where the pixels start, a multiple of 64
//   52      4     label count L
//   56      ...   L labels, each: u32 byte length, then UTF-8 bytes
//   ...     9*M   row table: per row u32 label, u8 split (v1::Split: 1 train,
//                 2 test), u32 sample (index into DatasetManifest.samples);
//                 entries N..M-1 and the bytes up to the data offset are zero
//   data    N*C*H*W  pixels, uint8, row-major: row i is [C, H, W] planar
//
// The file ends exactly at data offset + N*C*H*W. The writer reserves the row
// table for the manifest's sample count up front, so pixels stream to disk in
// one pass even though N (the readable samples) is known only at the end;
// unreadable samples cost 9 zero bytes each.
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <memory>
#include <string>
#include <vector>

#include "impulse/status.h"

namespace impulse::worker::features {

inline constexpr char kFeatureMagic[8] = {'I', 'M', 'P', 'F', 'E', 'A', 'T', '1'};
inline constexpr uint32_t kFeatureVersion = 1;
inline constexpr uint32_t kFeatureFlagFlattened = 1u << 0;

struct FeatureShape {
  uint32_t flags = 0;
  uint32_t channels = 0;
  uint32_t height = 0;
  uint32_t width = 0;
  std::vector<std::string> labels;

  size_t row_bytes() const { return static_cast<size_t>(channels) * height * width; }
};

struct FeatureRowInfo {
  uint32_t label = 0;   // index into FeatureShape::labels
  uint8_t split = 0;    // v1::Split value: 1 train, 2 test
  uint32_t sample = 0;  // index into DatasetManifest.samples
};

// Streams rows to a new file. One thread at a time. Destroying an
// unfinished writer leaves a file no reader accepts (its header says N = 0
// but pixels follow).
class FeatureMatrixWriter {
 public:
  // InvalidArgument for an empty shape; Internal when the file cannot be
  // created. `max_rows` is the most rows Append() will be called for.
  static Result<std::unique_ptr<FeatureMatrixWriter>> Create(const std::string& path,
                                                             const FeatureShape& shape,
                                                             uint64_t max_rows);
  ~FeatureMatrixWriter();
  FeatureMatrixWriter(const FeatureMatrixWriter&) = delete;
  FeatureMatrixWriter& operator=(const FeatureMatrixWriter&) = delete;

  // Appends one row of shape.row_bytes() bytes. FailedPrecondition past
  // max_rows; Internal on a write error.
  Status Append(const FeatureRowInfo& info, const uint8_t* pixels);

  // Writes the row table and N, and closes the file.
  Status Finish();

  uint64_t rows() const { return rows_; }

 private:
  FeatureMatrixWriter(std::string path, std::FILE* file, FeatureShape shape, uint64_t max_rows,
                      uint64_t table_offset, uint64_t data_offset);

  std::string path_;
  std::FILE* file_;
  FeatureShape shape_;
  uint64_t max_rows_;
  uint64_t table_offset_;
  uint64_t data_offset_;
  uint64_t rows_ = 0;
  std::vector<FeatureRowInfo> infos_;
};

// A feature matrix file, memory-mapped read-only. Immutable once opened:
// any number of threads may read it.
class FeatureMatrix {
 public:
  // Validates the whole header and row table. InvalidArgument naming the
  // path and the field that is wrong (magic, version, dims, labels, a row's
  // label or split, size); NotFound when the file cannot be opened.
  static Result<FeatureMatrix> Open(const std::string& path);

  FeatureMatrix(FeatureMatrix&& other) noexcept;
  FeatureMatrix& operator=(FeatureMatrix&& other) noexcept;
  ~FeatureMatrix();

  const FeatureShape& shape() const { return shape_; }
  uint64_t rows() const { return infos_.size(); }
  const FeatureRowInfo& info(uint64_t row) const { return infos_[row]; }
  // REQUIRES: row < rows(). shape().row_bytes() bytes.
  const uint8_t* pixels(uint64_t row) const { return data_ + row * shape_.row_bytes(); }

 private:
  FeatureMatrix() = default;

  void* map_ = nullptr;
  size_t map_size_ = 0;
  FeatureShape shape_;
  std::vector<FeatureRowInfo> infos_;
  const uint8_t* data_ = nullptr;
};

}  // namespace impulse::worker::features
