#include "coordinator/partial_results.h"

#include <map>

#include "impulse/task_names.h"

namespace impulse::coordinator {
namespace {

constexpr uint32_t kEventsPerRead = 1000;

void AddCheckpoints(BlobStore& blobs, v1::Job& job) {
  for (const v1::Task& task : job.tasks()) {
    if (task.state() == v1::TASK_STATE_SUCCEEDED || task.checkpoint_sha256().empty()) continue;
    auto size = blobs.Size(task.checkpoint_sha256());
    if (!size.ok()) continue;
    v1::Artifact& artifact = *job.add_artifacts();
    artifact.set_name(task.kind() == v1::TASK_KIND_TRAIN
                          ? "checkpoint.pt"
                          : TaskKindName(task.kind()) + "-checkpoint.pt");
    artifact.set_sha256(task.checkpoint_sha256());
    artifact.set_size(*size);
  }
}

// Each epoch as last reported: a resumed attempt may repeat the epochs
// after its checkpoint.
Status AddTrainingLog(Store& store, v1::Job& job) {
  std::map<uint32_t, v1::EpochStats> epochs;
  std::string after;
  while (true) {
    IMPULSE_ASSIGN_OR_RETURN(EventBatch batch,
                             store.ReadEvents(job.project(), job.id(), after, 0, kEventsPerRead));
    for (const v1::Event& event : batch.events) {
      if (event.kind() == v1::EVENT_KIND_EPOCH && event.has_epoch()) {
        epochs[event.epoch().epoch()] = event.epoch();
      }
    }
    if (batch.events.size() < kEventsPerRead) break;
    after = batch.events.back().id();
  }
  for (const auto& [number, stats] : epochs) *job.mutable_results()->add_training_log() = stats;
  return Status::Ok();
}

}  // namespace

Status AddPartialResults(Store& store, BlobStore& blobs, v1::Job& job) {
  if (!IsTerminal(job.state()) || job.state() == v1::JOB_STATE_SUCCEEDED) return Status::Ok();
  AddCheckpoints(blobs, job);
  if (job.results().training_log_size() > 0) return Status::Ok();
  for (const v1::Task& task : job.tasks()) {
    if (task.kind() == v1::TASK_KIND_TRAIN && task.attempt() > 0) return AddTrainingLog(store, job);
  }
  return Status::Ok();
}

}  // namespace impulse::coordinator
