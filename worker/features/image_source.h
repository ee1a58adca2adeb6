// Decoding the samples of a DatasetManifest into 8-bit OpenCV images.
//
// Every image comes out 8-bit with 1 channel (gray) or 3 (BGR, OpenCV's
// order): 16-bit sources are scaled by 1/257, float sources by 255 and
// clamped, an alpha channel is dropped (the colour under it is kept), and a
// JPEG's EXIF orientation is applied.
//
// Failures never throw: a file that cannot be decoded is InvalidArgument, a
// blob the worker cannot get is whatever the resolver said; every message
// names the source as the user called it (DataSource.name), and an IDX
// sample its index ("train-images-idx3-ubyte.gz[70001]").
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <opencv2/core.hpp>
#include <string>
#include <string_view>
#include <vector>

#include "impulse/status.h"
#include "impulse/v1/dataset.pb.h"

namespace impulse::worker::features {

// Decodes one encoded image (PNG, JPEG, BMP, ... anything cv::imdecode reads)
// held in `bytes`. A JPEG whose entropy-coded data stops before its end
// marker is refused: libjpeg would pad it with gray and call that success.
// `name` is used in error messages only.
Result<cv::Mat> DecodeImage(std::string_view bytes, const std::string& name);

// Reads and decodes the image file at `path`; NotFound if it cannot be read.
Result<cv::Mat> ReadImageFile(const std::string& path, const std::string& name);

// The local path of a blob by sha256; TaskContext::BlobPath in the worker.
using BlobResolver = std::function<Result<std::string>(const std::string& sha256)>;

// Reads the samples of one manifest. Each IDX source is read once, on first
// use, and kept in memory for the reader's lifetime; image files are read on
// every call.
//
// Thread-safe: Read() may be called from several threads at once (the
// resolver then is too). The manifest must outlive the reader.
class SampleReader {
 public:
  SampleReader(const v1::DatasetManifest& manifest, BlobResolver resolver);
  ~SampleReader();
  SampleReader(const SampleReader&) = delete;
  SampleReader& operator=(const SampleReader&) = delete;

  // The pixels of manifest.samples(sample_index). An IDX sample is a view
  // into the reader's copy of the file (valid while the reader lives, do not
  // write to it); an image file's Mat owns its pixels. InvalidArgument for a
  // sample whose source or IDX index is out of range.
  Result<cv::Mat> Read(uint32_t sample_index);

  // What the user calls the sample in logs: the source name, plus "[i]" for
  // an IDX image.
  std::string SampleName(uint32_t sample_index) const;

 private:
  struct Source;

  const v1::DatasetManifest& manifest_;
  BlobResolver resolver_;
  std::vector<std::unique_ptr<Source>> sources_;  // one per manifest source
};

}  // namespace impulse::worker::features
