// BlobCache: the worker's local copy of blobs, by sha256, so a dataset is
// fetched once per worker, not once per task.
//
// Files live at DIR/ab/<sha256>. Content-addressed, so one copy serves every
// project: the coordinator already checked the task's project may read it.
// When the cache grows past max_bytes, the least recently used files go.
// Thread-safe; concurrent requests for one blob download it once.
#pragma once

#include <condition_variable>
#include <cstdint>
#include <mutex>
#include <set>
#include <string>

#include "impulse/status.h"
#include "impulse/v1/coordinator.grpc.pb.h"

namespace impulse::worker {

class BlobCache {
 public:
  // `stub` must outlive the cache.
  BlobCache(std::string directory, uint64_t max_bytes, v1::BlobService::Stub& stub);

  // The local path of the blob, downloading it first when absent.
  Result<std::string> Path(const std::string& project, const std::string& sha256);

 private:
  std::string PathOf(const std::string& sha256) const;
  void Evict(const std::string& keep);

  const std::string directory_;
  const uint64_t max_bytes_;
  v1::BlobService::Stub& stub_;

  std::mutex mu_;
  std::condition_variable fetched_;
  std::set<std::string> in_flight_;  // guarded by mu_
};

}  // namespace impulse::worker
