#include "client/commands.h"

#include <grpcpp/grpcpp.h>
#include <unistd.h>
#include <google/protobuf/util/json_util.h>

#include <chrono>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <thread>

#include "client/dataset_layout.h"
#include "client/duration.h"
#include "client/output.h"
#include "impulse/blob_transfer.h"
#include "impulse/grpc_status.h"
#include "impulse/impulse_spec.h"
#include "impulse/sha256.h"
#include "impulse/task_names.h"

namespace impulse::client {
namespace {

namespace fs = std::filesystem;

constexpr auto kUnaryDeadline = std::chrono::seconds(30);
constexpr int kWatchReconnects = 100;  // each waits a little longer, up to 10 s

// One connection to the coordinator and the project every call names.
class Session {
 public:
  explicit Session(const GlobalOptions& global)
      : global_(global),
        channel_(grpc::CreateChannel(global.coordinator, grpc::InsecureChannelCredentials())),
        client_(v1::ClientService::NewStub(channel_)),
        blobs_(v1::BlobService::NewStub(channel_)) {}

  const std::string& project() const { return global_.project; }
  v1::ClientService::Stub& client() { return *client_; }
  v1::BlobService::Stub& blobs() { return *blobs_; }

  // A unary call with a deadline; the Status names the method.
  template <typename Request, typename Reply, typename Method>
  Result<Reply> Call(const char* name, Method method, const Request& request) {
    grpc::ClientContext context;
    context.set_deadline(std::chrono::system_clock::now() + kUnaryDeadline);
    Reply reply;
    grpc::Status status = ((*client_).*method)(&context, request, &reply);
    if (status.error_code() == grpc::StatusCode::UNAVAILABLE) {
      return Unavailable("cannot reach the coordinator at " + global_.coordinator +
                         " (start one with deploy/local-cluster up, or set --coordinator): " +
                         status.error_message());
    }
    if (!status.ok()) return FromGrpc(status).WithContext(name);
    return reply;
  }

