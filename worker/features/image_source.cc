#include "worker/features/image_source.h"

#include <algorithm>
#include <fstream>
#include <iterator>
#include <mutex>
#include <opencv2/imgcodecs.hpp>
#include <opencv2/imgproc.hpp>

#include "impulse/idx.h"

namespace impulse::worker::features {
namespace {

bool IsJpeg(std::string_view bytes) {
  return bytes.size() >= 3 && static_cast<uint8_t>(bytes[0]) == 0xFF &&
         static_cast<uint8_t>(bytes[1]) == 0xD8 && static_cast<uint8_t>(bytes[2]) == 0xFF;
}

// True when an end-of-image marker (FF D9) follows the last start-of-scan
// marker (FF DA). Inside entropy-coded data every FF byte is stuffed (FF 00),
// so neither marker can appear there by chance; an EXIF thumbnail's markers
// come before the main image's scans. A file cut anywhere inside its last
// scan therefore fails this check, while trailing bytes after EOI pass.
bool JpegHasEndAfterLastScan(std::string_view bytes) {
  size_t last_sos = std::string_view::npos;
  for (size_t i = 0; i + 1 < bytes.size(); ++i) {
    if (static_cast<uint8_t>(bytes[i]) == 0xFF && static_cast<uint8_t>(bytes[i + 1]) == 0xDA) {
      last_sos = i;
    }
  }
  if (last_sos == std::string_view::npos) return false;
  for (size_t i = last_sos + 2; i + 1 < bytes.size(); ++i) {
    if (static_cast<uint8_t>(bytes[i]) == 0xFF && static_cast<uint8_t>(bytes[i + 1]) == 0xD9) {
      return true;
    }
  }
  return false;
}

// Brings any decoded Mat to 8-bit, 1 or 3 channels.
Result<cv::Mat> To8Bit(cv::Mat image, const std::string& name) {
  if (image.depth() == CV_16U) {
    image.convertTo(image, CV_8U, 1.0 / 257.0);
  } else if (image.depth() == CV_32F || image.depth() == CV_64F) {
    image.convertTo(image, CV_8U, 255.0);  // saturating
  } else if (image.depth() != CV_8U) {
    return InvalidArgument(name + ": unsupported pixel depth " + std::to_string(image.depth()));
  }
  switch (image.channels()) {
    case 1:
    case 3:
      return image;
    case 4:
      cv::cvtColor(image, image, cv::COLOR_BGRA2BGR);
      return image;
    case 2: {
      cv::Mat gray;
      cv::extractChannel(image, gray, 0);
      return gray;
    }
    default:
      return InvalidArgument(name + ": unsupported channel count " +
                             std::to_string(image.channels()));
  }
}

}  // namespace

Result<cv::Mat> DecodeImage(std::string_view bytes, const std::string& name) {
  if (bytes.empty()) return InvalidArgument(name + ": empty image file");
  if (IsJpeg(bytes) && !JpegHasEndAfterLastScan(bytes)) {
    return InvalidArgument(name + ": truncated JPEG (no end-of-image marker after the last scan)");
  }
  cv::Mat image;
  try {
    // cv::imdecode takes a non-const buffer view but does not write to it.
    const cv::Mat buffer(1, static_cast<int>(bytes.size()), CV_8U, const_cast<char*>(bytes.data()));
    image = cv::imdecode(buffer, cv::IMREAD_ANYCOLOR | cv::IMREAD_ANYDEPTH);
    if (image.empty()) return InvalidArgument(name + ": not a decodable image");
    return To8Bit(std::move(image), name);
  } catch (const cv::Exception& e) {
    return InvalidArgument(name + ": cv::imdecode failed: " + e.what());
  }
}

Result<cv::Mat> ReadImageFile(const std::string& path, const std::string& name) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return NotFound(name + ": cannot open " + path);
  const std::string bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  if (in.bad()) return NotFound(name + ": read error on " + path);
  return DecodeImage(bytes, name);
}

struct SampleReader::Source {
  std::once_flag loaded;
  Status status;  // why the IDX file is unusable; set once, under `loaded`
  IdxImages idx;
};

SampleReader::SampleReader(const v1::DatasetManifest& manifest, BlobResolver resolver)
    : manifest_(manifest), resolver_(std::move(resolver)) {
  sources_.reserve(manifest_.sources_size());
  for (int i = 0; i < manifest_.sources_size(); ++i) {
    sources_.push_back(std::make_unique<Source>());
  }
}

SampleReader::~SampleReader() = default;

std::string SampleReader::SampleName(uint32_t sample_index) const {
  if (sample_index >= static_cast<uint32_t>(manifest_.samples_size())) {
    return "sample " + std::to_string(sample_index);
  }
  const v1::Sample& sample = manifest_.samples(sample_index);
  if (sample.source() >= static_cast<uint32_t>(manifest_.sources_size())) {
    return "sample " + std::to_string(sample_index);
  }
  const v1::DataSource& source = manifest_.sources(sample.source());
  std::string name = source.name().empty() ? source.sha256() : source.name();
  if (source.format() == v1::SOURCE_FORMAT_IDX_IMAGES) {
    name += "[" + std::to_string(sample.index()) + "]";
  }
  return name;
}

Result<cv::Mat> SampleReader::Read(uint32_t sample_index) {
  const std::string name = SampleName(sample_index);
  if (sample_index >= static_cast<uint32_t>(manifest_.samples_size())) {
    return InvalidArgument(name + ": no such sample in the manifest");
  }
  const v1::Sample& sample = manifest_.samples(sample_index);
  if (sample.source() >= static_cast<uint32_t>(manifest_.sources_size())) {
    return InvalidArgument(name + ": source " + std::to_string(sample.source()) +
                           " is out of range of the manifest's " +
                           std::to_string(manifest_.sources_size()) + " sources");
  }
  const v1::DataSource& source = manifest_.sources(sample.source());
  switch (source.format()) {
    case v1::SOURCE_FORMAT_IMAGE_FILE: {
      Result<std::string> path = resolver_(source.sha256());
      if (!path.ok()) return path.status().WithContext(name);
      return ReadImageFile(*path, name);
    }
    case v1::SOURCE_FORMAT_IDX_IMAGES: {
      Source& state = *sources_[sample.source()];
      std::call_once(state.loaded, [&] {
        Result<std::string> path = resolver_(source.sha256());
        if (!path.ok()) {
          state.status = path.status().WithContext(source.name());
          return;
        }
        Result<IdxImages> images = ReadIdxImages(*path);
        if (!images.ok()) {
          state.status = images.status().WithContext(source.name());
          return;
        }
        state.idx = std::move(images).value();
      });
      if (!state.status.ok()) return state.status;
      if (sample.index() >= state.idx.count) {
        return InvalidArgument(name + ": index out of range of the file's " +
                               std::to_string(state.idx.count) + " images");
      }
      const size_t image_bytes = static_cast<size_t>(state.idx.rows) * state.idx.cols;
      uint8_t* pixels = state.idx.pixels.data() + image_bytes * sample.index();
      return cv::Mat(static_cast<int>(state.idx.rows), static_cast<int>(state.idx.cols), CV_8UC1,
                     pixels);
    }
    default:
      return InvalidArgument(name + ": unsupported source format " +
                             v1::SourceFormat_Name(source.format()));
  }
}

}  // namespace impulse::worker::features
