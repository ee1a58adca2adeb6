#include "coordinator/scheduler.h"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <random>
#include <set>

#include "coordinator/projects.h"
#include "impulse/device/device_estimate.h"
#include "impulse/impulse_spec.h"
#include "impulse/model/fused_ops.h"
#include "impulse/model/layer_graph.h"
#include "impulse/sha256.h"
#include "impulse/task_names.h"
#include "impulse/v1/dataset.pb.h"

namespace impulse::coordinator {
namespace {

std::string NewJobId() {
  static thread_local std::mt19937_64 rng(std::random_device{}());
  static constexpr char kHex[] = "0123456789abcdef";
  std::string id = "j-";
  uint64_t bits = rng();
  for (int i = 0; i < 12; ++i, bits >>= 4) id += kHex[bits & 15];
  return id;
}

// Identical features come from the same dataset, input block and processing
// block; the version tag changes whenever the feature format does.
std::string FeaturesCacheKey(const v1::Job& job) {
  const auto& in = job.impulse().input();
  const auto& proc = job.impulse().processing();
  return "features-v1:" +
         Sha256Hex(job.dataset_sha256() + "|" + std::to_string(in.width()) + "x" +
                   std::to_string(in.height()) + "|" + std::to_string(in.resize()) + "|" +
                   std::to_string(proc.block()) + "|" + std::to_string(proc.color()));
}

v1::TaskSpec SpecFor(const v1::Job& job, const std::string& task_id, v1::TaskKind kind) {
  v1::TaskSpec spec;
  spec.set_project(job.project());
  spec.set_job_id(job.id());
  spec.set_task_id(task_id);
  spec.set_kind(kind);
  *spec.mutable_impulse() = job.impulse();
  spec.set_dataset_sha256(job.dataset_sha256());
  return spec;
}

v1::JobKind ResolveKind(const v1::SubmitJobRequest& request) {
  if (request.kind() != v1::JOB_KIND_UNSPECIFIED) return request.kind();
  const bool learns = request.impulse().has_learning() &&
                      request.impulse().learning().block() != v1::LEARNING_KIND_UNSPECIFIED;
  return learns ? v1::JOB_KIND_TRAIN : v1::JOB_KIND_FEATURES;
}

Status CheckManifest(const v1::DatasetManifest& manifest, const std::set<std::string>& owned) {
  if (manifest.labels_size() < 2) {
    return InvalidArgument("dataset has " + std::to_string(manifest.labels_size()) +
                           " class(es); a classifier needs at least 2");
  }
  if (manifest.samples_size() == 0) return InvalidArgument("dataset has no samples");
  for (const auto& source : manifest.sources()) {
    if (!owned.count(source.sha256())) {
      return InvalidArgument("dataset file " + source.name() + " (" + source.sha256() +
                             ") was not uploaded");
    }
  }
  for (int i = 0; i < manifest.samples_size(); ++i) {
    const auto& sample = manifest.samples(i);
    if (sample.source() >= static_cast<uint32_t>(manifest.sources_size()) ||
        sample.label() >= static_cast<uint32_t>(manifest.labels_size())) {
      return InvalidArgument("dataset sample " + std::to_string(i) +
                             " names a source or label that does not exist");
    }
  }
  return Status::Ok();
}

// Settings that can only be checked against the dataset's size.
Status CheckFitsDataset(const v1::Impulse& impulse, const v1::DatasetInfo& dataset,
                        v1::JobKind kind) {
  if (kind != v1::JOB_KIND_TRAIN) return Status::Ok();
  const auto training = static_cast<uint64_t>(
      static_cast<double>(dataset.train_samples()) * (1.0 - impulse.training().validation_split()));
  if (impulse.training().batch_size() > training) {
    return InvalidArgument("training.batch_size: " + std::to_string(impulse.training().batch_size()) +
                           " is larger than the " + std::to_string(training) +
                           " training samples left after the validation split");
  }
  return Status::Ok();
}

estimate::DatasetSize SizeOf(const v1::DatasetInfo& dataset, bool features_cached) {
  return {.train_rows = dataset.train_samples(),
          .test_rows = dataset.test_samples(),
          .classes = static_cast<uint32_t>(dataset.labels_size()),
          .features_cached = features_cached};
}

}  // namespace

std::string ProjectOrDefault(const std::string& project) {
  return project.empty() ? "default" : project;
}

Scheduler::Scheduler(Store& store, BlobStore& blobs, Clock& clock, Metrics& metrics,
                     SchedulerOptions options, CostTableSource cost_tables,
                     EstimateFeedback feedback)
    : store_(store),
      blobs_(blobs),
      clock_(clock),
      metrics_(metrics),
      options_(options),
      cost_tables_(std::move(cost_tables)),
      feedback_(std::move(feedback)) {}

Result<v1::DatasetInfo> Scheduler::RegisterDataset(const std::string& project_name,
                                                   const std::string& manifest_sha256) {
  const std::string project = ProjectOrDefault(project_name);
  IMPULSE_ASSIGN_OR_RETURN(auto missing, store_.MissingBlobs(project, {manifest_sha256}));
  if (!missing.empty()) {
    return InvalidArgument("manifest_sha256: blob " + manifest_sha256 + " was not uploaded");
  }
  IMPULSE_ASSIGN_OR_RETURN(uint64_t size, blobs_.Size(manifest_sha256));
  IMPULSE_ASSIGN_OR_RETURN(std::string bytes, blobs_.Read(manifest_sha256, 0, size));
  v1::DatasetManifest manifest;
  if (!manifest.ParseFromString(bytes)) {
    return InvalidArgument("manifest_sha256: blob " + manifest_sha256 +
                           " is not a DatasetManifest");
  }
  std::vector<std::string> sources;
  for (const auto& source : manifest.sources()) sources.push_back(source.sha256());
  IMPULSE_ASSIGN_OR_RETURN(auto absent, store_.MissingBlobs(project, sources));
  std::set<std::string> owned(sources.begin(), sources.end());
  for (const auto& sha : absent) owned.erase(sha);
  IMPULSE_RETURN_IF_ERROR(CheckManifest(manifest, owned));

  v1::DatasetInfo info;
  info.set_sha256(manifest_sha256);
  info.set_name(manifest.name());
  *info.mutable_labels() = manifest.labels();
  for (const auto& sample : manifest.samples()) {
    if (sample.split() == v1::SPLIT_TEST) {
      info.set_test_samples(info.test_samples() + 1);
    } else {
      info.set_train_samples(info.train_samples() + 1);
    }
  }
  info.set_created_ms(clock_.NowMs());
  IMPULSE_RETURN_IF_ERROR(store_.PutDataset(project, info));
  return info;
}

Result<std::string> Scheduler::ResolveWeights(const v1::Job& job) {
  const std::string& name = job.impulse().learning().weights();
  if (name.empty()) return std::string();
  // The client uploads a local weights file and names it by its hash.
  if (name.rfind(kWeightsBlobPrefix, 0) == 0) {
    const std::string sha = name.substr(kWeightsBlobPrefix.size());
    IMPULSE_ASSIGN_OR_RETURN(auto missing, store_.MissingBlobs(job.project(), {sha}));
    if (!missing.empty()) return InvalidArgument("learning.weights: blob " + sha + " was not uploaded");
    return sha;
  }
  auto sha = store_.GetWeights(job.project(), name);
  if (sha.status().code() == StatusCode::kNotFound) {
    return InvalidArgument("learning.weights: " + sha.status().message() +
                           " (give a weights file, or train one with --save-weights " + name + ")");
  }
  return sha;
}

// The weights must fit the backbone the impulse describes, checked now so a
// mismatch is refused at submit rather than found by a worker.
Status Scheduler::CheckWeightsFit(const v1::Job& job, const std::string& sha256) {
  IMPULSE_ASSIGN_OR_RETURN(uint64_t size, blobs_.Size(sha256));
  IMPULSE_ASSIGN_OR_RETURN(std::string bytes, blobs_.Read(sha256, 0, size));
  v1::Model source;
  if (!source.ParseFromString(bytes)) {
    return InvalidArgument("learning.weights: " + sha256 +
                           " is not a weights file (an impulse.v1.Model; see docs/WEIGHTS.md)");
  }
  IMPULSE_ASSIGN_OR_RETURN(v1::DatasetInfo dataset,
                           store_.GetDataset(job.project(), job.dataset_sha256()));
  IMPULSE_ASSIGN_OR_RETURN(model::LayerGraph graph,
                           model::BuildGraph(job.impulse(), dataset.labels_size()));
  return graph.LoadWeights(source, /*backbone_only=*/true).status().WithContext("learning.weights");
}

Result<std::vector<NewTask>> Scheduler::BuildTasks(const v1::Job& job) {
  std::vector<NewTask> tasks;
  NewTask features{.id = job.id() + ".features",
                   .kind = v1::TASK_KIND_GENERATE_FEATURES,
                   .max_attempts = options_.max_attempts};
  features.spec = SpecFor(job, features.id, features.kind);
  IMPULSE_ASSIGN_OR_RETURN(auto cached, store_.GetCachedOutput(job.project(), FeaturesCacheKey(job)));
  if (cached) {
    cached->mutable_results()->mutable_features()->set_reused(true);
    features.reused_output = std::move(cached);
  }
  tasks.push_back(std::move(features));
  if (job.kind() == v1::JOB_KIND_FEATURES) return tasks;

  NewTask train{.id = job.id() + ".train",
                .kind = v1::TASK_KIND_TRAIN,
                .deps = {tasks.back().id},
                .max_attempts = options_.max_attempts};
  train.spec = SpecFor(job, train.id, train.kind);
  IMPULSE_ASSIGN_OR_RETURN(std::string weights, ResolveWeights(job));
  if (!weights.empty()) {
    IMPULSE_RETURN_IF_ERROR(CheckWeightsFit(job, weights));
    (*train.spec.mutable_inputs())["weights"] = weights;
  }
  tasks.push_back(std::move(train));
  // Evaluation reads both the model and the features it is evaluated on.
  NewTask quantize{.id = job.id() + ".quantize",
                   .kind = v1::TASK_KIND_QUANTIZE_EVALUATE,
                   .deps = {tasks.front().id, tasks.back().id},
                   .max_attempts = options_.max_attempts};
  quantize.spec = SpecFor(job, quantize.id, quantize.kind);
  IMPULSE_ASSIGN_OR_RETURN(*quantize.spec.mutable_device(),
                           options_.devices.Get(WithDefaults(job.impulse()).target()));
  tasks.push_back(std::move(quantize));
  return tasks;
}

Result<v1::Job> Scheduler::Submit(const v1::SubmitJobRequest& request) {
  // The impulse is checked before anything else, so a malformed one is
  // refused with INVALID_ARGUMENT whatever else is wrong.
  IMPULSE_RETURN_IF_ERROR(ValidateImpulse(request.impulse(), options_.devices.ids()));
  v1::Job job;
  job.set_project(ProjectOrDefault(request.project()));
  job.set_kind(ResolveKind(request));
  if (job.kind() == v1::JOB_KIND_TUNE) {
    return InvalidArgument("kind: tune jobs are not accepted by this coordinator yet");
  }
  auto dataset = FindDataset(job.project(), request.dataset_sha256());
  IMPULSE_RETURN_IF_ERROR(dataset.status());
  IMPULSE_RETURN_IF_ERROR(CheckFitsDataset(WithDefaults(request.impulse()), *dataset,
                                           job.kind()));
  if (job.kind() == v1::JOB_KIND_TRAIN) {
    // Every architecture error (sizes, widths, layers) is found here, named
    // by its field, before anything is queued; so is a layer the int8
    // engine cannot run, before any training is spent on the model.
    IMPULSE_ASSIGN_OR_RETURN(
        model::LayerGraph graph,
        model::BuildGraph(WithDefaults(request.impulse()), dataset->labels_size()));
    IMPULSE_RETURN_IF_ERROR(model::FusedOps::FromGraph(graph).status().WithContext("learning"));
  }
  if (!request.save_weights_as().empty()) {
    if (job.kind() != v1::JOB_KIND_TRAIN) {
      return InvalidArgument("save_weights_as: only a training job produces weights");
    }
    job.set_save_weights_as(request.save_weights_as());
  }

  job.set_id(NewJobId());
  job.set_state(v1::JOB_STATE_QUEUED);
  *job.mutable_impulse() = WithDefaults(request.impulse());
  job.set_dataset_sha256(request.dataset_sha256());
  job.set_created_ms(clock_.NowMs());
  job.set_updated_ms(job.created_ms());
  IMPULSE_ASSIGN_OR_RETURN(auto tasks, BuildTasks(job));
  IMPULSE_RETURN_IF_ERROR(CheckJobLimit(job, *dataset, tasks.front().reused_output.has_value()));
  Status created = store_.CreateJob(job, tasks, job.created_ms());
  if (created.code() == StatusCode::kResourceExhausted) {
    metrics_.ObserveRefusal(job.project(), "concurrency");
  } else if (created.code() == StatusCode::kFailedPrecondition) {
    metrics_.ObserveRefusal(job.project(), "budget");
  }
  IMPULSE_RETURN_IF_ERROR(created);
  return store_.GetJob(job.project(), job.id());
}

Status Scheduler::CheckJobLimit(v1::Job& job, const v1::DatasetInfo& dataset,
                                bool features_cached) {
  v1::Impulse impulse = job.impulse();
  if (job.kind() == v1::JOB_KIND_FEATURES) impulse.clear_learning();
  const estimate::DatasetSize data = SizeOf(dataset, features_cached);
  const estimate::CostTable cost = CostTableNow();
  IMPULSE_ASSIGN_OR_RETURN(estimate::JobEstimate estimate,
                           estimate::EstimateJob(impulse, data, cost));
  job.set_estimate_s(estimate.total_s);
  IMPULSE_ASSIGN_OR_RETURN(v1::Project project, store_.GetProject(job.project(), clock_.NowMs()));
  if (estimate.total_s <= project.job_limit_s()) return Status::Ok();
  metrics_.ObserveRefusal(job.project(), "job_limit");
  return FailedPrecondition(
      OverJobLimitMessage(estimate.total_s, project.job_limit_s(),
                          estimate::FitAdvice(impulse, data, cost, project.job_limit_s())));
}

Result<std::optional<LeaseGrant>> Scheduler::Lease(const std::string& worker_id,
                                                   const std::vector<v1::TaskKind>& kinds,
                                                   int64_t wait_ms,
                                                   const std::function<bool()>& abandoned) {
  const int64_t deadline_ms =
      clock_.NowMs() + std::clamp<int64_t>(wait_ms, 0, options_.max_lease_wait_ms);
  while (true) {
    IMPULSE_ASSIGN_OR_RETURN(auto grant,
                             store_.LeaseTask(worker_id, kinds, clock_.NowMs(), options_.lease_ttl_ms));
    if (grant || clock_.NowMs() >= deadline_ms || (abandoned && abandoned())) return grant;
    clock_.SleepForMs(std::min(options_.poll_interval_ms, deadline_ms - clock_.NowMs()));
  }
}

Result<HeartbeatAnswer> Scheduler::Heartbeat(const v1::HeartbeatRequest& request) {
  const int64_t now_ms = clock_.NowMs();
  TaskReport report{.progress = request.progress(),
                    .events = {request.events().begin(), request.events().end()},
                    .checkpoint_sha256 = request.checkpoint_sha256(),
                    .compute_s = request.compute_s()};
  for (auto& event : report.events) {
    event.set_task_id(request.task_id());
    if (event.time_ms() == 0) event.set_time_ms(now_ms);
  }
  const std::string project = ProjectOrDefault(request.project());
  IMPULSE_ASSIGN_OR_RETURN(HeartbeatAnswer answer,
                           store_.Heartbeat(project, request.task_id(), request.fencing_token(),
                                            report, now_ms, options_.lease_ttl_ms));
  metrics_.ObserveCharge(project, answer.charged_s);
  if (answer.withdrew) metrics_.ObserveWithdrawal(project);
  return answer;
}

Status Scheduler::Complete(const v1::CompleteTaskRequest& request) {
  const std::string project = ProjectOrDefault(request.project());
  TaskCompletion completion{.succeeded = request.succeeded(),
                            .error = request.error(),
                            .output = request.output(),
                            .compute_s = request.compute_s()};
  const int64_t now_ms = clock_.NowMs();
  IMPULSE_ASSIGN_OR_RETURN(auto effect, store_.CompleteTask(project, request.task_id(),
                                                            request.fencing_token(), completion,
                                                            now_ms));
  metrics_.ObserveCompletion(effect, now_ms);
  metrics_.ObserveCharge(project, effect.charged_s);
  if (effect.withdrew) metrics_.ObserveWithdrawal(project);
  if (effect.task_state != v1::TASK_STATE_SUCCEEDED) return Status::Ok();
  IMPULSE_RETURN_IF_ERROR(RememberOutput(project, effect, request.output()));
  // The completion stands either way: a worker must not retry it because
  // the estimate could not learn from it.
  if (Status learned = LearnFromTask(project, effect, request.compute_s()); !learned.ok()) {
    spdlog::warn("estimate scales: task {}/{} not learned from: {}", project, request.task_id(),
                 learned.ToString());
  }
  return Status::Ok();
}

// Not atomic with the completion either: a lost sample only makes the
// learned scales a task older. The stage is re-estimated with the table of
// now, scales off, since the scales are what is being learned.
Status Scheduler::LearnFromTask(const std::string& project, const CompletionEffect& effect,
                                double actual_s) {
  if (!feedback_) return Status::Ok();
  IMPULSE_ASSIGN_OR_RETURN(v1::Job job, store_.GetJob(project, effect.job_id));
  IMPULSE_ASSIGN_OR_RETURN(v1::DatasetInfo dataset,
                           store_.GetDataset(project, job.dataset_sha256()));
  estimate::CostTable cost = CostTableNow();
  cost.set_features_scale(1);
  cost.set_train_scale(1);
  cost.set_evaluate_scale(1);
  v1::Impulse impulse = job.impulse();
  if (job.kind() == v1::JOB_KIND_FEATURES) impulse.clear_learning();
  IMPULSE_ASSIGN_OR_RETURN(estimate::JobEstimate e,
                           estimate::EstimateJob(impulse, SizeOf(dataset, false), cost));
  const double estimated_s = effect.kind == v1::TASK_KIND_GENERATE_FEATURES ? e.features_s
                             : effect.kind == v1::TASK_KIND_TRAIN           ? e.train_s
                                                                            : e.evaluate_s;
  return feedback_(cost.source(), effect.kind, actual_s, estimated_s);
}

// Not atomic with the completion: losing these writes only costs a
// recomputation or a re-run later, never a wrong answer.
Status Scheduler::RememberOutput(const std::string& project, const CompletionEffect& effect,
                                 const v1::TaskOutput& output) {
  if (effect.kind != v1::TASK_KIND_GENERATE_FEATURES && effect.kind != v1::TASK_KIND_TRAIN) {
    return Status::Ok();
  }
  IMPULSE_ASSIGN_OR_RETURN(v1::Job job, store_.GetJob(project, effect.job_id));
  if (effect.kind == v1::TASK_KIND_GENERATE_FEATURES) {
    return store_.PutCachedOutput(project, FeaturesCacheKey(job), output);
  }
  if (job.save_weights_as().empty()) return Status::Ok();
  auto model = output.blobs().find("model");
  if (model == output.blobs().end()) return Internal("train task returned no model blob");
  return store_.PutWeights(project, job.save_weights_as(), model->second);
}

Result<v1::DatasetInfo> Scheduler::FindDataset(const std::string& project,
                                               const std::string& sha256) {
  if (sha256.empty()) return InvalidArgument("dataset_sha256: no dataset given (pass --data PATH)");
  auto dataset = store_.GetDataset(project, sha256);
  if (!dataset.ok() && dataset.status().code() == StatusCode::kNotFound) {
    return InvalidArgument("dataset_sha256: project '" + project + "' has no dataset " + sha256);
  }
  return dataset;
}

estimate::CostTable Scheduler::CostTableNow() const {
  return cost_tables_ ? cost_tables_() : estimate::DefaultCostTable();
}

Result<v1::EstimateReply> Scheduler::Estimate(const v1::EstimateRequest& request) {
  IMPULSE_RETURN_IF_ERROR(ValidateImpulse(request.impulse(), options_.devices.ids()));
  v1::Job job;
  job.set_project(ProjectOrDefault(request.project()));
  *job.mutable_impulse() = WithDefaults(request.impulse());
  job.set_dataset_sha256(request.dataset_sha256());
  IMPULSE_ASSIGN_OR_RETURN(v1::DatasetInfo dataset,
                           FindDataset(job.project(), request.dataset_sha256()));
  IMPULSE_ASSIGN_OR_RETURN(auto cached,
                           store_.GetCachedOutput(job.project(), FeaturesCacheKey(job)));
  const estimate::DatasetSize data = SizeOf(dataset, cached.has_value());
  const estimate::CostTable cost = CostTableNow();
  IMPULSE_ASSIGN_OR_RETURN(estimate::JobEstimate e, estimate::EstimateJob(job.impulse(), data, cost));
  IMPULSE_ASSIGN_OR_RETURN(v1::Project project, store_.GetProject(job.project(), clock_.NowMs()));

  v1::EstimateReply reply;
  reply.set_compute_s(e.total_s);
  reply.set_limit_s(project.job_limit_s());
  reply.set_macs(e.macs_per_sample);
  reply.set_features_s(e.features_s);
  reply.set_train_s(e.train_s);
  reply.set_evaluate_s(e.evaluate_s);
  reply.set_epochs(e.epochs);
  reply.set_train_rows(e.train_rows);
  reply.set_seconds_per_epoch(e.epoch_s);
  reply.set_cost_source(e.cost_source);
  for (std::string& way : estimate::FitOptions(job.impulse(), data, cost, project.job_limit_s())) {
    reply.add_advice(std::move(way));
  }
  const v1::LearningBlock& learning = job.impulse().learning();
  if (!job.impulse().has_learning() || learning.block() == v1::LEARNING_KIND_UNSPECIFIED) {
    return reply;  // features only: no model to put on a device
  }
  IMPULSE_ASSIGN_OR_RETURN(model::LayerGraph graph,
                           model::BuildGraph(job.impulse(), dataset.labels_size()));
  IMPULSE_ASSIGN_OR_RETURN(v1::Device device, options_.devices.Get(job.impulse().target()));
  for (auto [precision, figures] :
       {std::pair{device::Precision::kFloat32, reply.mutable_float32()},
        std::pair{device::Precision::kInt8, reply.mutable_int8()}}) {
    auto on_device = device::EstimateDevice(graph, device, precision);
    IMPULSE_RETURN_IF_ERROR(on_device.status().WithContext("learning"));
    *figures = on_device->Figures(device.id());
  }
  return reply;
}

}  // namespace impulse::coordinator
