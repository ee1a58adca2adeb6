#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <filesystem>

#include "coordinator/blob_store.h"
#include "impulse/sha256.h"

namespace impulse::coordinator {
namespace {

namespace fs = std::filesystem;

Status PosixError(const std::string& context, int error_number) {
  return Internal(context + ": " + std::strerror(error_number));
}

Status NotSha256(const std::string& sha256) {
  return InvalidArgument("'" + sha256 + "' is not 64 lowercase hex digits");
}

// Writes to DIR/tmp/<sha>.XXXXXX, hashing as it goes; Commit() renames the
// file into place only when the digest matches its name.
class FileBlobWriter final : public BlobWriter {
 public:
  FileBlobWriter(std::string sha256, std::string temp_path, std::string final_path, int fd)
      : sha256_(std::move(sha256)),
        temp_path_(std::move(temp_path)),
        final_path_(std::move(final_path)),
        fd_(fd) {}

  ~FileBlobWriter() override {
    if (fd_ >= 0) ::close(fd_);
    if (!committed_) ::unlink(temp_path_.c_str());
  }

  Status Append(std::string_view bytes) override {
    if (fd_ < 0) return FailedPrecondition("blob " + sha256_ + ": writer already finished");
    hash_.Update(bytes);
    while (!bytes.empty()) {
      const ssize_t written = ::write(fd_, bytes.data(), bytes.size());
      if (written < 0) {
        if (errno == EINTR) continue;
        return PosixError("write " + temp_path_, errno);
      }
      bytes.remove_prefix(static_cast<size_t>(written));
    }
    return Status::Ok();
  }

  Status Commit() override {
    if (fd_ < 0) return FailedPrecondition("blob " + sha256_ + ": writer already finished");
    const int close_result = ::close(fd_);
    fd_ = -1;
    if (close_result != 0) return PosixError("close " + temp_path_, errno);
    const std::string actual = hash_.FinishHex();
    if (actual != sha256_) {
      ::unlink(temp_path_.c_str());
      return DataLoss("blob " + sha256_ + ": the bytes received hash to " + actual);
    }
    std::error_code error;
    fs::create_directories(fs::path(final_path_).parent_path(), error);
    if (error) return Internal("mkdir for " + final_path_ + ": " + error.message());
    // No fsync, by design: uploads stay fast, and a machine crash right
    // after a commit may leave this blob absent or short. A rename is
    // atomic, so a reader never sees a half-written blob otherwise.
    if (::rename(temp_path_.c_str(), final_path_.c_str()) != 0) {
      return PosixError("rename " + temp_path_ + " to " + final_path_, errno);
    }
    committed_ = true;
    return Status::Ok();
  }

 private:
  const std::string sha256_;
  const std::string temp_path_;
  const std::string final_path_;
  int fd_;
  Sha256 hash_;
  bool committed_ = false;
};

class FileBlobStore final : public BlobStore {
 public:
  explicit FileBlobStore(std::string directory) : directory_(std::move(directory)) {}

  bool Has(const std::string& sha256) override {
    struct stat info {};
    return IsSha256Hex(sha256) && ::stat(PathOf(sha256).c_str(), &info) == 0 &&
           S_ISREG(info.st_mode);
  }

  Result<uint64_t> Size(const std::string& sha256) override {
    if (!IsSha256Hex(sha256)) return NotSha256(sha256);
    struct stat info {};
    if (::stat(PathOf(sha256).c_str(), &info) != 0) {
      if (errno == ENOENT) return NotFound("no blob " + sha256);
      return PosixError("stat " + PathOf(sha256), errno);
    }
    return static_cast<uint64_t>(info.st_size);
  }

  Result<std::unique_ptr<BlobWriter>> NewWriter(const std::string& sha256) override {
    if (!IsSha256Hex(sha256)) return NotSha256(sha256);
    const std::string temp_dir = directory_ + "/tmp";
    std::error_code error;
    fs::create_directories(temp_dir, error);
    if (error) return Internal("mkdir " + temp_dir + ": " + error.message());
    std::string temp_path = temp_dir + "/" + sha256 + ".XXXXXX";
    const int fd = ::mkstemp(temp_path.data());
    if (fd < 0) return PosixError("mkstemp " + temp_path, errno);
    return std::unique_ptr<BlobWriter>(
        new FileBlobWriter(sha256, std::move(temp_path), PathOf(sha256), fd));
  }

  Result<std::string> Read(const std::string& sha256, uint64_t offset,
                           uint64_t max_bytes) override {
    if (!IsSha256Hex(sha256)) return NotSha256(sha256);
    const std::string path = PathOf(sha256);
    const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
      if (errno == ENOENT) return NotFound("no blob " + sha256);
      return PosixError("open " + path, errno);
    }
    struct stat info {};
    if (::fstat(fd, &info) != 0) {
      const int error_number = errno;
      ::close(fd);
      return PosixError("stat " + path, error_number);
    }
    const uint64_t size = static_cast<uint64_t>(info.st_size);
    std::string bytes(offset >= size ? 0 : std::min(max_bytes, size - offset), '\0');
    size_t done = 0;
    while (done < bytes.size()) {
      const ssize_t got =
          ::pread(fd, bytes.data() + done, bytes.size() - done, static_cast<off_t>(offset + done));
      if (got < 0 && errno == EINTR) continue;
      if (got <= 0) {
        const int error_number = got < 0 ? errno : EIO;
        ::close(fd);
        return PosixError("read " + path, error_number);
      }
      done += static_cast<size_t>(got);
    }
    ::close(fd);
    return bytes;
  }

  Status Delete(const std::string& sha256) override {
    if (!IsSha256Hex(sha256)) return NotSha256(sha256);
    if (::unlink(PathOf(sha256).c_str()) != 0 && errno != ENOENT) {
      return PosixError("unlink " + PathOf(sha256), errno);
    }
    return Status::Ok();
  }

 private:
  std::string PathOf(const std::string& sha256) const {
    return directory_ + "/" + sha256.substr(0, 2) + "/" + sha256;
  }

  const std::string directory_;
};

}  // namespace

std::unique_ptr<BlobStore> NewFileBlobStore(const std::string& directory) {
  return std::make_unique<FileBlobStore>(directory);
}

bool IsSha256Hex(std::string_view text) {
  return text.size() == 64 && std::all_of(text.begin(), text.end(), [](char c) {
           return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f');
         });
}

}  // namespace impulse::coordinator
