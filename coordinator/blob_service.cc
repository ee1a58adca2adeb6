#include "coordinator/blob_service.h"

#include <algorithm>

#include "coordinator/scheduler.h"
#include "impulse/blob_transfer.h"
#include "impulse/grpc_status.h"

namespace impulse::coordinator {
namespace {

constexpr int kMaxHasBatch = 10000;

}  // namespace

grpc::Status BlobServiceImpl::HasBlobs(grpc::ServerContext*, const v1::HasBlobsRequest* request,
                                       v1::HasBlobsReply* reply) {
  RpcTimer timer(metrics_, "HasBlobs");
  if (request->sha256_size() > kMaxHasBatch) {
    return ToGrpc(timer.Record(InvalidArgument("sha256: at most 10000 hashes per call")));
  }
  std::vector<std::string> asked(request->sha256().begin(), request->sha256().end());
  std::sort(asked.begin(), asked.end());
  asked.erase(std::unique(asked.begin(), asked.end()), asked.end());
  auto missing = store_.MissingBlobs(ProjectOrDefault(request->project()), asked);
  if (!missing.ok()) return ToGrpc(timer.Record(missing.status()));
  for (auto& sha : *missing) reply->add_missing(std::move(sha));
  // Ownership without bytes (a wiped data dir) must be re-sent, too.
  for (const auto& sha : asked) {
    if (std::find(missing->begin(), missing->end(), sha) == missing->end() && !blobs_.Has(sha)) {
      reply->add_missing(sha);
    }
  }
  return grpc::Status::OK;
}

Status BlobServiceImpl::Upload(grpc::ServerReader<v1::UploadBlobsRequest>* reader,
                               v1::UploadBlobsReply* reply) {
  v1::UploadBlobsRequest request;
  std::string project;
  bool first = true;
  std::unique_ptr<BlobWriter> writer;
  std::string current;
  uint64_t next_offset = 0;
  while (reader->Read(&request)) {
    if (first) project = ProjectOrDefault(request.project());
    first = false;
    const v1::BlobChunk& chunk = request.chunk();
    if (chunk.data().size() > kMaxChunkBytes) {
      return InvalidArgument("chunk of " + chunk.sha256() + " is over 1 MiB");
    }
    if (!writer) {
      if (chunk.offset() != 0) return InvalidArgument("blob " + chunk.sha256() + " starts at offset " + std::to_string(chunk.offset()));
      IMPULSE_ASSIGN_OR_RETURN(writer, blobs_.NewWriter(chunk.sha256()));
      current = chunk.sha256();
      next_offset = 0;
    }
    if (chunk.sha256() != current || chunk.offset() != next_offset) {
      return InvalidArgument("blob " + current + ": chunks out of order at offset " +
                             std::to_string(next_offset));
    }
    IMPULSE_RETURN_IF_ERROR(writer->Append(chunk.data()));
    next_offset += chunk.data().size();
    if (chunk.last()) {
      IMPULSE_RETURN_IF_ERROR(writer->Commit());
      writer.reset();
      IMPULSE_RETURN_IF_ERROR(store_.AddBlobs(project, {current}));
      reply->add_stored(current);
    }
  }
  if (writer) return InvalidArgument("stream ended inside blob " + current);
  return Status::Ok();
}

grpc::Status BlobServiceImpl::UploadBlobs(grpc::ServerContext*,
                                          grpc::ServerReader<v1::UploadBlobsRequest>* reader,
                                          v1::UploadBlobsReply* reply) {
  RpcTimer timer(metrics_, "UploadBlobs");
  return ToGrpc(timer.Record(Upload(reader, reply)));
}

Status BlobServiceImpl::Fetch(grpc::ServerContext* context, const v1::FetchBlobRequest& request,
                              grpc::ServerWriter<v1::BlobChunk>* writer) {
  const std::string project = ProjectOrDefault(request.project());
  IMPULSE_ASSIGN_OR_RETURN(auto missing, store_.MissingBlobs(project, {request.sha256()}));
  if (!missing.empty()) return NotFound("project '" + project + "' has no blob " + request.sha256());
  IMPULSE_ASSIGN_OR_RETURN(uint64_t size, blobs_.Size(request.sha256()));
  uint64_t offset = request.offset();
  do {
    if (context->IsCancelled()) return Cancelled("client went away");
    IMPULSE_ASSIGN_OR_RETURN(std::string data, blobs_.Read(request.sha256(), offset, kMaxChunkBytes));
    v1::BlobChunk chunk;
    chunk.set_sha256(request.sha256());
    chunk.set_offset(offset);
    chunk.set_size(size);
    offset += data.size();
    chunk.set_last(offset >= size || data.empty());
    chunk.set_data(std::move(data));
    if (!writer->Write(chunk)) return Unavailable("client stream closed");
    if (chunk.last()) break;
  } while (true);
  return Status::Ok();
}

grpc::Status BlobServiceImpl::FetchBlob(grpc::ServerContext* context,
                                        const v1::FetchBlobRequest* request,
                                        grpc::ServerWriter<v1::BlobChunk>* writer) {
  RpcTimer timer(metrics_, "FetchBlob");
  return ToGrpc(timer.Record(Fetch(context, *request, writer)));
}

}  // namespace impulse::coordinator
