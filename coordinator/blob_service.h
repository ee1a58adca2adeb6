// BlobService: content-addressed uploads and downloads for clients and
// workers. A blob is visible to a project only after that project uploaded
// it, even when its bytes are already stored for another project.
#pragma once

#include "coordinator/blob_store.h"
#include "coordinator/metrics.h"
#include "coordinator/store.h"
#include "impulse/v1/coordinator.grpc.pb.h"

namespace impulse::coordinator {

class BlobServiceImpl final : public v1::BlobService::Service {
 public:
  // All references must outlive the service.
  BlobServiceImpl(Store& store, BlobStore& blobs, Metrics& metrics)
      : store_(store), blobs_(blobs), metrics_(metrics) {}

  grpc::Status HasBlobs(grpc::ServerContext* context, const v1::HasBlobsRequest* request,
                        v1::HasBlobsReply* reply) override;
  grpc::Status UploadBlobs(grpc::ServerContext* context,
                           grpc::ServerReader<v1::UploadBlobsRequest>* reader,
                           v1::UploadBlobsReply* reply) override;
  grpc::Status FetchBlob(grpc::ServerContext* context, const v1::FetchBlobRequest* request,
                         grpc::ServerWriter<v1::BlobChunk>* writer) override;

 private:
  Status Upload(grpc::ServerReader<v1::UploadBlobsRequest>* reader, v1::UploadBlobsReply* reply);
  Status Fetch(grpc::ServerContext* context, const v1::FetchBlobRequest& request,
               grpc::ServerWriter<v1::BlobChunk>* writer);

  Store& store_;
  BlobStore& blobs_;
  Metrics& metrics_;
};

}  // namespace impulse::coordinator
