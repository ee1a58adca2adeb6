#include "coordinator/worker_service.h"

#include <random>

#include "impulse/grpc_status.h"

namespace impulse::coordinator {
namespace {

std::string NewWorkerId(const std::string& hostname) {
  static thread_local std::mt19937_64 rng(std::random_device{}());
  static constexpr char kHex[] = "0123456789abcdef";
  std::string id = "w-";
  for (char c : hostname.substr(0, 24)) {
    id += (std::isalnum(static_cast<unsigned char>(c)) || c == '-') ? c : '-';
  }
  id += '-';
  uint64_t bits = rng();
  for (int i = 0; i < 8; ++i, bits >>= 4) id += kHex[bits & 15];
  return id;
}

}  // namespace

grpc::Status WorkerServiceImpl::RegisterWorker(grpc::ServerContext*,
                                               const v1::RegisterWorkerRequest* request,
                                               v1::RegisterWorkerReply* reply) {
  RpcTimer timer(metrics_, "RegisterWorker");
  v1::WorkerInfo info = request->info();
  // A worker that restarts keeps its name when it asks for it.
  if (info.id().empty()) info.set_id(NewWorkerId(info.hostname()));
  Status stored = store_.UpsertWorker(info, clock_.NowMs());
  if (!stored.ok()) return ToGrpc(timer.Record(stored));
  // Cost tables are cached per CPU model and thread count: a worker that
  // brings one updates the cache, one without may reuse it.
  if (info.has_cost_table()) {
    stored = store_.PutCostTable(info.cpu_model(), info.threads(), info.cost_table());
    if (!stored.ok()) return ToGrpc(timer.Record(stored));
  } else {
    auto cached = store_.GetCostTable(info.cpu_model(), info.threads());
    if (!cached.ok()) return ToGrpc(timer.Record(cached.status()));
    if (cached->has_value()) *reply->mutable_cached_cost_table() = std::move(**cached);
  }
  reply->set_worker_id(info.id());
  const auto& options = scheduler_.options();
  reply->set_lease_ttl_ms(static_cast<uint32_t>(options.lease_ttl_ms));
  reply->set_heartbeat_interval_ms(static_cast<uint32_t>(options.lease_ttl_ms / 5));
  return grpc::Status::OK;
}

grpc::Status WorkerServiceImpl::LeaseTask(grpc::ServerContext* context,
                                          const v1::LeaseTaskRequest* request,
                                          v1::LeaseTaskReply* reply) {
  RpcTimer timer(metrics_, "LeaseTask");
  if (request->worker_id().empty()) {
    return ToGrpc(timer.Record(InvalidArgument("worker_id: register first")));
  }
  std::vector<v1::TaskKind> kinds;
  for (int kind : request->kinds()) kinds.push_back(static_cast<v1::TaskKind>(kind));
  auto grant = scheduler_.Lease(request->worker_id(), kinds, request->wait_ms(),
                                [context] { return context->IsCancelled(); });
  if (!grant.ok()) return ToGrpc(timer.Record(grant.status()));
  if (!grant->has_value()) return grpc::Status::OK;
  LeaseGrant& lease = **grant;
  reply->set_leased(true);
  *reply->mutable_task() = std::move(lease.spec);
  reply->set_fencing_token(lease.fencing_token);
  reply->set_attempt(lease.attempt);
  reply->set_lease_ttl_ms(static_cast<uint32_t>(scheduler_.options().lease_ttl_ms));
  return grpc::Status::OK;
}

grpc::Status WorkerServiceImpl::Heartbeat(grpc::ServerContext*,
                                          const v1::HeartbeatRequest* request,
                                          v1::HeartbeatReply* reply) {
  RpcTimer timer(metrics_, "Heartbeat");
  auto answer = scheduler_.Heartbeat(*request);
  if (!answer.ok()) return ToGrpc(timer.Record(answer.status()));
  reply->set_cancel(answer->cancel);
  reply->set_reason(answer->reason);
  return grpc::Status::OK;
}

grpc::Status WorkerServiceImpl::CompleteTask(grpc::ServerContext*,
                                             const v1::CompleteTaskRequest* request,
                                             v1::CompleteTaskReply*) {
  RpcTimer timer(metrics_, "CompleteTask");
  return ToGrpc(timer.Record(scheduler_.Complete(*request)));
}

}  // namespace impulse::coordinator
