#include "impulse/blob_transfer.h"

#include <grpcpp/grpcpp.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <unordered_map>

#include "impulse/grpc_status.h"
#include "impulse/sha256.h"

namespace impulse {
namespace {

constexpr size_t kHasBatch = 10000;
// One upload stream carries at most this much, so a deadline can be sized.
constexpr uint64_t kStreamBytes = 256ull << 20;
constexpr int kFetchAttempts = 3;

std::chrono::system_clock::time_point DeadlineIn(std::chrono::seconds s) {
  return std::chrono::system_clock::now() + s;
}

// 60 s plus one second per 4 MiB: generous for loopback and a LAN, bounded.
std::chrono::seconds TransferBudget(uint64_t bytes) {
  return std::chrono::seconds(60 + bytes / (4u << 20));
}

Result<std::vector<std::string>> MissingOf(v1::BlobService::Stub& stub, const std::string& project,
                                           const std::vector<LocalBlob>& blobs) {
  std::vector<std::string> missing;
  for (size_t begin = 0; begin < blobs.size(); begin += kHasBatch) {
    v1::HasBlobsRequest request;
    request.set_project(project);
    for (size_t i = begin; i < std::min(blobs.size(), begin + kHasBatch); ++i) {
      request.add_sha256(blobs[i].sha256);
    }
    v1::HasBlobsReply reply;
    grpc::ClientContext context;
    context.set_deadline(DeadlineIn(std::chrono::seconds(30)));
    grpc::Status status = stub.HasBlobs(&context, request, &reply);
    if (!status.ok()) return FromGrpc(status).WithContext("HasBlobs");
    missing.insert(missing.end(), reply.missing().begin(), reply.missing().end());
  }
  return missing;
}

// Writes one file's chunks into the stream. The bytes are re-hashed as they
// are sent so a file edited after hashing is caught here, not at the server.
Status SendFile(grpc::ClientWriter<v1::UploadBlobsRequest>& writer, const std::string& project,
                bool* first, const LocalBlob& blob, uint64_t* bytes_sent) {
  std::ifstream in(blob.path, std::ios::binary);
  if (!in) return NotFound("cannot open " + blob.path);
  const uint64_t size = std::filesystem::file_size(blob.path);
  Sha256 hash;
  std::string buffer(kMaxChunkBytes, '\0');
  uint64_t offset = 0;
  do {
    in.read(buffer.data(), static_cast<std::streamsize>(buffer.size()));
    const auto got = static_cast<size_t>(in.gcount());
    hash.Update(std::string_view(buffer.data(), got));
    v1::UploadBlobsRequest request;
    if (*first) request.set_project(project);
    *first = false;
    v1::BlobChunk* chunk = request.mutable_chunk();
    chunk->set_sha256(blob.sha256);
    chunk->set_offset(offset);
    chunk->set_size(size);
    chunk->set_data(buffer.data(), got);
    offset += got;
    chunk->set_last(offset >= size || got == 0);
    if (chunk->last() && hash.FinishHex() != blob.sha256) {
      return DataLoss(blob.path + " changed after it was hashed; run the command again");
    }
    if (!writer.Write(request)) return Unavailable("upload stream broke");
    if (chunk->last()) break;
  } while (true);
  *bytes_sent += offset;
  return Status::Ok();
}

// Streams one blob from `offset`, handing each chunk's bytes to `sink`.
grpc::Status StreamBlob(v1::BlobService::Stub& stub, const std::string& project,
                        const std::string& sha256, uint64_t offset, std::chrono::seconds budget,
                        const std::function<void(const std::string&)>& sink) {
  v1::FetchBlobRequest request;
  request.set_project(project);
  request.set_sha256(sha256);
  request.set_offset(offset);
  grpc::ClientContext context;
  context.set_deadline(DeadlineIn(budget));
  auto reader = stub.FetchBlob(&context, request);
  v1::BlobChunk chunk;
  while (reader->Read(&chunk)) sink(chunk.data());
  return reader->Finish();
}

}  // namespace

Result<UploadStats> UploadMissingBlobs(v1::BlobService::Stub& stub, const std::string& project,
                                       const std::vector<LocalBlob>& blobs,
                                       const UploadProgress& progress) {
  // Identical files (one image twice in a dataset) are one blob: ask and send once.
  std::unordered_map<std::string, const LocalBlob*> by_sha;
  std::vector<LocalBlob> unique;
  for (const auto& blob : blobs) {
    if (by_sha.emplace(blob.sha256, &blob).second) unique.push_back(blob);
  }
  IMPULSE_ASSIGN_OR_RETURN(std::vector<std::string> missing, MissingOf(stub, project, unique));
  std::sort(missing.begin(), missing.end());
  missing.erase(std::unique(missing.begin(), missing.end()), missing.end());

  UploadStats stats;
  stats.blobs_present = unique.size() - missing.size();
  size_t next = 0;
  while (next < missing.size()) {
    // Size this stream's deadline from the files it will carry.
    uint64_t planned = 0;
    size_t end = next;
    while (end < missing.size() && (end == next || planned < kStreamBytes)) {
      planned += std::filesystem::file_size(by_sha.at(missing[end])->path);
      ++end;
    }
    grpc::ClientContext context;
    context.set_deadline(DeadlineIn(TransferBudget(planned)));
    v1::UploadBlobsReply reply;
    auto writer = stub.UploadBlobs(&context, &reply);
    bool first = true;
    Status sent;
    for (size_t i = next; i < end && sent.ok(); ++i) {
      sent = SendFile(*writer, project, &first, *by_sha.at(missing[i]), &stats.bytes_sent);
      if (sent.ok() && progress) progress(i + 1, missing.size());
    }
    writer->WritesDone();
    grpc::Status finished = writer->Finish();
    if (!finished.ok()) return FromGrpc(finished).WithContext("UploadBlobs");
    IMPULSE_RETURN_IF_ERROR(sent);
    stats.blobs_sent += end - next;
    next = end;
  }
  return stats;
}

Status FetchBlobToFile(v1::BlobService::Stub& stub, const std::string& project,
                       const std::string& sha256, const std::string& path) {
  const std::string part = path + ".part";
  std::error_code ignored;
  std::filesystem::remove(part, ignored);
  Status last = Unavailable("FetchBlob " + sha256 + ": no attempt made");
  for (int attempt = 0; attempt < kFetchAttempts; ++attempt) {
    const uint64_t have = std::filesystem::exists(part) ? std::filesystem::file_size(part) : 0;
    std::ofstream out(part, std::ios::binary | std::ios::app);
    if (!out) return Internal("cannot write " + part);
    // The size is unknown until the first chunk; 30 minutes bounds any blob.
    grpc::Status status = StreamBlob(stub, project, sha256, have, std::chrono::seconds(1800),
                                     [&out](const std::string& data) {
                                       out.write(data.data(), static_cast<std::streamsize>(data.size()));
                                     });
    out.close();
    if (status.ok()) {
      IMPULSE_ASSIGN_OR_RETURN(std::string got, Sha256File(part));
      if (got != sha256) {
        std::filesystem::remove(part, ignored);
        return DataLoss("blob " + sha256 + " arrived with sha256 " + got);
      }
      std::filesystem::rename(part, path);
      return Status::Ok();
    }
    last = FromGrpc(status).WithContext("FetchBlob " + sha256);
    if (last.code() != StatusCode::kUnavailable) break;
  }
  std::filesystem::remove(part, ignored);
  return last;
}

Result<std::string> FetchBlobBytes(v1::BlobService::Stub& stub, const std::string& project,
                                   const std::string& sha256) {
  std::string bytes;
  grpc::Status status = StreamBlob(stub, project, sha256, 0, std::chrono::seconds(120),
                                   [&bytes](const std::string& data) { bytes += data; });
  if (!status.ok()) return FromGrpc(status).WithContext("FetchBlob " + sha256);
  if (Sha256Hex(bytes) != sha256) return DataLoss("blob " + sha256 + " arrived corrupted");
  return bytes;
}

}  // namespace impulse
