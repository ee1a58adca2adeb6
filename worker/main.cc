// impulse-worker: leases tasks from the coordinator and runs them.
#include <CLI/CLI.hpp>
#include <opencv2/core.hpp>
#include <spdlog/spdlog.h>

#include <csignal>
#include <map>
#include <fstream>
#include <sstream>
#include <thread>

#include "impulse/task_names.h"
#include "worker/coordinator_link.h"
#include "worker/evaluation/evaluate_export.h"
#include "worker/features/generate_features.h"
#include "worker/runner.h"
#include "worker/training/cost_calibration.h"
#include "worker/training/train.h"

namespace {

std::atomic<bool> g_stop{false};  // set from the signal handler only

void OnSignal(int) { g_stop = true; }

impulse::Result<std::vector<impulse::v1::TaskKind>> ParseKinds(const std::string& list) {
  std::vector<impulse::v1::TaskKind> kinds;
  std::stringstream in(list);
  for (std::string name; std::getline(in, name, ',');) {
    if (name.empty()) continue;
    auto kind = impulse::ParseTaskKind(name);
    if (!kind) {
      return impulse::InvalidArgument("--kinds: unknown task kind '" + name +
                                      "' (generate-features, train, quantize-evaluate)");
    }
    kinds.push_back(*kind);
  }
  return kinds;
}

}  // namespace

int main(int argc, char** argv) {
  impulse::worker::WorkerOptions options;
  const char* env_coordinator = std::getenv("IMPULSE_COORDINATOR");
  std::string coordinator = env_coordinator ? env_coordinator : "127.0.0.1:50051";
  std::string kinds = "", metrics = "", metrics_port_file, log_level = "info";
  uint64_t cache_mib = options.cache_max_bytes >> 20;

  CLI::App app{"impulse-worker: runs feature, training and evaluation tasks"};
  app.add_option("--coordinator", coordinator, "HOST:PORT (or IMPULSE_COORDINATOR)")
      ->capture_default_str();
  app.add_option("--cache-dir", options.cache_dir, "blob cache and scratch space")
      ->capture_default_str();
  app.add_option("--cache-mib", cache_mib, "cache size bound in MiB")->capture_default_str();
  app.add_option("--threads", options.threads,
                 "compute threads per task; keep workers x threads <= cores")
      ->capture_default_str()
      ->check(CLI::Range(1, 256));
  app.add_option("--kinds", kinds, "comma-separated task kinds to run (default: all it can)");
  app.add_option("--gpus", options.gpus, "GPUs this worker may use")->capture_default_str();
  app.add_option("--name", options.id, "worker id to register as (default: assigned)");
  app.add_option("--metrics", metrics, "Prometheus HOST:PORT (port 0 = any); empty = off");
  app.add_option("--metrics-port-file", metrics_port_file, "write the bound metrics port here");
  app.add_option("--log-level", log_level, "trace|debug|info|warn|error")->capture_default_str();
  const std::map<std::string, impulse::worker::WorkerOptions::Calibrate> calibrate_modes = {
      {"auto", impulse::worker::WorkerOptions::Calibrate::kAuto},
      {"always", impulse::worker::WorkerOptions::Calibrate::kAlways},
      {"never", impulse::worker::WorkerOptions::Calibrate::kNever}};
  double calibrate_s = 2.0;
  app.add_option("--calibrate", options.calibrate,
                 "cost table for compute estimates: auto (reuse the coordinator's cached one for "
                 "this CPU and --threads, else measure), always (measure), never")
      ->transform(CLI::CheckedTransformer(calibrate_modes, CLI::ignore_case))
      ->default_str("auto");
  app.add_option("--calibrate-s", calibrate_s, "seconds the cost calibration may take, roughly")
      ->capture_default_str()
      ->check(CLI::Range(0.5, 60.0));
  CLI11_PARSE(app, argc, argv);
  spdlog::set_level(spdlog::level::from_str(log_level));
  options.cache_max_bytes = cache_mib << 20;

  auto parsed_kinds = ParseKinds(kinds);
  if (!parsed_kinds.ok()) {
    spdlog::error("{}", parsed_kinds.status().message());
    return 2;
  }
  options.kinds = *parsed_kinds;
  cv::setNumThreads(options.threads);

  impulse::worker::WorkerMetrics worker_metrics;
  if (!metrics.empty()) {
    if (auto exposed = worker_metrics.Expose(metrics); !exposed.ok()) {
      spdlog::error("{}", exposed.ToString());
      return 3;
    }
    if (!metrics_port_file.empty()) {
      std::ofstream(metrics_port_file) << worker_metrics.ExposedPort() << "\n";
    }
  }

  std::signal(SIGINT, OnSignal);
  std::signal(SIGTERM, OnSignal);
  options.measure_costs = [&options, calibrate_s] {
    return impulse::worker::training::MeasureCostTable(
        {.threads = options.threads,
         .scratch_dir = options.cache_dir,
         .budget_s = calibrate_s,
         .cpu_model = impulse::worker::DescribeThisMachine(options).cpu_model()});
  };
  impulse::worker::CoordinatorLink link(coordinator);
  impulse::worker::Runner runner(options, link, worker_metrics);
  runner.AddTaskKind(impulse::v1::TASK_KIND_GENERATE_FEATURES, impulse::worker::features::GenerateFeatures);
  runner.AddTaskKind(impulse::v1::TASK_KIND_TRAIN, impulse::worker::training::Train);
  runner.AddTaskKind(impulse::v1::TASK_KIND_QUANTIZE_EVALUATE, impulse::worker::evaluation::EvaluateAndExport);
  spdlog::info("worker connecting to {} with {} thread(s)", coordinator, options.threads);
  impulse::Status served = runner.Run(g_stop);
  if (!served.ok()) {
    spdlog::error("{}", served.ToString());
    return 3;
  }
  return 0;
}
