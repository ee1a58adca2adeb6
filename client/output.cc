#include "client/output.h"

#include <google/protobuf/util/json_util.h>
#include <nlohmann/json.hpp>
#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <ctime>
#include <filesystem>
#include <fstream>
#include <iomanip>
#include <iostream>
#include <sstream>

#include "client/duration.h"
#include "impulse/blob_transfer.h"
#include "impulse/task_names.h"

namespace impulse::client {
namespace {

using nlohmann::json;

std::string ToJson(const google::protobuf::Message& message) {
  std::string text;
  google::protobuf::util::JsonPrintOptions options;
  options.add_whitespace = true;
  options.preserve_proto_field_names = true;
  (void)google::protobuf::util::MessageToJsonString(message, &text, options);
  return text;
}

std::string FormatTime(int64_t ms) {
  if (ms == 0) return "-";
  std::time_t seconds = ms / 1000;
  std::tm tm{};
  gmtime_r(&seconds, &tm);
  std::ostringstream out;
  out << std::put_time(&tm, "%Y-%m-%d %H:%M:%S");
  return out.str();
}

json SplitJson(const v1::SplitMetrics& split) {
  const uint32_t n = split.confusion().classes();
  json matrix = json::array();
  for (uint32_t i = 0; i < n; ++i) {
    json row = json::array();
    for (uint32_t j = 0; j < n; ++j) row.push_back(split.confusion().counts(i * n + j));
    matrix.push_back(row);
  }
  json per_class = json::object();
  for (const auto& c : split.classes()) {
    per_class[c.label()] = {{"precision", c.precision()}, {"recall", c.recall()},
                            {"f1", c.f1()}, {"support", c.support()}};
  }
  return {{"accuracy", split.accuracy()},     {"loss", split.loss()},
          {"confusion_matrix", matrix},       {"per_class", per_class},
          {"weighted_f1", split.weighted_f1()}, {"samples", split.samples()}};
}

json DeviceJson(const v1::DeviceFigures& d) {
  json layers = json::array();
  for (const auto& layer : d.layers()) {
    layers.push_back({{"name", layer.name()}, {"kind", layer.kind()}, {"macs", layer.macs()},
                      {"latency_ms", layer.latency_ms()}});
  }
  return {{"latency_ms", d.latency_ms()},         {"ram_bytes", d.ram_bytes()},
          {"flash_bytes", d.flash_bytes()},       {"latency_source", d.latency_source()},
          {"flash_source", d.flash_source()},     {"layers", layers}};
}

// metrics.json: the contract in DESIGN.md, plus features, impulse, dataset,
// seed, versions and timings.
json MetricsJson(const v1::Job& job) {
  const v1::JobResults& r = job.results();
  json out;
  out["job"] = {{"id", job.id()}, {"project", job.project()}, {"state", JobStateName(job.state())},
                {"reason", job.reason()}};
  out["labels"] = json(std::vector<std::string>(r.labels().begin(), r.labels().end()));
  out["impulse"] = json::parse(ToJson(job.impulse()));
  out["dataset"] = job.dataset_sha256();
  out["seed"] = job.impulse().training().seed();
  out["versions"] = {{"impulse_cluster", IMPULSE_VERSION}};
  json timings = json::object();
  for (const auto& task : job.tasks()) {
    if (task.finished_ms() > 0 && task.started_ms() > 0) {
      timings[TaskKindName(task.kind()) + "_s"] = (task.finished_ms() - task.started_ms()) / 1000.0;
    }
  }
  out["timings"] = timings;
  out["compute"] = {{"used_s", job.compute_s()}, {"estimate_s", job.estimate_s()}};
  json epochs = json::array();
  for (const auto& epoch : r.training_log()) epochs.push_back(json::parse(ToJson(epoch)));
  out["training_log"] = epochs;
  if (r.has_features()) {
    const auto& f = r.features();
    out["features"] = {{"sha256", f.features_sha256()}, {"samples", f.samples()},
                       {"skipped", f.skipped()},
                       {"skipped_files", json(std::vector<std::string>(f.skipped_names().begin(),
                                                                       f.skipped_names().end()))},
                       {"shape", {f.channels(), f.height(), f.width()}},
                       {"projection", f.projection()}, {"reused", f.reused()}};
  }
  for (const auto& [name, model] : {std::pair{"float32", &r.float32()}, std::pair{"int8", &r.int8()}}) {
    if (!model->has_validation() && !model->has_test()) continue;
    out[name] = {{"validation", SplitJson(model->validation())},
                 {"test", SplitJson(model->test())}};
  }
  if (r.float32().has_device() || r.int8().has_device()) {
    out["device"] = {{"target", r.target()},
                     {"float32", DeviceJson(r.float32().device())},
                     {"int8", DeviceJson(r.int8().device())}};
  }
  if (!r.quantization_method().empty()) out["quantization_method"] = r.quantization_method();
  out["warnings"] = json(std::vector<std::string>(r.warnings().begin(), r.warnings().end()));
  return out;
}

// An event's message, or for a bare state change, what changed.
std::string Describe(const v1::Event& event) {
  if (!event.message().empty() || event.kind() != v1::EVENT_KIND_STATE) return event.message();
  if (event.task_state() != v1::TASK_STATE_UNSPECIFIED) {
    return "task " + event.task_id() + " " + TaskStateName(event.task_state());
  }
  return "job " + JobStateName(event.job_state());
}

// Target, latency, RAM and flash of float32 beside int8.
void PrintDeviceTable(const v1::JobResults& r) {
  if (!r.float32().has_device() && !r.int8().has_device()) return;
  std::printf("  device %-20s %12s %12s %12s\n", r.target().c_str(), "latency", "RAM", "flash");
  for (const auto& [name, model] : {std::pair{"float32", &r.float32()}, std::pair{"int8", &r.int8()}}) {
    if (!model->has_device()) continue;
    const v1::DeviceFigures& d = model->device();
    std::printf("    %-25s %9.3f ms %8.1f KiB %8.1f KiB\n", name, d.latency_ms(),
                d.ram_bytes() / 1024.0, d.flash_bytes() / 1024.0);
  }
}

void PrintModelRow(const char* name, const v1::ModelResults& model) {
  std::printf("  %-8s  validation: accuracy %6.2f %%  loss %.4f   test: accuracy %6.2f %%  "
              "loss %.4f  weighted F1 %.4f\n",
              name, 100 * model.validation().accuracy(), model.validation().loss(),
              100 * model.test().accuracy(), model.test().loss(), model.test().weighted_f1());
}

// Per-class precision / recall / F1 on the test set, float32 beside int8.
void PrintClassTable(const v1::JobResults& r) {
  const auto& f32 = r.float32().test().classes();
  const auto& i8 = r.int8().test().classes();
  if (f32.empty()) return;
  std::printf("\n  %-16s %8s %8s %8s", "test class", "prec", "recall", "F1");
  if (!i8.empty()) std::printf("  %8s %8s %8s", "i8 prec", "i8 rec", "i8 F1");
  std::printf(" %8s\n", "support");
  for (int i = 0; i < f32.size(); ++i) {
    std::printf("  %-16s %8.4f %8.4f %8.4f", f32[i].label().c_str(), f32[i].precision(),
                f32[i].recall(), f32[i].f1());
    if (i < i8.size()) std::printf("  %8.4f %8.4f %8.4f", i8[i].precision(), i8[i].recall(), i8[i].f1());
    std::printf(" %8lu\n", static_cast<unsigned long>(f32[i].support()));
  }
  std::printf("\n");
}

}  // namespace

void PrintError(const Status& status) {
  std::cerr << "impulse-client: " << status.ToString() << "\n";
}

int ExitCodeFor(const Status& status) {
  switch (status.code()) {
    case StatusCode::kInvalidArgument:
    case StatusCode::kNotFound:
    case StatusCode::kAlreadyExists:
    case StatusCode::kFailedPrecondition:
    case StatusCode::kResourceExhausted:
      return 2;
    case StatusCode::kUnavailable:
    case StatusCode::kDeadlineExceeded:
      return 3;
    default:
      return 1;
  }
}

EventPrinter::EventPrinter(bool json) : json_(json), tty_(isatty(STDERR_FILENO) != 0) {}

EventPrinter::~EventPrinter() {
  if (bar_shown_) std::cerr << "\n";
}

void EventPrinter::Redraw() {
  constexpr int kWidth = 30;
  const int filled = static_cast<int>(progress_ * kWidth);
  std::cerr << "\r[" << std::string(filled, '#') << std::string(kWidth - filled, '.') << "] "
            << std::setw(3) << static_cast<int>(progress_ * 100) << "%  " << task_;
  if (eta_s_ > 0) std::cerr << "  ETA " << static_cast<int>(eta_s_) << " s";
  std::cerr << "   " << std::flush;
  bar_shown_ = true;
}

void EventPrinter::Print(const v1::Event& event) {
  if (json_) {
    std::string line;
    google::protobuf::util::JsonPrintOptions options;
    options.preserve_proto_field_names = true;
    (void)google::protobuf::util::MessageToJsonString(event, &line, options);
    std::cout << line << "\n" << std::flush;
    return;
  }
  auto line = [&](const std::string& text) {
    if (bar_shown_) std::cerr << "\r\033[K";
    std::cerr << text << "\n";
    if (bar_shown_) Redraw();
  };
  switch (event.kind()) {
    case v1::EVENT_KIND_PROGRESS: {
      if (!event.task_id().empty()) task_ = event.task_id();
      progress_ = event.progress();
      eta_s_ = event.eta_s();
      if (tty_) {
        Redraw();
      } else if (int decile = static_cast<int>(progress_ * 10); decile != last_plain_decile_) {
        last_plain_decile_ = decile;
        std::cerr << task_ << ": " << decile * 10 << " %\n";
      }
      break;
    }
    case v1::EVENT_KIND_STATE:
    case v1::EVENT_KIND_LOG:
    case v1::EVENT_KIND_EPOCH:
      line(FormatTime(event.time_ms()) + "  " + Describe(event));
      break;
    default:
      break;
  }
}

void PrintJob(const v1::Job& job, bool json_output) {
  if (json_output) {
    std::cout << ToJson(job) << "\n";
    return;
  }
  std::printf("job %s  %s  %s  project %s  created %s\n", job.id().c_str(),
              JobKindName(job.kind()).c_str(), JobStateName(job.state()).c_str(),
              job.project().c_str(), FormatTime(job.created_ms()).c_str());
  if (!job.reason().empty()) std::printf("  reason: %s\n", job.reason().c_str());
  if (job.compute_s() > 0 || job.estimate_s() > 0) {
    std::printf("  compute: %.0f s used (estimated %.0f s)\n", job.compute_s(), job.estimate_s());
  }
  for (const auto& task : job.tasks()) {
    std::printf("  task %-28s %-18s %-10s attempt %u%s%s\n", task.id().c_str(),
                TaskKindName(task.kind()).c_str(), TaskStateName(task.state()).c_str(),
                task.attempt(), task.error().empty() ? "" : "  error: ", task.error().c_str());
  }
  const v1::JobResults& r = job.results();
  if (r.has_features()) {
    const auto& f = r.features();
    std::printf("  features: %lu samples of %ux%ux%u (uint8), %lu unreadable skipped%s, explorer %s\n",
                static_cast<unsigned long>(f.samples()), f.channels(), f.height(), f.width(),
                static_cast<unsigned long>(f.skipped()), f.reused() ? ", reused" : "",
                f.projection().c_str());
  }
  if (r.float32().has_test()) PrintModelRow("float32", r.float32());
  if (r.int8().has_test()) PrintModelRow("int8", r.int8());
  if (!r.quantization_method().empty()) {
    std::printf("  int8 activation ranges: %s\n", r.quantization_method().c_str());
  }
  PrintDeviceTable(r);
  PrintClassTable(r);
  for (const auto& warning : r.warnings()) std::printf("  warning: %s\n", warning.c_str());
  for (const auto& artifact : job.artifacts()) {
    std::printf("  artifact %-28s %10lu bytes\n", artifact.name().c_str(),
                static_cast<unsigned long>(artifact.size()));
  }
}

void PrintJobList(const v1::ListJobsReply& jobs, bool json_output) {
  if (json_output) {
    std::cout << ToJson(jobs) << "\n";
    return;
  }
  std::printf("%-16s %-9s %-10s %-20s %s\n", "JOB", "KIND", "STATE", "CREATED", "NAME");
  for (const auto& job : jobs.jobs()) {
    std::printf("%-16s %-9s %-10s %-20s %s\n", job.id().c_str(), JobKindName(job.kind()).c_str(),
                JobStateName(job.state()).c_str(), FormatTime(job.created_ms()).c_str(),
                job.impulse().name().c_str());
  }
}

void PrintWorkers(const v1::ListWorkersReply& workers, bool json_output) {
  if (json_output) {
    std::cout << ToJson(workers) << "\n";
    return;
  }
  std::printf("%-32s %-20s %7s %7s %5s %7s  %s\n", "WORKER", "HOST", "THREADS", "CORES", "GPUS",
              "GMAC/S", "LAST SEEN");
  for (const auto& w : workers.workers()) {
    // GMAC/S: training throughput on 3x3 convolutions, from the worker's
    // cost table; "-" before it has one.
    char gmacs[16] = "-";
    if (w.gmacs_per_s() > 0) std::snprintf(gmacs, sizeof(gmacs), "%.1f", w.gmacs_per_s());
    std::printf("%-32s %-20s %7u %7u %5u %7s  %s\n", w.id().c_str(), w.hostname().c_str(),
                w.threads(), w.cpu_cores(), w.gpus(), gmacs,
                FormatTime(w.last_seen_ms()).c_str());
  }
}

Status WriteJobOutputs(const v1::Job& job, v1::BlobService::Stub& blobs,
                       const std::string& out_dir) {
  namespace fs = std::filesystem;
  std::error_code error;
  fs::create_directories(out_dir, error);
  if (error) return InvalidArgument("--out: cannot create " + out_dir + ": " + error.message());
  for (const auto& artifact : job.artifacts()) {
    // Names come from the worker; only plain relative paths are written.
    const fs::path relative(artifact.name());
    if (relative.is_absolute() || artifact.name().find("..") != std::string::npos) {
      return Internal("artifact with unsafe name '" + artifact.name() + "'");
    }
    const fs::path target = fs::path(out_dir) / relative;
    fs::create_directories(target.parent_path(), error);
    if (error) {
      return Internal("cannot create " + target.parent_path().string() + ": " + error.message());
    }
    IMPULSE_RETURN_IF_ERROR(FetchBlobToFile(blobs, job.project(), artifact.sha256(), target.string()));
  }
  std::ofstream out(fs::path(out_dir) / "metrics.json");
  out << MetricsJson(job).dump(2) << "\n";
  if (!out) return Internal("cannot write " + out_dir + "/metrics.json");
  return Status::Ok();
}

void PrintProject(const v1::Project& project, bool json_output) {
  if (json_output) {
    std::cout << ToJson(project) << "\n";
    return;
  }
  auto duration = [](double seconds) { return FormatDurationS(std::round(seconds)); };
  std::printf("project %s\n", project.name().c_str());
  std::printf("  job limit   %s of compute per job\n", duration(project.job_limit_s()).c_str());
  if (project.period_budget_s() > 0) {
    const double left = std::max(0.0, project.period_budget_s() - project.period_used_s());
    std::printf("  budget      %s per %s: %s used this period, %s left\n",
                duration(project.period_budget_s()).c_str(), duration(project.period_s()).c_str(),
                duration(project.period_used_s()).c_str(), duration(left).c_str());
  } else {
    std::printf("  budget      unlimited; %s used this %s period\n",
                duration(project.period_used_s()).c_str(), duration(project.period_s()).c_str());
  }
  if (project.period_reset_ms() > 0) {
    std::printf("  resets      %s UTC\n", FormatTime(project.period_reset_ms()).c_str());
  }
  if (project.max_concurrent_jobs() > 0) {
    std::printf("  jobs        %u queued or running, at most %u\n", project.active_jobs(),
                project.max_concurrent_jobs());
  } else {
    std::printf("  jobs        %u queued or running, no limit\n", project.active_jobs());
  }
  std::printf("  total       %s used\n", duration(project.total_used_s()).c_str());
}

namespace {

std::string KiB(uint64_t bytes) {
  char text[32];
  std::snprintf(text, sizeof(text), "%.1f KiB", static_cast<double>(bytes) / 1024);
  return text;
}

}  // namespace

void PrintEstimate(const v1::EstimateReply& e, const v1::Impulse& impulse, bool json_output) {
  if (json_output) {
    std::cout << ToJson(e) << "\n";
    return;
  }
  const bool fits = e.compute_s() <= e.limit_s() || e.limit_s() <= 0;
  std::printf("estimate for %s (cost table: %s)\n", impulse.name().c_str(),
              e.cost_source().c_str());
  std::printf("  compute     %.0f s of the project's %.0f s per-job limit: %s\n", e.compute_s(),
              e.limit_s(), fits ? "fits" : "OVER THE LIMIT, submit would be refused");
  std::printf("    features  %8.1f s%s\n", e.features_s(),
              e.features_s() == 0 ? " (already generated for this dataset)" : "");
  if (e.epochs() > 0) {
    std::printf("    train     %8.1f s  (%u epochs of %llu rows, %.1f s each)\n", e.train_s(),
                e.epochs(), static_cast<unsigned long long>(e.train_rows()),
                e.seconds_per_epoch());
    std::printf("    evaluate  %8.1f s\n", e.evaluate_s());
  }
  for (const std::string& way : e.advice()) std::printf("  fits with   %s\n", way.c_str());
  if (e.epochs() == 0) return;  // features only: no model
  std::printf("  model       %.2f M MACs per inference\n", static_cast<double>(e.macs()) / 1e6);
  std::printf("  on %s:\n", impulse.target().c_str());
  std::printf("    %-8s %12s %12s %12s\n", "", "latency", "RAM", "flash");
  for (auto [name, figures] : {std::pair{"float32", &e.float32()}, std::pair{"int8", &e.int8()}}) {
    std::printf("    %-8s %9.1f ms %12s %12s\n", name, figures->latency_ms(),
                KiB(figures->ram_bytes()).c_str(), KiB(figures->flash_bytes()).c_str());
  }
}

}  // namespace impulse::client

