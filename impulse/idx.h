// IDX files (the MNIST / Fashion-MNIST format): a big-endian header, then
// unsigned bytes. Files may be gzipped; that is detected from the content, not
// the name, so a blob stored under its sha256 reads the same as "x.gz".
//
//   magic   0x00000803  images: uint32 count, rows, cols; then count*rows*cols bytes
//           0x00000801  labels: uint32 count; then count bytes
//
// Thread safety: the functions share nothing and may run on any thread.
// Failures: NotFound when the file cannot be opened; InvalidArgument when its
// content is not what the header promises (bad magic, truncated, trailing
// bytes, a broken gzip stream). Every message starts with the path.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "impulse/status.h"

namespace impulse {

inline constexpr uint32_t kIdxImagesMagic = 0x00000803;
inline constexpr uint32_t kIdxLabelsMagic = 0x00000801;

struct IdxHeader {
  uint32_t magic = 0;          // kIdxImagesMagic or kIdxLabelsMagic
  std::vector<uint32_t> dims;  // {count, rows, cols} or {count}
  bool gzipped = false;

  uint32_t count() const { return dims.empty() ? 0 : dims[0]; }
  bool is_images() const { return magic == kIdxImagesMagic; }
  bool is_labels() const { return magic == kIdxLabelsMagic; }
};

struct IdxImages {
  uint32_t count = 0, rows = 0, cols = 0;
  std::vector<uint8_t> pixels;  // row-major count x rows x cols
};

// Reads the header only (a few bytes, even for a gzipped file). Accepts
// either magic; the caller checks which one it needs.
Result<IdxHeader> ReadIdxHeader(const std::string& path);

// Reads a whole images file. InvalidArgument if it is a labels file.
Result<IdxImages> ReadIdxImages(const std::string& path);

// Reads a whole labels file: one byte per sample.
Result<std::vector<uint8_t>> ReadIdxLabels(const std::string& path);

}  // namespace impulse
