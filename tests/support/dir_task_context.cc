#include "tests/support/dir_task_context.h"

#include <filesystem>
#include <fstream>

#include "impulse/sha256.h"

namespace impulse::testing {

namespace fs = std::filesystem;

DirTaskContext::DirTaskContext(const std::string& root, int threads)
    : blobs_(root + "/blobs"), scratch_(root + "/scratch"), threads_(threads) {
  fs::create_directories(blobs_);
  fs::create_directories(scratch_);
}

Result<std::string> DirTaskContext::BlobPath(const std::string& sha256) {
  const std::string path = blobs_ + "/" + sha256;
  if (sha256.empty() || !fs::exists(path)) return NotFound("no blob " + sha256);
  return path;
}

Result<std::string> DirTaskContext::PutBlob(const std::string& local_path) {
  IMPULSE_ASSIGN_OR_RETURN(std::string sha256, Sha256File(local_path));
  std::error_code error;
  fs::copy_file(local_path, blobs_ + "/" + sha256, fs::copy_options::overwrite_existing, error);
  if (error) return Internal("copy " + local_path + ": " + error.message());
  return sha256;
}

std::string DirTaskContext::PutBytes(const std::string& bytes) {
  const std::string staged = scratch_ + "/staged.bin";
  std::ofstream(staged, std::ios::binary | std::ios::trunc) << bytes;
  auto sha256 = PutBlob(staged);
  fs::remove(staged);
  return sha256.ok() ? *sha256 : "";
}

void DirTaskContext::ReportProgress(double fraction, const std::string&) {
  std::lock_guard<std::mutex> lock(mu_);
  progress_.push_back(fraction);
}

void DirTaskContext::Log(const std::string& line) {
  std::lock_guard<std::mutex> lock(mu_);
  logs_.push_back(line);
}

std::vector<double> DirTaskContext::progress() const {
  std::lock_guard<std::mutex> lock(mu_);
  return progress_;
}

std::vector<std::string> DirTaskContext::logs() const {
  std::lock_guard<std::mutex> lock(mu_);
  return logs_;
}

}  // namespace impulse::testing
