#include "worker/blob_cache.h"

#include <algorithm>
#include <filesystem>
#include <vector>

#include "impulse/blob_transfer.h"

namespace impulse::worker {

namespace fs = std::filesystem;

BlobCache::BlobCache(std::string directory, uint64_t max_bytes, v1::BlobService::Stub& stub)
    : directory_(std::move(directory)), max_bytes_(max_bytes), stub_(stub) {}

std::string BlobCache::PathOf(const std::string& sha256) const {
  return directory_ + "/" + sha256.substr(0, 2) + "/" + sha256;
}

Result<std::string> BlobCache::Path(const std::string& project, const std::string& sha256) {
  if (sha256.size() != 64) return InvalidArgument("not a sha256: '" + sha256 + "'");
  const std::string path = PathOf(sha256);
  {
    std::unique_lock<std::mutex> lock(mu_);
    // Another thread fetching the same blob: wait for it rather than race it.
    fetched_.wait(lock, [&] { return !in_flight_.count(sha256); });
    std::error_code error;
    if (fs::exists(path, error)) {
      fs::last_write_time(path, fs::file_time_type::clock::now(), error);  // LRU stamp
      return path;
    }
    in_flight_.insert(sha256);
  }
  std::error_code error;
  fs::create_directories(fs::path(path).parent_path(), error);
  Status fetched = FetchBlobToFile(stub_, project, sha256, path);
  {
    std::lock_guard<std::mutex> lock(mu_);
    in_flight_.erase(sha256);
  }
  fetched_.notify_all();
  IMPULSE_RETURN_IF_ERROR(fetched);
  Evict(path);
  return path;
}

void BlobCache::Evict(const std::string& keep) {
  struct Entry {
    fs::file_time_type used;
    uint64_t bytes;
    fs::path path;
  };
  std::vector<Entry> entries;
  uint64_t total = 0;
  std::error_code error;
  for (auto it = fs::recursive_directory_iterator(directory_, error);
       !error && it != fs::recursive_directory_iterator(); it.increment(error)) {
    if (!it->is_regular_file(error) || it->path().extension() == ".part") continue;
    entries.push_back({it->last_write_time(error), it->file_size(error), it->path()});
    total += entries.back().bytes;
  }
  if (total <= max_bytes_) return;
  std::sort(entries.begin(), entries.end(),
            [](const Entry& a, const Entry& b) { return a.used < b.used; });
  for (const auto& entry : entries) {
    if (total <= max_bytes_) break;
    if (entry.path == keep) continue;
    if (fs::remove(entry.path, error)) total -= entry.bytes;
  }
}

}  // namespace impulse::worker