 private:
  const GlobalOptions global_;
  std::shared_ptr<grpc::Channel> channel_;
  std::unique_ptr<v1::ClientService::Stub> client_;
  std::unique_ptr<v1::BlobService::Stub> blobs_;
};

int Fail(const Status& status) {
  PrintError(status);
  return ExitCodeFor(status);
}

int ExitCodeForJob(const v1::Job& job) {
  return job.state() == v1::JOB_STATE_SUCCEEDED ? 0 : 1;
}

// Uploads the dataset's files and manifest (only what the coordinator
// lacks) and registers it; returns the dataset's sha256.
Result<std::string> UploadDataset(Session& session, const SubmitOptions& options, bool quiet) {
  DatasetOptions layout_options;
  layout_options.test_split = options.test_split;
  layout_options.seed = options.split_seed;
  IMPULSE_ASSIGN_OR_RETURN(DatasetPlan plan, ReadDataset(options.data_path, layout_options));
  for (const auto& warning : plan.warnings) std::cerr << "warning: " << warning << "\n";

  const std::string manifest_bytes = plan.manifest.SerializeAsString();
  const std::string manifest_sha = Sha256Hex(manifest_bytes);
  // Per process: two clients uploading the same dataset at once must not
  // remove each other's file.
  const fs::path manifest_path =
      fs::temp_directory_path() /
      ("impulse-manifest-" + manifest_sha + "-" + std::to_string(::getpid()) + ".pb");
  if (!(std::ofstream(manifest_path, std::ios::binary) << manifest_bytes)) {
    return Internal("cannot write the dataset manifest to " + manifest_path.string());
  }

  std::vector<LocalBlob> blobs;
  for (int i = 0; i < plan.manifest.sources_size(); ++i) {
    blobs.push_back({plan.manifest.sources(i).sha256(), plan.source_paths[i]});
  }
  blobs.push_back({manifest_sha, manifest_path.string()});
  auto uploaded = UploadMissingBlobs(
      session.blobs(), session.project(), blobs, [quiet](uint64_t done, uint64_t total) {
        if (!quiet && (done == total || done % 500 == 0)) {
          std::cerr << "uploading dataset: " << done << "/" << total << " files"
                    << (done == total ? "\n" : "\r") << std::flush;
        }
      });
  std::error_code ignored;
  fs::remove(manifest_path, ignored);
  IMPULSE_RETURN_IF_ERROR(uploaded.status());
  if (!quiet) {
    std::cerr << "dataset " << plan.manifest.name() << ": " << plan.manifest.samples_size()
              << " samples, " << plan.manifest.labels_size() << " classes; sent "
              << uploaded->blobs_sent << " files (" << (uploaded->bytes_sent >> 10) << " KiB), "
              << uploaded->blobs_present << " already there\n";
  }
  v1::RegisterDatasetRequest request;
  request.set_project(session.project());
  request.set_manifest_sha256(manifest_sha);
  IMPULSE_ASSIGN_OR_RETURN(v1::DatasetInfo info,
                           (session.Call<v1::RegisterDatasetRequest, v1::DatasetInfo>(
                               "RegisterDataset", &v1::ClientService::Stub::RegisterDataset,
                               request)));
  return info.sha256();
}

// Follows the job's events until it ends, resuming after broken streams
// from the last event seen. Returns the final job.
Result<v1::Job> FollowJob(Session& session, const std::string& job_id, bool json) {
  EventPrinter printer(json);
  std::string after;
  for (int reconnect = 0; reconnect < kWatchReconnects; ++reconnect) {
    v1::WatchJobRequest request;
    request.set_project(session.project());
    request.set_job_id(job_id);
    request.set_after_event_id(after);
    grpc::ClientContext context;
    // The server ends a watch after 10 minutes; this bounds a silent one.
    context.set_deadline(std::chrono::system_clock::now() + std::chrono::minutes(11));
    auto reader = session.client().WatchJob(&context, request);
    v1::Event event;
    while (reader->Read(&event)) {
      printer.Print(event);
      after = event.id();
      reconnect = 0;
    }
    grpc::Status status = reader->Finish();
    if (!status.ok() && status.error_code() != grpc::StatusCode::UNAVAILABLE &&
        status.error_code() != grpc::StatusCode::DEADLINE_EXCEEDED) {
      return FromGrpc(status).WithContext("WatchJob");
    }
    v1::GetJobRequest get;
    get.set_project(session.project());
    get.set_job_id(job_id);
    auto job = session.Call<v1::GetJobRequest, v1::Job>("GetJob", &v1::ClientService::Stub::GetJob, get);
    if (job.ok() && IsTerminal(job->state())) return job;
    if (!job.ok() && job.status().code() != StatusCode::kUnavailable) return job.status();
    std::this_thread::sleep_for(std::chrono::milliseconds(std::min(10000, 200 * (reconnect + 1))));
  }
  return Unavailable("lost the coordinator while watching " + job_id + "; run: impulse-client watch " + job_id);
}

Result<v1::Job> GetJob(Session& session, const std::string& job_id) {
  v1::GetJobRequest request;
  request.set_project(session.project());
  request.set_job_id(job_id);
  return session.Call<v1::GetJobRequest, v1::Job>("GetJob", &v1::ClientService::Stub::GetJob,
                                                  request);
}

int FinishJob(Session& session, const v1::Job& job, const std::string& out_dir, bool json) {
  PrintJob(job, json);
  if (!out_dir.empty()) {
    Status written = WriteJobOutputs(job, session.blobs(), out_dir);
    if (!written.ok()) return Fail(written);
    if (!json) std::cerr << "wrote " << job.artifacts_size() << " artifacts and metrics.json to " << out_dir << "\n";
  }
  if (job.state() != v1::JOB_STATE_SUCCEEDED && !json) {
    std::cerr << "impulse-client: job " << job.id() << " " << JobStateName(job.state()) << ": "
              << job.reason() << "\n";
  }
  return ExitCodeForJob(job);
}

// learning.weights may name a local file: it is uploaded and the impulse
// then names it by hash. Anything else is a name the coordinator resolves.
Status UploadLocalWeights(Session& session, v1::Impulse& impulse) {
  const std::string path = impulse.learning().weights();
  std::error_code error;
  if (path.empty() || !fs::is_regular_file(path, error)) return Status::Ok();
  IMPULSE_ASSIGN_OR_RETURN(std::string sha, Sha256File(path));
  IMPULSE_RETURN_IF_ERROR(
      UploadMissingBlobs(session.blobs(), session.project(), {{sha, path}}).status());
  impulse.mutable_learning()->set_weights("sha256:" + sha);
  return Status::Ok();
}

}  // namespace

int RunSubmit(const GlobalOptions& global, const SubmitOptions& options) {
  auto impulse = LoadImpulseFile(options.impulse_path);
  if (!impulse.ok()) return Fail(impulse.status());
  Session session(global);
  auto dataset = UploadDataset(session, options, global.json);
  if (!dataset.ok()) return Fail(dataset.status());
  if (Status uploaded = UploadLocalWeights(session, *impulse); !uploaded.ok()) {
    return Fail(uploaded.WithContext("learning.weights"));
  }

  v1::SubmitJobRequest request;
  request.set_project(global.project);
  request.set_kind(options.features_only ? v1::JOB_KIND_FEATURES : v1::JOB_KIND_UNSPECIFIED);
  *request.mutable_impulse() = *impulse;
  request.set_dataset_sha256(*dataset);
  request.set_save_weights_as(options.save_weights_as);
  auto submitted = session.Call<v1::SubmitJobRequest, v1::SubmitJobReply>(
      "SubmitJob", &v1::ClientService::Stub::SubmitJob, request);
  if (!submitted.ok()) return Fail(submitted.status());
  const v1::Job& job = submitted->job();
  if (!options.wait && options.out_dir.empty()) {
    PrintJob(job, global.json);
    return 0;
  }
  if (!global.json) {
    std::cerr << "job " << job.id() << " (" << JobKindName(job.kind()) << ") submitted\n";
  }
  auto finished = FollowJob(session, job.id(), global.json);
  if (!finished.ok()) return Fail(finished.status());
  return FinishJob(session, *finished, options.out_dir, global.json);
}

int RunEstimate(const GlobalOptions& global, const SubmitOptions& options) {
  auto impulse = LoadImpulseFile(options.impulse_path);
  if (!impulse.ok()) return Fail(impulse.status());
  Session session(global);
  auto dataset = UploadDataset(session, options, global.json);
  if (!dataset.ok()) return Fail(dataset.status());
  // A local weights file is not uploaded: only whether weights are given
  // (a frozen backbone trains faster) matters to the estimate.
  v1::EstimateRequest request;
  request.set_project(global.project);
  *request.mutable_impulse() = *impulse;
  request.set_dataset_sha256(*dataset);
  auto estimate = session.Call<v1::EstimateRequest, v1::EstimateReply>(
      "Estimate", &v1::ClientService::Stub::Estimate, request);
  if (!estimate.ok()) return Fail(estimate.status());
  PrintEstimate(*estimate, WithDefaults(*impulse), global.json);
  return 0;
}

int RunWatch(const GlobalOptions& global, const std::string& job_id) {
  Session session(global);
  auto finished = FollowJob(session, job_id, global.json);
  if (!finished.ok()) return Fail(finished.status());
  return FinishJob(session, *finished, "", global.json);
}

int RunStatus(const GlobalOptions& global, const std::string& job_id) {
  Session session(global);
  auto job = GetJob(session, job_id);
  if (!job.ok()) return Fail(job.status());
  PrintJob(*job, global.json);
  return IsTerminal(job->state()) ? ExitCodeForJob(*job) : 0;
}

int RunCancel(const GlobalOptions& global, const std::string& job_id) {
  Session session(global);
  v1::CancelJobRequest request;
  request.set_project(global.project);
  request.set_job_id(job_id);
  auto job = session.Call<v1::CancelJobRequest, v1::Job>("CancelJob",
                                                         &v1::ClientService::Stub::CancelJob, request);
  if (!job.ok()) return Fail(job.status());
  PrintJob(*job, global.json);
  return 0;
}

int RunFetch(const GlobalOptions& global, const std::string& job_id, const std::string& out_dir) {
  Session session(global);
  auto job = GetJob(session, job_id);
  if (!job.ok()) return Fail(job.status());
  Status written = WriteJobOutputs(*job, session.blobs(), out_dir);
  if (!written.ok()) return Fail(written);
  if (!global.json) std::cerr << "wrote " << job->artifacts_size() << " artifacts and metrics.json to " << out_dir << "\n";
  return 0;
}

int RunList(const GlobalOptions& global) {
  Session session(global);
  v1::ListJobsRequest request;
  request.set_project(global.project);
  auto jobs = session.Call<v1::ListJobsRequest, v1::ListJobsReply>(
      "ListJobs", &v1::ClientService::Stub::ListJobs, request);
  if (!jobs.ok()) return Fail(jobs.status());
  PrintJobList(*jobs, global.json);
  return 0;
}

int RunWorkers(const GlobalOptions& global) {
  Session session(global);
  auto workers = session.Call<v1::ListWorkersRequest, v1::ListWorkersReply>(
      "ListWorkers", &v1::ClientService::Stub::ListWorkers, v1::ListWorkersRequest());
  if (!workers.ok()) return Fail(workers.status());
  PrintWorkers(*workers, global.json);
  return 0;
}

namespace {

Result<v1::Project> GetProject(Session& session) {
  v1::GetProjectRequest request;
  request.set_project(session.project());
  return session.Call<v1::GetProjectRequest, v1::Project>(
      "GetProject", &v1::ClientService::Stub::GetProject, request);
}

// The flags given, applied over the project's current settings.
Status ApplyProjectFlags(const ProjectFlags& flags, v1::Project& project) {
  if (flags.job_limit.empty() && flags.budget.empty() && flags.period.empty() &&
      flags.max_jobs.empty()) {
    return InvalidArgument(
        "project set: give at least one of --job-limit, --budget, --period, --max-jobs");
  }
  const struct {
    const char* flag;
    const std::string& text;
    void (v1::Project::*set)(double);
  } durations[] = {{"--job-limit", flags.job_limit, &v1::Project::set_job_limit_s},
                   {"--budget", flags.budget, &v1::Project::set_period_budget_s},
                   {"--period", flags.period, &v1::Project::set_period_s}};
  for (const auto& duration : durations) {
    if (duration.text.empty()) continue;
    IMPULSE_ASSIGN_OR_RETURN(double seconds, ParseDurationS(duration.text, duration.flag));
    (project.*duration.set)(seconds);
  }
  if (!flags.max_jobs.empty()) {
    char* end = nullptr;
    const unsigned long max = std::strtoul(flags.max_jobs.c_str(), &end, 10);
    if (*end != '\0' || flags.max_jobs[0] == '-' || max > UINT32_MAX) {
      return InvalidArgument("--max-jobs: '" + flags.max_jobs + "' is not a count (0 = unlimited)");
    }
    project.set_max_concurrent_jobs(static_cast<uint32_t>(max));
  }
  return Status::Ok();
}

}  // namespace

int RunProjectShow(const GlobalOptions& global) {
  Session session(global);
  auto project = GetProject(session);
  if (!project.ok()) return Fail(project.status());
  PrintProject(*project, global.json);
  return 0;
}

int RunProjectSet(const GlobalOptions& global, const ProjectFlags& flags) {
  Session session(global);
  auto project = GetProject(session);
  if (!project.ok()) return Fail(project.status());
  if (Status applied = ApplyProjectFlags(flags, *project); !applied.ok()) return Fail(applied);
  v1::SetProjectRequest request;
  *request.mutable_project() = *project;
  auto updated = session.Call<v1::SetProjectRequest, v1::Project>(
      "SetProject", &v1::ClientService::Stub::SetProject, request);
  if (!updated.ok()) return Fail(updated.status());
  PrintProject(*updated, global.json);
  return 0;
}

}  // namespace impulse::client
