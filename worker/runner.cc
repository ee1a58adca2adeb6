#include "worker/runner.h"

#include <spdlog/spdlog.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <condition_variable>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <mutex>
#include <thread>

#include "impulse/blob_transfer.h"
#include "impulse/estimate/compute_estimate.h"
#include "impulse/sha256.h"
#include "impulse/task_names.h"

namespace impulse::worker {
namespace {

namespace fs = std::filesystem;

constexpr int64_t kMaxBackoffMs = 10000;
constexpr int kCompleteAttempts = 5;

// Sleeps in small steps so a stop request is honoured within ~100 ms.
void SleepUnlessStopped(int64_t ms, const std::atomic<bool>& stop) {
  const auto until = std::chrono::steady_clock::now() + std::chrono::milliseconds(ms);
  while (!stop && std::chrono::steady_clock::now() < until) {
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
}

// The compute a task is charged (docs/COMPUTE.md): wall seconds this worker
// has held the lease, whatever its thread count, since one task has the
// whole worker. Cumulative, so a lost or retried report is not charged twice.
double WorkerSecondsSince(std::chrono::steady_clock::time_point started) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count();
}

// Runs `function` and turns an escaping exception into a Status naming the task.
Result<v1::TaskOutput> RunGuarded(const TaskFunction& function, const v1::TaskSpec& spec,
                                  TaskContext& context) {
  try {
    return function(spec, context);
  } catch (const std::exception& e) {
    return Internal(TaskKindName(spec.kind()) + " threw: " + e.what());
  } catch (...) {
    return Internal(TaskKindName(spec.kind()) + " threw a non-standard exception");
  }
}

}  // namespace

// The TaskContext of one leased attempt: collects progress and events for
// the heartbeat thread, fetches and uploads blobs for the task thread.
class LeasedTask final : public TaskContext {
 public:
  LeasedTask(const v1::TaskSpec& spec, BlobCache& cache, v1::BlobService::Stub& blobs,
             std::string scratch, int threads)
      : spec_(spec), cache_(cache), blobs_(blobs), scratch_(std::move(scratch)), threads_(threads) {}

  Result<std::string> BlobPath(const std::string& sha256) override {
    return cache_.Path(spec_.project(), sha256);
  }

  Result<std::string> PutBlob(const std::string& local_path) override {
    IMPULSE_ASSIGN_OR_RETURN(std::string sha, Sha256File(local_path));
    IMPULSE_RETURN_IF_ERROR(UploadMissingBlobs(blobs_, spec_.project(), {{sha, local_path}}).status());
    return sha;
  }

  const std::string& ScratchDir() const override { return scratch_; }

  void ReportProgress(double fraction, const std::string& message) override {
    std::lock_guard<std::mutex> lock(mu_);
    progress_ = std::clamp(fraction, 0.0, 1.0);
    if (!message.empty()) AddEventLocked(v1::EVENT_KIND_LOG, message);
  }

  void Log(const std::string& line) override {
    std::lock_guard<std::mutex> lock(mu_);
    AddEventLocked(v1::EVENT_KIND_LOG, line);
  }

  bool StopRequested() const override { return stop_; }
  int Threads() const override { return threads_; }

  void ReportEpoch(const v1::EpochStats& stats) override {
    std::lock_guard<std::mutex> lock(mu_);
    char text[160];
    std::snprintf(text, sizeof(text),
                  "epoch %u: loss %.4f accuracy %.4f, validation loss %.4f accuracy %.4f",
                  stats.epoch(), stats.train_loss(), stats.train_accuracy(),
                  stats.validation_loss(), stats.validation_accuracy());
    AddEventLocked(v1::EVENT_KIND_EPOCH, text);
    *events_.back().mutable_epoch() = stats;
  }

  void ReportEta(double eta_s) override {
    std::lock_guard<std::mutex> lock(mu_);
    eta_s_ = std::max(0.0, eta_s);
  }

  void ReportCheckpoint(const std::string& sha256, uint32_t epoch) override {
    std::lock_guard<std::mutex> lock(mu_);
    checkpoint_sha256_ = sha256;
    checkpoint_epoch_ = epoch;
  }

