// CoordinatorLink: the worker's calls to the coordinator, each with a
// deadline, and the one place where gRPC statuses become impulse::Status.
//
// Thread-safe: gRPC stubs may be shared across threads.
#pragma once

#include <grpcpp/grpcpp.h>

#include <memory>
#include <optional>
#include <string>

#include "impulse/status.h"
#include "impulse/v1/coordinator.grpc.pb.h"

namespace impulse::worker {

class CoordinatorLink {
 public:
  explicit CoordinatorLink(const std::string& address);

  Result<v1::RegisterWorkerReply> Register(const v1::WorkerInfo& info);
  // Long-polls up to wait_ms; nullopt when nothing was runnable.
  Result<std::optional<v1::LeaseTaskReply>> Lease(const std::string& worker_id,
                                                  const std::vector<v1::TaskKind>& kinds,
                                                  uint32_t wait_ms);
  // Aborted: the lease is gone (expired and given to another attempt).
  Result<v1::HeartbeatReply> Heartbeat(const v1::HeartbeatRequest& request);
  Status Complete(const v1::CompleteTaskRequest& request);

  v1::BlobService::Stub& blobs() { return *blobs_; }

 private:
  std::shared_ptr<grpc::Channel> channel_;
  std::unique_ptr<v1::WorkerService::Stub> workers_;
  std::unique_ptr<v1::BlobService::Stub> blobs_;
};

}  // namespace impulse::worker
