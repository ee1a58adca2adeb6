#include "impulse/idx.h"

#include <zlib.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <limits>

namespace impulse {
namespace {

// A corrupt header must not make us allocate the machine's memory: no real
// IDX file comes near this.
constexpr uint64_t kMaxIdxPayloadBytes = uint64_t{4} << 30;
constexpr unsigned kGzBufferBytes = 1 << 18;

// gzFile owner. gzread also reads plain files, which is what makes ".gz"
// optional.
class GzReader {
 public:
  explicit GzReader(std::string path) : path_(std::move(path)) {}
  ~GzReader() {
    if (file_ != nullptr) gzclose(file_);
  }
  GzReader(const GzReader&) = delete;
  GzReader& operator=(const GzReader&) = delete;

  Status Open() {
    errno = 0;
    file_ = gzopen(path_.c_str(), "rb");
    if (file_ == nullptr) {
      return NotFound(path_ +
                      ": cannot open: " + (errno != 0 ? std::strerror(errno) : "out of memory"));
    }
    gzbuffer(file_, kGzBufferBytes);
    return Status::Ok();
  }

  // Reads exactly `size` bytes; `what` names them in the error.
  Status ReadExactly(void* data, uint64_t size, const char* what) {
    auto* out = static_cast<char*>(data);
    uint64_t done = 0;
    while (done < size) {
      const uint64_t want = std::min<uint64_t>(size - done, 1u << 30);
      const int n = gzread(file_, out + done, static_cast<unsigned>(want));
      if (n < 0) return StreamError();
      if (n == 0) {
        // A truncated gzip stream reports itself only through gzerror.
        int code = Z_OK;
        gzerror(file_, &code);
        if (code != Z_OK && code != Z_BUF_ERROR) return StreamError();
        return InvalidArgument(path_ + ": truncated: " + what + " needs " + std::to_string(size) +
                               " bytes, the file has " + std::to_string(done));
      }
      done += static_cast<uint64_t>(n);
    }
    return Status::Ok();
  }

  // OK when nothing follows what was read.
  Status ExpectEnd(uint64_t expected_total) {
    char extra;
    const int n = gzread(file_, &extra, 1);
    if (n < 0) return StreamError();
    if (n > 0) {
      return InvalidArgument(path_ + ": size mismatch: the header promises " +
                             std::to_string(expected_total) + " bytes in all, but more follow");
    }
    return Status::Ok();
  }

  bool gzipped() { return gzdirect(file_) == 0; }

 private:
  Status StreamError() {
    int code = Z_OK;
    const char* message = gzerror(file_, &code);
    return InvalidArgument(path_ + ": broken gzip stream: " + (message ? message : "?"));
  }

  std::string path_;
  gzFile file_ = nullptr;
};

uint32_t BigEndian32(const unsigned char* p) {
  return (uint32_t{p[0]} << 24) | (uint32_t{p[1]} << 16) | (uint32_t{p[2]} << 8) | p[3];
}

std::string Hex32(uint32_t value) {
  char text[16];
  std::snprintf(text, sizeof(text), "0x%08x", value);
  return text;
}

Result<IdxHeader> ReadHeader(GzReader& reader, const std::string& path) {
  unsigned char magic_bytes[4];
  IMPULSE_RETURN_IF_ERROR(reader.ReadExactly(magic_bytes, 4, "the magic number"));
  IdxHeader header;
  header.magic = BigEndian32(magic_bytes);
  header.gzipped = reader.gzipped();
  if (header.magic != kIdxImagesMagic && header.magic != kIdxLabelsMagic) {
    return InvalidArgument(path + ": bad magic " + Hex32(header.magic) + " (want " +
                           Hex32(kIdxImagesMagic) + " for images or " + Hex32(kIdxLabelsMagic) +
                           " for labels)");
  }
  const int dim_count = static_cast<int>(header.magic & 0xff);
  unsigned char dim_bytes[12];
  IMPULSE_RETURN_IF_ERROR(reader.ReadExactly(dim_bytes, 4 * dim_count, "the header"));
  uint64_t payload = 1;
  for (int i = 0; i < dim_count; ++i) {
    header.dims.push_back(BigEndian32(dim_bytes + 4 * i));
    payload *= header.dims.back();
    if (payload > kMaxIdxPayloadBytes) {
      return InvalidArgument(path + ": header promises more than " +
                             std::to_string(kMaxIdxPayloadBytes) + " bytes");
    }
  }
  return header;
}

uint64_t PayloadBytes(const IdxHeader& header) {
  uint64_t bytes = 1;
  for (uint32_t d : header.dims) bytes *= d;
  return bytes;
}

uint64_t HeaderBytes(const IdxHeader& header) { return 4 + 4 * header.dims.size(); }

}  // namespace

Result<IdxHeader> ReadIdxHeader(const std::string& path) {
  GzReader reader(path);
  IMPULSE_RETURN_IF_ERROR(reader.Open());
  return ReadHeader(reader, path);
}

Result<IdxImages> ReadIdxImages(const std::string& path) {
  GzReader reader(path);
  IMPULSE_RETURN_IF_ERROR(reader.Open());
  IMPULSE_ASSIGN_OR_RETURN(IdxHeader header, ReadHeader(reader, path));
  if (!header.is_images()) {
    return InvalidArgument(path + ": a labels file (magic " + Hex32(header.magic) +
                           "), expected images (" + Hex32(kIdxImagesMagic) + ")");
  }
  IdxImages images;
  images.count = header.dims[0];
  images.rows = header.dims[1];
  images.cols = header.dims[2];
  images.pixels.resize(PayloadBytes(header));
  IMPULSE_RETURN_IF_ERROR(
      reader.ReadExactly(images.pixels.data(), images.pixels.size(), "the pixels"));
  IMPULSE_RETURN_IF_ERROR(reader.ExpectEnd(HeaderBytes(header) + images.pixels.size()));
  return images;
}

Result<std::vector<uint8_t>> ReadIdxLabels(const std::string& path) {
  GzReader reader(path);
  IMPULSE_RETURN_IF_ERROR(reader.Open());
  IMPULSE_ASSIGN_OR_RETURN(IdxHeader header, ReadHeader(reader, path));
  if (!header.is_labels()) {
    return InvalidArgument(path + ": an images file (magic " + Hex32(header.magic) +
                           "), expected labels (" + Hex32(kIdxLabelsMagic) + ")");
  }
  std::vector<uint8_t> labels(header.dims[0]);
  IMPULSE_RETURN_IF_ERROR(reader.ReadExactly(labels.data(), labels.size(), "the labels"));
  IMPULSE_RETURN_IF_ERROR(reader.ExpectEnd(HeaderBytes(header) + labels.size()));
  return labels;
}

}  // namespace impulse
