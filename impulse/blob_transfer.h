// Moving blobs over the BlobService: uploads that send only what the
// coordinator lacks, and resumable, verified downloads. Used by the client
// (datasets up, artifacts down) and the worker (dataset files down,
// features and artifacts up).
//
// Every call carries a deadline; chunks are at most kMaxChunkBytes.
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "impulse/status.h"
#include "impulse/v1/coordinator.grpc.pb.h"

namespace impulse {

inline constexpr uint64_t kMaxChunkBytes = 1 << 20;

struct LocalBlob {
  std::string sha256;  // of the file's content
  std::string path;    // a readable local file
};

struct UploadStats {
  uint64_t blobs_sent = 0;
  uint64_t bytes_sent = 0;
  uint64_t blobs_present = 0;  // already held by the project, not sent
};

// Called after each blob sent: (blobs done, blobs to send).
using UploadProgress = std::function<void(uint64_t, uint64_t)>;

// Sends the blobs the project does not have yet. Unavailable when the
// coordinator cannot be reached, DataLoss when a file changed after hashing.
Result<UploadStats> UploadMissingBlobs(v1::BlobService::Stub& stub, const std::string& project,
                                       const std::vector<LocalBlob>& blobs,
                                       const UploadProgress& progress = nullptr);

// Downloads one blob to `path` (written to path + ".part", verified against
// its sha256, then renamed), resuming from the partial file after a broken
// stream. NotFound when the project lacks it.
Status FetchBlobToFile(v1::BlobService::Stub& stub, const std::string& project,
                       const std::string& sha256, const std::string& path);

// The same, into memory; for blobs known to be small (manifests, results).
Result<std::string> FetchBlobBytes(v1::BlobService::Stub& stub, const std::string& project,
                                   const std::string& sha256);

}  // namespace impulse
