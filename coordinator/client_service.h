// ClientService: what impulse-client calls. Handlers validate, call one
// Scheduler or Store method, and map the Status.
#pragma once

#include "coordinator/blob_store.h"
#include "coordinator/clock.h"
#include "coordinator/metrics.h"
#include "coordinator/scheduler.h"
#include "coordinator/store.h"
#include "impulse/v1/coordinator.grpc.pb.h"

namespace impulse::coordinator {

struct WatchOptions {
  int64_t poll_ms = 1000;             // one blocking read of the event stream
  int64_t max_stream_ms = 10 * 60 * 1000;  // the client resumes after this
};

class ClientServiceImpl final : public v1::ClientService::Service {
 public:
  // All references must outlive the service.
  ClientServiceImpl(Scheduler& scheduler, Store& store, BlobStore& blobs, Clock& clock,
                    Metrics& metrics, WatchOptions watch = {})
      : scheduler_(scheduler),
        store_(store),
        blobs_(blobs),
        clock_(clock),
        metrics_(metrics),
        watch_(watch) {}

  grpc::Status RegisterDataset(grpc::ServerContext*, const v1::RegisterDatasetRequest*,
                               v1::DatasetInfo*) override;
  grpc::Status SubmitJob(grpc::ServerContext*, const v1::SubmitJobRequest*,
                         v1::SubmitJobReply*) override;
  grpc::Status GetJob(grpc::ServerContext*, const v1::GetJobRequest*, v1::Job*) override;
  grpc::Status ListJobs(grpc::ServerContext*, const v1::ListJobsRequest*,
                        v1::ListJobsReply*) override;
  grpc::Status WatchJob(grpc::ServerContext*, const v1::WatchJobRequest*,
                        grpc::ServerWriter<v1::Event>*) override;
  grpc::Status CancelJob(grpc::ServerContext*, const v1::CancelJobRequest*, v1::Job*) override;
  grpc::Status ListWorkers(grpc::ServerContext*, const v1::ListWorkersRequest*,
                           v1::ListWorkersReply*) override;
  grpc::Status Estimate(grpc::ServerContext*, const v1::EstimateRequest*,
                        v1::EstimateReply*) override;
  grpc::Status GetProject(grpc::ServerContext*, const v1::GetProjectRequest*,
                          v1::Project*) override;
  grpc::Status SetProject(grpc::ServerContext*, const v1::SetProjectRequest*,
                          v1::Project*) override;

 private:
  Status Watch(grpc::ServerContext* context, const v1::WatchJobRequest& request,
               grpc::ServerWriter<v1::Event>* writer);

  Scheduler& scheduler_;
  Store& store_;
  BlobStore& blobs_;
  Clock& clock_;
  Metrics& metrics_;
  const WatchOptions watch_;
};

}  // namespace impulse::coordinator
