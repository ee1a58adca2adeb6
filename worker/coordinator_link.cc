#include "worker/coordinator_link.h"

#include <chrono>

#include "impulse/grpc_status.h"

namespace impulse::worker {
namespace {

constexpr auto kUnaryDeadline = std::chrono::seconds(30);

void SetDeadline(grpc::ClientContext& context, std::chrono::milliseconds budget) {
  context.set_deadline(std::chrono::system_clock::now() + budget);
}

std::shared_ptr<grpc::Channel> MakeChannel(const std::string& address) {
  grpc::ChannelArguments args;
  // Long polls sit idle for up to 30 s; keepalives notice a dead coordinator.
  args.SetInt(GRPC_ARG_KEEPALIVE_TIME_MS, 20000);
  args.SetInt(GRPC_ARG_KEEPALIVE_TIMEOUT_MS, 10000);
  args.SetInt(GRPC_ARG_KEEPALIVE_PERMIT_WITHOUT_CALLS, 1);
  args.SetInt(GRPC_ARG_MAX_RECEIVE_MESSAGE_LENGTH, 16 << 20);
  return grpc::CreateCustomChannel(address, grpc::InsecureChannelCredentials(), args);
}

}  // namespace

CoordinatorLink::CoordinatorLink(const std::string& address)
    : channel_(MakeChannel(address)),
      workers_(v1::WorkerService::NewStub(channel_)),
      blobs_(v1::BlobService::NewStub(channel_)) {}

Result<v1::RegisterWorkerReply> CoordinatorLink::Register(const v1::WorkerInfo& info) {
  v1::RegisterWorkerRequest request;
  *request.mutable_info() = info;
  v1::RegisterWorkerReply reply;
  grpc::ClientContext context;
  SetDeadline(context, kUnaryDeadline);
  grpc::Status status = workers_->RegisterWorker(&context, request, &reply);
  if (!status.ok()) return FromGrpc(status).WithContext("RegisterWorker");
  return reply;
}

Result<std::optional<v1::LeaseTaskReply>> CoordinatorLink::Lease(
    const std::string& worker_id, const std::vector<v1::TaskKind>& kinds, uint32_t wait_ms) {
  v1::LeaseTaskRequest request;
  request.set_worker_id(worker_id);
  for (auto kind : kinds) request.add_kinds(kind);
  request.set_wait_ms(wait_ms);
  v1::LeaseTaskReply reply;
  grpc::ClientContext context;
  SetDeadline(context, std::chrono::milliseconds(wait_ms) + kUnaryDeadline);
  grpc::Status status = workers_->LeaseTask(&context, request, &reply);
  if (!status.ok()) return FromGrpc(status).WithContext("LeaseTask");
  if (!reply.leased()) return std::optional<v1::LeaseTaskReply>();
  return std::optional<v1::LeaseTaskReply>(std::move(reply));
}

Result<v1::HeartbeatReply> CoordinatorLink::Heartbeat(const v1::HeartbeatRequest& request) {
  v1::HeartbeatReply reply;
  grpc::ClientContext context;
  SetDeadline(context, std::chrono::seconds(10));
  grpc::Status status = workers_->Heartbeat(&context, request, &reply);
  if (!status.ok()) return FromGrpc(status).WithContext("Heartbeat");
  return reply;
}

Status CoordinatorLink::Complete(const v1::CompleteTaskRequest& request) {
  v1::CompleteTaskReply reply;
  grpc::ClientContext context;
  SetDeadline(context, kUnaryDeadline);
  grpc::Status status = workers_->CompleteTask(&context, request, &reply);
  if (!status.ok()) return FromGrpc(status).WithContext("CompleteTask");
  return Status::Ok();
}

}  // namespace impulse::worker