  void RequestStop() { stop_ = true; }

  // Progress and the events gathered since the last call.
  double TakeUpdates(std::vector<v1::Event>* events) {
    std::lock_guard<std::mutex> lock(mu_);
    events->swap(events_);
    events_.clear();
    return progress_;
  }

  // The ETA and the newest checkpoint, into every heartbeat: resending an
  // unchanged checkpoint is harmless, and a heartbeat lost to a network
  // error cannot lose it.
  void TakeTrainingState(v1::HeartbeatRequest* request) {
    std::lock_guard<std::mutex> lock(mu_);
    request->set_eta_s(eta_s_);
    if (!checkpoint_sha256_.empty()) {
      request->set_checkpoint_sha256(checkpoint_sha256_);
      request->set_checkpoint_epoch(checkpoint_epoch_);
    }
  }

 private:
  void AddEventLocked(v1::EventKind kind, const std::string& text) {
    // Bounded: a task that logs faster than heartbeats drain keeps the last.
    if (events_.size() >= 1000) events_.erase(events_.begin());
    v1::Event event;
    event.set_kind(kind);
    event.set_message(text);
    event.set_progress(progress_);
    event.set_time_ms(std::chrono::duration_cast<std::chrono::milliseconds>(
                          std::chrono::system_clock::now().time_since_epoch())
                          .count());
    events_.push_back(std::move(event));
  }

  const v1::TaskSpec& spec_;
  BlobCache& cache_;
  v1::BlobService::Stub& blobs_;
  const std::string scratch_;
  const int threads_;
  std::atomic<bool> stop_{false};

