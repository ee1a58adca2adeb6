// WorkerService: the pull protocol (register, lease, heartbeat, complete).
// Handlers validate, call one Scheduler or Store method, and map the Status.
#pragma once

#include "coordinator/clock.h"
#include "coordinator/metrics.h"
#include "coordinator/scheduler.h"
#include "coordinator/store.h"
#include "impulse/v1/coordinator.grpc.pb.h"

namespace impulse::coordinator {

class WorkerServiceImpl final : public v1::WorkerService::Service {
 public:
  // All references must outlive the service.
  WorkerServiceImpl(Scheduler& scheduler, Store& store, Clock& clock, Metrics& metrics)
      : scheduler_(scheduler), store_(store), clock_(clock), metrics_(metrics) {}

  grpc::Status RegisterWorker(grpc::ServerContext*, const v1::RegisterWorkerRequest*,
                              v1::RegisterWorkerReply*) override;
  grpc::Status LeaseTask(grpc::ServerContext*, const v1::LeaseTaskRequest*,
                         v1::LeaseTaskReply*) override;
  grpc::Status Heartbeat(grpc::ServerContext*, const v1::HeartbeatRequest*,
                         v1::HeartbeatReply*) override;
  grpc::Status CompleteTask(grpc::ServerContext*, const v1::CompleteTaskRequest*,
                            v1::CompleteTaskReply*) override;

 private:
  Scheduler& scheduler_;
  Store& store_;
  Clock& clock_;
  Metrics& metrics_;
};

}  // namespace impulse::coordinator
