#include "worker/features/feature_matrix.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <utility>

namespace impulse::worker::features {
namespace {

constexpr size_t kFixedHeaderBytes = 56;
constexpr size_t kRowInfoBytes = 9;
constexpr uint64_t kDataAlignment = 64;
constexpr uint32_t kMaxLabels = 1u << 20;
constexpr uint32_t kMaxSide = 1u << 16;

void PutU32(std::string& out, uint32_t v) {
  for (int i = 0; i < 4; ++i) out.push_back(static_cast<char>((v >> (8 * i)) & 0xFF));
}
void PutU64(std::string& out, uint64_t v) {
  for (int i = 0; i < 8; ++i) out.push_back(static_cast<char>((v >> (8 * i)) & 0xFF));
}
uint32_t GetU32(const uint8_t* p) {
  return uint32_t{p[0]} | uint32_t{p[1]} << 8 | uint32_t{p[2]} << 16 | uint32_t{p[3]} << 24;
}
uint64_t GetU64(const uint8_t* p) { return uint64_t{GetU32(p)} | uint64_t{GetU32(p + 4)} << 32; }

std::string Header(const FeatureShape& shape, uint64_t rows, uint64_t capacity,
                   uint64_t data_offset) {
  std::string out(kFeatureMagic, sizeof(kFeatureMagic));
  PutU32(out, kFeatureVersion);
  PutU32(out, shape.flags);
  PutU32(out, shape.channels);
  PutU32(out, shape.height);
  PutU32(out, shape.width);
  PutU64(out, rows);
  PutU64(out, capacity);
  PutU64(out, data_offset);
  PutU32(out, static_cast<uint32_t>(shape.labels.size()));
  for (const std::string& label : shape.labels) {
    PutU32(out, static_cast<uint32_t>(label.size()));
    out += label;
  }
  return out;
}

Status WriteAll(std::FILE* file, const void* data, size_t size, const std::string& path) {
  if (size != 0 && std::fwrite(data, 1, size, file) != size) {
    return Internal(path + ": write failed: " + std::strerror(errno));
  }
  return Status::Ok();
}

}  // namespace

Result<std::unique_ptr<FeatureMatrixWriter>> FeatureMatrixWriter::Create(const std::string& path,
                                                                         const FeatureShape& shape,
                                                                         uint64_t max_rows) {
  if (shape.row_bytes() == 0 || (shape.channels != 1 && shape.channels != 3)) {
    return InvalidArgument(path +
                           ": feature shape must have 1 or 3 channels and a non-empty image");
  }
  const uint64_t table_offset = Header(shape, 0, max_rows, 0).size();
  uint64_t data_offset = table_offset + kRowInfoBytes * max_rows;
  data_offset = (data_offset + kDataAlignment - 1) / kDataAlignment * kDataAlignment;
  std::FILE* file = std::fopen(path.c_str(), "wb");
  if (file == nullptr) return Internal(path + ": cannot create: " + std::strerror(errno));
  std::unique_ptr<FeatureMatrixWriter> writer(
      new FeatureMatrixWriter(path, file, shape, max_rows, table_offset, data_offset));
  // Header (N = 0 for now) and a zeroed row table; pixels follow.
  const std::string header = Header(shape, 0, max_rows, data_offset);
  IMPULSE_RETURN_IF_ERROR(WriteAll(file, header.data(), header.size(), path));
  const std::vector<char> zeros(data_offset - header.size(), 0);
  IMPULSE_RETURN_IF_ERROR(WriteAll(file, zeros.data(), zeros.size(), path));
  return writer;
}

FeatureMatrixWriter::FeatureMatrixWriter(std::string path, std::FILE* file, FeatureShape shape,
                                         uint64_t max_rows, uint64_t table_offset,
                                         uint64_t data_offset)
    : path_(std::move(path)),
      file_(file),
      shape_(std::move(shape)),
      max_rows_(max_rows),
      table_offset_(table_offset),
      data_offset_(data_offset) {}

FeatureMatrixWriter::~FeatureMatrixWriter() {
  if (file_ != nullptr) std::fclose(file_);
}

Status FeatureMatrixWriter::Append(const FeatureRowInfo& info, const uint8_t* pixels) {
  if (file_ == nullptr) return FailedPrecondition(path_ + ": writer already finished");
  if (rows_ >= max_rows_) {
    return FailedPrecondition(path_ + ": more rows than the " + std::to_string(max_rows_) +
                              " reserved");
  }
  IMPULSE_RETURN_IF_ERROR(WriteAll(file_, pixels, shape_.row_bytes(), path_));
  infos_.push_back(info);
  ++rows_;
  return Status::Ok();
}

Status FeatureMatrixWriter::Finish() {
  if (file_ == nullptr) return FailedPrecondition(path_ + ": writer already finished");
  std::string table;
  table.reserve(infos_.size() * kRowInfoBytes);
  for (const FeatureRowInfo& info : infos_) {
    PutU32(table, info.label);
    table.push_back(static_cast<char>(info.split));
    PutU32(table, info.sample);
  }
  const std::string header = Header(shape_, rows_, max_rows_, data_offset_);
  Status status;
  if (std::fseek(file_, 0, SEEK_SET) != 0) {
    status = Internal(path_ + ": seek failed: " + std::strerror(errno));
  }
  if (status.ok()) status = WriteAll(file_, header.data(), header.size(), path_);
  if (status.ok() && std::fseek(file_, static_cast<long>(table_offset_), SEEK_SET) != 0) {
    status = Internal(path_ + ": seek failed: " + std::strerror(errno));
  }
  if (status.ok()) status = WriteAll(file_, table.data(), table.size(), path_);
  const int closed = std::fclose(file_);
  file_ = nullptr;
  if (status.ok() && closed != 0) {
    status = Internal(path_ + ": close failed: " + std::strerror(errno));
  }
  return status;
}

Result<FeatureMatrix> FeatureMatrix::Open(const std::string& path) {
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return NotFound(path + ": cannot open feature matrix: " + std::strerror(errno));
  struct stat st {};
  if (::fstat(fd, &st) != 0) {
    const int err = errno;
    ::close(fd);
    return Internal(path + ": fstat failed: " + std::strerror(err));
  }
  const size_t size = static_cast<size_t>(st.st_size);
  auto bad = [&path](const std::string& what) {
    return InvalidArgument(path + ": not a valid feature matrix: " + what);
  };
  if (size < kFixedHeaderBytes) {
    ::close(fd);
    return bad("file is " + std::to_string(size) + " bytes, shorter than the header");
  }
  void* map = ::mmap(nullptr, size, PROT_READ, MAP_PRIVATE, fd, 0);
  const int map_err = errno;
  ::close(fd);
  if (map == MAP_FAILED) return Internal(path + ": mmap failed: " + std::strerror(map_err));

  FeatureMatrix matrix;  // owns the mapping from here on
  matrix.map_ = map;
  matrix.map_size_ = size;
  const auto* p = static_cast<const uint8_t*>(map);
  if (std::memcmp(p, kFeatureMagic, sizeof(kFeatureMagic)) != 0) return bad("bad magic");
  const uint32_t version = GetU32(p + 8);
  if (version != kFeatureVersion) {
    return bad("unsupported version " + std::to_string(version) + " (this build reads " +
               std::to_string(kFeatureVersion) + ")");
  }
  FeatureShape& shape = matrix.shape_;
  shape.flags = GetU32(p + 12);
  shape.channels = GetU32(p + 16);
  shape.height = GetU32(p + 20);
  shape.width = GetU32(p + 24);
  const uint64_t rows = GetU64(p + 28);
  const uint64_t capacity = GetU64(p + 36);
  const uint64_t data_offset = GetU64(p + 44);
  const uint32_t label_count = GetU32(p + 52);
  if ((shape.flags & ~kFeatureFlagFlattened) != 0) {
    return bad("unknown flags " + std::to_string(shape.flags));
  }
  if (shape.channels != 1 && shape.channels != 3) {
    return bad("channels is " + std::to_string(shape.channels) + ", expected 1 or 3");
  }
  if (shape.height == 0 || shape.width == 0 || shape.height > kMaxSide || shape.width > kMaxSide) {
    return bad("image size " + std::to_string(shape.width) + "x" + std::to_string(shape.height) +
               " out of range");
  }
  if (rows > capacity) {
    return bad("rows " + std::to_string(rows) + " exceed the row capacity " +
               std::to_string(capacity));
  }
  if (label_count == 0 || label_count > kMaxLabels) {
    return bad("label count " + std::to_string(label_count) + " out of range");
  }
  size_t offset = kFixedHeaderBytes;
  shape.labels.reserve(label_count);
  for (uint32_t i = 0; i < label_count; ++i) {
    if (size - offset < 4) return bad("labels run past the end of the file");
    const uint32_t length = GetU32(p + offset);
    offset += 4;
    if (size - offset < length) return bad("label " + std::to_string(i) + " runs past the end");
    shape.labels.emplace_back(reinterpret_cast<const char*>(p + offset), length);
    offset += length;
  }
  // Overflow-safe: capacity and rows are bounded by the file size first.
  if (capacity > (size - offset) / kRowInfoBytes) return bad("row table runs past the end");
  const uint64_t table_end = offset + capacity * kRowInfoBytes;
  if (data_offset < table_end || data_offset % kDataAlignment != 0 || data_offset > size) {
    return bad("data offset " + std::to_string(data_offset) + " is not an aligned offset past " +
               "the row table (ends at " + std::to_string(table_end) + ")");
  }
  const uint64_t row_bytes = shape.row_bytes();
  if (rows > (size - data_offset) / row_bytes || size - data_offset != rows * row_bytes) {
    return bad("file is " + std::to_string(size) + " bytes; " + std::to_string(rows) + " rows of " +
               std::to_string(row_bytes) + " bytes from offset " + std::to_string(data_offset) +
               " need " + std::to_string(data_offset + rows * row_bytes) +
               " (truncated or trailing bytes)");
  }
  matrix.infos_.resize(rows);
  for (uint64_t i = 0; i < rows; ++i) {
    const uint8_t* entry = p + offset + i * kRowInfoBytes;
    FeatureRowInfo& info = matrix.infos_[i];
    info.label = GetU32(entry);
    info.split = entry[4];
    info.sample = GetU32(entry + 5);
    if (info.label >= label_count) {
      return bad("row " + std::to_string(i) + " has label " + std::to_string(info.label) + " of " +
                 std::to_string(label_count));
    }
    if (info.split != 1 && info.split != 2) {
      return bad("row " + std::to_string(i) + " has split " + std::to_string(info.split) +
                 ", expected 1 (train) or 2 (test)");
    }
  }
  matrix.data_ = p + data_offset;
  return matrix;
}

FeatureMatrix::FeatureMatrix(FeatureMatrix&& other) noexcept
    : map_(std::exchange(other.map_, nullptr)),
      map_size_(std::exchange(other.map_size_, 0)),
      shape_(std::move(other.shape_)),
      infos_(std::move(other.infos_)),
      data_(std::exchange(other.data_, nullptr)) {}

FeatureMatrix& FeatureMatrix::operator=(FeatureMatrix&& other) noexcept {
  if (this != &other) {
    if (map_ != nullptr) ::munmap(map_, map_size_);
    map_ = std::exchange(other.map_, nullptr);
    map_size_ = std::exchange(other.map_size_, 0);
    shape_ = std::move(other.shape_);
    infos_ = std::move(other.infos_);
    data_ = std::exchange(other.data_, nullptr);
  }
  return *this;
}

FeatureMatrix::~FeatureMatrix() {
  if (map_ != nullptr) ::munmap(map_, map_size_);
}

}  // namespace impulse::worker::features