  std::mutex mu_;
  double progress_ = 0;             // guarded by mu_
  std::vector<v1::Event> events_;   // guarded by mu_
  double eta_s_ = 0;                // guarded by mu_
  std::string checkpoint_sha256_;   // guarded by mu_
  uint32_t checkpoint_epoch_ = 0;   // guarded by mu_
};

Runner::Runner(WorkerOptions options, CoordinatorLink& link, WorkerMetrics& metrics)
    : options_(std::move(options)),
      link_(link),
      metrics_(metrics),
      cache_(options_.cache_dir + "/blobs", options_.cache_max_bytes, link.blobs()) {}

void Runner::AddTaskKind(v1::TaskKind kind, TaskFunction function) {
  tasks_[kind] = std::move(function);
}

std::vector<v1::TaskKind> Runner::Kinds() const {
  std::vector<v1::TaskKind> kinds;
  for (const auto& [kind, function] : tasks_) {
    if (options_.kinds.empty() ||
        std::find(options_.kinds.begin(), options_.kinds.end(), kind) != options_.kinds.end()) {
      kinds.push_back(kind);
    }
  }
  // Later stages first: finishing a started job beats starting a new one.
  std::reverse(kinds.begin(), kinds.end());
  return kinds;
}

Status Runner::Register(const std::atomic<bool>& stop) {
  using Calibrate = WorkerOptions::Calibrate;
  v1::WorkerInfo info = DescribeThisMachine(options_);
  info.set_id(worker_id_.empty() ? options_.id : worker_id_);
  for (auto kind : Kinds()) info.add_kinds(kind);
  const bool can_measure = options_.measure_costs && options_.calibrate != Calibrate::kNever;
  auto measure = [&] {
    auto table = options_.measure_costs();
    if (!table.ok()) {
      spdlog::warn("cost calibration failed: {}; estimates use the cached or default table",
                   table.status().ToString());
      return;
    }
    spdlog::info("cost calibration: {:.2f} GMAC/s training 3x3 convolutions, in {:.1f} s",
                 estimate::TrainGmacsPerSecond(*table), table->calibration_s());
    *info.mutable_cost_table() = std::move(table).value();
  };
  if (can_measure && options_.calibrate == Calibrate::kAlways) {
    measure();
    info.set_gmacs_per_s(estimate::TrainGmacsPerSecond(info.cost_table()));
  }
  IMPULSE_ASSIGN_OR_RETURN(v1::RegisterWorkerReply reply, RegisterWithBackoff(info, stop));
  if (info.has_cost_table() || !can_measure) return Status::Ok();
  if (reply.has_cached_cost_table()) {
    spdlog::info("cost table: reusing the cached one for {} x{}", info.cpu_model(), info.threads());
    *info.mutable_cost_table() = reply.cached_cost_table();
  } else {
    measure();
    if (!info.has_cost_table()) return Status::Ok();
  }
  // Again, now with the table: the coordinator caches it and lists it.
  info.set_id(worker_id_);
  info.set_gmacs_per_s(estimate::TrainGmacsPerSecond(info.cost_table()));
  return RegisterWithBackoff(info, stop).status();
}

Result<v1::RegisterWorkerReply> Runner::RegisterWithBackoff(const v1::WorkerInfo& info,
                                                            const std::atomic<bool>& stop) {
  int64_t backoff_ms = 250;
  Status last = Unavailable("stopped before registering");
  while (!stop) {
    auto reply = link_.Register(info);
    if (reply.ok()) {
      worker_id_ = reply->worker_id();
      heartbeat_interval_ms_ = std::max<uint32_t>(200, reply->heartbeat_interval_ms());
      spdlog::info("registered as {} (heartbeat every {} ms)", worker_id_, heartbeat_interval_ms_);
      return reply;
    }
    last = reply.status();
    spdlog::warn("cannot register: {}; retrying in {} ms", last.ToString(), backoff_ms);
    SleepUnlessStopped(backoff_ms, stop);
    backoff_ms = std::min(backoff_ms * 2, kMaxBackoffMs);
  }
  return last;
}

Status Runner::Run(const std::atomic<bool>& stop) {
  IMPULSE_RETURN_IF_ERROR(Register(stop));
  const std::vector<v1::TaskKind> kinds = Kinds();
  int64_t backoff_ms = 250;
  while (!stop) {
    auto lease = link_.Lease(worker_id_, kinds, options_.lease_wait_ms);
    if (!lease.ok()) {
      spdlog::warn("lease failed: {}; retrying in {} ms", lease.status().ToString(), backoff_ms);
      SleepUnlessStopped(backoff_ms, stop);
      backoff_ms = std::min(backoff_ms * 2, kMaxBackoffMs);
      continue;
    }
    backoff_ms = 250;
    if (lease->has_value()) RunLeased(**lease, stop);
  }
  return Status::Ok();
}

void Runner::RunLeased(const v1::LeaseTaskReply& lease, const std::atomic<bool>& stop) {
  const v1::TaskSpec& spec = lease.task();
  const std::string kind = TaskKindName(spec.kind());
  spdlog::info("running {} {} (attempt {})", kind, spec.task_id(), lease.attempt());
  const auto started = std::chrono::steady_clock::now();
  metrics_.SetBusy(true);

  const std::string scratch = options_.cache_dir + "/scratch/" + spec.task_id() + "-" +
                              std::to_string(lease.attempt());
  std::error_code error;
  fs::remove_all(scratch, error);
  fs::create_directories(scratch, error);
  LeasedTask context(spec, cache_, link_.blobs(), scratch, options_.threads);

  std::mutex done_mu;
  std::condition_variable done_cv;
  bool done = false;
  Result<v1::TaskOutput> result = Internal("task did not run");
  auto function = tasks_.find(spec.kind());
  std::thread task_thread([&] {
    Result<v1::TaskOutput> outcome =
        function == tasks_.end()
            ? Result<v1::TaskOutput>(FailedPrecondition("this worker cannot run " + kind))
            : RunGuarded(function->second, spec, context);
    std::lock_guard<std::mutex> lock(done_mu);
    result = std::move(outcome);
    done = true;
    done_cv.notify_all();
  });

  bool lost = false;
  auto beat = [&] { lost = !Heartbeat(lease, context, started); };
  {
    std::unique_lock<std::mutex> lock(done_mu);
    while (!done_cv.wait_for(lock, std::chrono::milliseconds(heartbeat_interval_ms_),
                             [&] { return done; })) {
      lock.unlock();
      if (stop) context.RequestStop();
      if (!lost) beat();
      lock.lock();
    }
  }
  task_thread.join();
  if (!lost) beat();  // flush the last progress and events before completing

  const std::string outcome = lost ? "lost" : Complete(lease, result, started);
  const double seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count();
  spdlog::info("{} {} {} in {:.1f} s{}", kind, spec.task_id(), outcome, seconds,
               result.ok() ? "" : ": " + result.status().ToString());
  metrics_.ObserveTask(kind, outcome, seconds);
  metrics_.SetBusy(false);
  fs::remove_all(scratch, error);
}

bool Runner::Heartbeat(const v1::LeaseTaskReply& lease, LeasedTask& context,
                       std::chrono::steady_clock::time_point started) {
  const v1::TaskSpec& spec = lease.task();
  v1::HeartbeatRequest request;
  request.set_worker_id(worker_id_);
  request.set_project(spec.project());
  request.set_task_id(spec.task_id());
  request.set_fencing_token(lease.fencing_token());
  std::vector<v1::Event> events;
  request.set_progress(context.TakeUpdates(&events));
  for (auto& event : events) *request.add_events() = std::move(event);
  context.TakeTrainingState(&request);
  request.set_compute_s(WorkerSecondsSince(started));
  auto reply = link_.Heartbeat(request);
  if (!reply.ok() && reply.status().code() == StatusCode::kAborted) {
    spdlog::warn("lease of {} lost: {}", spec.task_id(), reply.status().ToString());
    context.RequestStop();
    return false;
  }
  if (reply.ok() && reply->cancel()) {
    spdlog::info("{} cancelled: {}", spec.task_id(), reply->reason());
    context.RequestStop();
  }
  // Other failures (coordinator briefly away) are retried by the next beat.
  return true;
}

std::string Runner::Complete(const v1::LeaseTaskReply& lease, Result<v1::TaskOutput>& result,
                             std::chrono::steady_clock::time_point started) {
  const v1::TaskSpec& spec = lease.task();
  v1::CompleteTaskRequest request;
  request.set_worker_id(worker_id_);
  request.set_project(spec.project());
  request.set_task_id(spec.task_id());
  request.set_fencing_token(lease.fencing_token());
  request.set_succeeded(result.ok());
  request.set_compute_s(WorkerSecondsSince(started));
  if (result.ok()) {
    *request.mutable_output() = std::move(result).value();
  } else {
    request.set_error(result.status().ToString());
  }
  Status completed;
  for (int attempt = 0; attempt < kCompleteAttempts; ++attempt) {
    completed = link_.Complete(request);
    if (completed.code() != StatusCode::kUnavailable) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(500 << attempt));
  }
  if (!completed.ok()) {
    spdlog::error("cannot complete {}: {}", spec.task_id(), completed.ToString());
    return "lost";
  }
  if (request.succeeded()) return "succeeded";
  return result.status().code() == StatusCode::kCancelled ? "cancelled" : "failed";
}

v1::WorkerInfo DescribeThisMachine(const WorkerOptions& options) {
  v1::WorkerInfo info;
  char host[256] = {};
  gethostname(host, sizeof(host) - 1);
  info.set_hostname(host);
  info.set_cpu_cores(static_cast<uint32_t>(std::thread::hardware_concurrency()));
  info.set_threads(static_cast<uint32_t>(options.threads));
  info.set_gpus(static_cast<uint32_t>(options.gpus));
  info.set_memory_bytes(static_cast<uint64_t>(sysconf(_SC_PHYS_PAGES)) *
                        static_cast<uint64_t>(sysconf(_SC_PAGE_SIZE)));
  std::ifstream cpuinfo("/proc/cpuinfo");
  for (std::string line; std::getline(cpuinfo, line);) {
    if (line.rfind("model name", 0) == 0) {
      info.set_cpu_model(line.substr(line.find(':') + 2));
      break;
    }
  }
  info.set_version(IMPULSE_VERSION);
  return info;
}

}  // namespace impulse::worker
