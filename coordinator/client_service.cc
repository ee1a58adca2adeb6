#include "coordinator/client_service.h"

#include "coordinator/partial_results.h"
#include "impulse/grpc_status.h"

namespace impulse::coordinator {
namespace {

constexpr uint32_t kDefaultListLimit = 50;
constexpr uint32_t kMaxListLimit = 1000;
constexpr uint32_t kEventsPerRead = 500;

}  // namespace

grpc::Status ClientServiceImpl::RegisterDataset(grpc::ServerContext*,
                                                const v1::RegisterDatasetRequest* request,
                                                v1::DatasetInfo* reply) {
  RpcTimer timer(metrics_, "RegisterDataset");
  auto info = scheduler_.RegisterDataset(request->project(), request->manifest_sha256());
  if (!info.ok()) return ToGrpc(timer.Record(info.status()));
  *reply = std::move(info).value();
  return grpc::Status::OK;
}

grpc::Status ClientServiceImpl::SubmitJob(grpc::ServerContext*,
                                          const v1::SubmitJobRequest* request,
                                          v1::SubmitJobReply* reply) {
  RpcTimer timer(metrics_, "SubmitJob");
  auto job = scheduler_.Submit(*request);
  if (!job.ok()) return ToGrpc(timer.Record(job.status()));
  *reply->mutable_job() = std::move(job).value();
  return grpc::Status::OK;
}

grpc::Status ClientServiceImpl::GetJob(grpc::ServerContext*, const v1::GetJobRequest* request,
                                       v1::Job* reply) {
  RpcTimer timer(metrics_, "GetJob");
  auto job = store_.GetJob(ProjectOrDefault(request->project()), request->job_id());
  if (!job.ok()) return ToGrpc(timer.Record(job.status()));
  Status partial = AddPartialResults(store_, blobs_, *job);
  if (!partial.ok()) return ToGrpc(timer.Record(partial));
  *reply = std::move(job).value();
  return grpc::Status::OK;
}

grpc::Status ClientServiceImpl::ListJobs(grpc::ServerContext*, const v1::ListJobsRequest* request,
                                         v1::ListJobsReply* reply) {
  RpcTimer timer(metrics_, "ListJobs");
  const uint32_t limit =
      request->limit() == 0 ? kDefaultListLimit : std::min(request->limit(), kMaxListLimit);
  auto jobs = store_.ListJobs(ProjectOrDefault(request->project()), limit);
  if (!jobs.ok()) return ToGrpc(timer.Record(jobs.status()));
  for (auto& job : *jobs) *reply->add_jobs() = std::move(job);
  return grpc::Status::OK;
}

Status ClientServiceImpl::Watch(grpc::ServerContext* context, const v1::WatchJobRequest& request,
                                grpc::ServerWriter<v1::Event>* writer) {
  const std::string project = ProjectOrDefault(request.project());
  const int64_t stop_ms = clock_.NowMs() + watch_.max_stream_ms;
  std::string after = request.after_event_id();
  // Bounded: ends with the job, the client, or after max_stream_ms.
  while (!context->IsCancelled() && clock_.NowMs() < stop_ms) {
    IMPULSE_ASSIGN_OR_RETURN(EventBatch batch, store_.ReadEvents(project, request.job_id(), after,
                                                                 watch_.poll_ms, kEventsPerRead));
    for (const auto& event : batch.events) {
      if (!writer->Write(event)) return Status::Ok();  // the client left
      after = event.id();
    }
    if (batch.job_finished && batch.events.empty()) return Status::Ok();
  }
  return Status::Ok();
}

grpc::Status ClientServiceImpl::WatchJob(grpc::ServerContext* context,
                                         const v1::WatchJobRequest* request,
                                         grpc::ServerWriter<v1::Event>* writer) {
  RpcTimer timer(metrics_, "WatchJob");
  return ToGrpc(timer.Record(Watch(context, *request, writer)));
}

grpc::Status ClientServiceImpl::CancelJob(grpc::ServerContext*,
                                          const v1::CancelJobRequest* request, v1::Job* reply) {
  RpcTimer timer(metrics_, "CancelJob");
  const std::string project = ProjectOrDefault(request->project());
  Status cancelled =
      store_.CancelJob(project, request->job_id(), "cancelled by the user", clock_.NowMs());
  if (!cancelled.ok()) return ToGrpc(timer.Record(cancelled));
  auto job = store_.GetJob(project, request->job_id());
  if (!job.ok()) return ToGrpc(timer.Record(job.status()));
  *reply = std::move(job).value();
  return grpc::Status::OK;
}

grpc::Status ClientServiceImpl::ListWorkers(grpc::ServerContext*, const v1::ListWorkersRequest*,
                                            v1::ListWorkersReply* reply) {
  RpcTimer timer(metrics_, "ListWorkers");
  const int64_t seen_after = clock_.NowMs() - 3 * scheduler_.options().lease_ttl_ms;
  auto workers = store_.ListWorkers(seen_after);
  if (!workers.ok()) return ToGrpc(timer.Record(workers.status()));
  for (auto& worker : *workers) *reply->add_workers() = std::move(worker);
  return grpc::Status::OK;
}

grpc::Status ClientServiceImpl::Estimate(grpc::ServerContext*, const v1::EstimateRequest* request,
                                         v1::EstimateReply* reply) {
  RpcTimer timer(metrics_, "Estimate");
  auto estimate = scheduler_.Estimate(*request);
  if (!estimate.ok()) return ToGrpc(timer.Record(estimate.status()));
  *reply = std::move(estimate).value();
  return grpc::Status::OK;
}

grpc::Status ClientServiceImpl::GetProject(grpc::ServerContext*,
                                           const v1::GetProjectRequest* request,
                                           v1::Project* reply) {
  RpcTimer timer(metrics_, "GetProject");
  auto project = store_.GetProject(ProjectOrDefault(request->project()), clock_.NowMs());
  if (!project.ok()) return ToGrpc(timer.Record(project.status()));
  *reply = std::move(project).value();
  return grpc::Status::OK;
}

grpc::Status ClientServiceImpl::SetProject(grpc::ServerContext*,
                                           const v1::SetProjectRequest* request,
                                           v1::Project* reply) {
  RpcTimer timer(metrics_, "SetProject");
  v1::Project settings = request->project();
  settings.set_name(ProjectOrDefault(settings.name()));
  auto project = store_.SetProject(settings, clock_.NowMs());
  if (!project.ok()) return ToGrpc(timer.Record(project.status()));
  *reply = std::move(project).value();
  return grpc::Status::OK;
}

}  // namespace impulse::coordinator
