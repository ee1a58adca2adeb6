// impulse-client: a thin gRPC client of the coordinator. See README.md.
#include <CLI/CLI.hpp>

#include <cstdlib>

#include "client/commands.h"

namespace {

std::string EnvOr(const char* name, const char* fallback) {
  const char* value = std::getenv(name);
  return value && *value ? value : fallback;
}

}  // namespace

int main(int argc, char** argv) {
  impulse::client::GlobalOptions global;
  global.coordinator = EnvOr("IMPULSE_COORDINATOR", "127.0.0.1:50051");
  global.project = EnvOr("IMPULSE_PROJECT", "default");

  CLI::App app{"impulse-client: train impulses on an Impulse Cluster"};
  app.require_subcommand(1);
  app.add_option("--coordinator", global.coordinator, "HOST:PORT (or IMPULSE_COORDINATOR)")
      ->capture_default_str();
  app.add_option("--project", global.project, "project name (or IMPULSE_PROJECT)")
      ->capture_default_str();
  app.add_flag("--json", global.json, "machine-readable output on stdout");

  impulse::client::SubmitOptions submit;
  auto add_dataset_options = [&](CLI::App* command) {
    command->add_option("impulse", submit.impulse_path, "the impulse YAML file")
        ->required()
        ->check(CLI::ExistingFile);
    command->add_option("--data", submit.data_path,
                        "image folders, an IDX pair or a CSV manifest")
        ->required();
    command->add_option("--test-split", submit.test_split,
                        "test fraction when the layout names no test set")
        ->capture_default_str()
        ->check(CLI::Range(0.0, 0.9));
    command->add_option("--split-seed", submit.split_seed, "seed of that split")
        ->capture_default_str();
  };

  auto* features = app.add_subcommand("features", "generate features only, write the explorer");
  add_dataset_options(features);
  features->add_option("--out", submit.out_dir, "output directory")->required();

  auto* submit_cmd = app.add_subcommand("submit", "submit the whole impulse as a job");
  add_dataset_options(submit_cmd);
  submit_cmd->add_flag("--wait", submit.wait, "follow the job until it ends");
  submit_cmd->add_option("--out", submit.out_dir, "write artifacts and metrics.json here (waits)");
  submit_cmd->add_option("--save-weights", submit.save_weights_as,
                         "keep the trained model as the project's weights NAME, for "
                         "later impulses' learning.weights");

  auto* estimate = app.add_subcommand(
      "estimate", "compute time, MACs and on-device RAM, flash and latency; no training");
  add_dataset_options(estimate);

  std::string job_id, out_dir;
  auto add_job = [&](CLI::App* command) {
    command->add_option("job", job_id, "job id")->required();
  };
  auto* watch = app.add_subcommand("watch", "follow a job's progress until it ends");
  add_job(watch);
  auto* status = app.add_subcommand("status", "show a job");
  add_job(status);
  auto* cancel = app.add_subcommand("cancel", "cancel a job");
  add_job(cancel);
  auto* fetch = app.add_subcommand("fetch", "write a job's artifacts and metrics.json");
  add_job(fetch);
  fetch->add_option("--out", out_dir, "output directory")->required();
  auto* list = app.add_subcommand("list", "list the project's jobs");
  auto* workers = app.add_subcommand("workers", "list connected workers");

  // Durations take s, m, h or d: 90s, 20m, 10h, 1d, 1h30m.
  impulse::client::ProjectFlags project_flags;
  auto* project = app.add_subcommand("project", "show or set the project's compute limits");
  project->require_subcommand(1);
  auto* project_show = project->add_subcommand("show", "limits, budget and usage this period");
  auto* project_set = project->add_subcommand("set", "change the flags given; keep the rest");
  project_set->add_option("--job-limit", project_flags.job_limit,
                          "compute one job may use (default 20m)");
  project_set->add_option("--budget", project_flags.budget,
                          "compute the project may use per period; 0 = unlimited");
  project_set->add_option("--period", project_flags.period, "budget period (default 1d)");
  project_set->add_option("--max-jobs", project_flags.max_jobs,
                          "jobs queued or running at once; 0 = unlimited");

  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    // Usage errors are refused requests: exit 2, as DESIGN.md's codes say.
    const int code = app.exit(e);
    return code == 0 ? 0 : 2;
  }

  using namespace impulse::client;
  if (features->parsed()) {
    submit.features_only = true;
    return RunSubmit(global, submit);
  }
  if (submit_cmd->parsed()) return RunSubmit(global, submit);
  if (estimate->parsed()) return RunEstimate(global, submit);
  if (watch->parsed()) return RunWatch(global, job_id);
  if (status->parsed()) return RunStatus(global, job_id);
  if (cancel->parsed()) return RunCancel(global, job_id);
  if (fetch->parsed()) return RunFetch(global, job_id, out_dir);
  if (list->parsed()) return RunList(global);
  if (workers->parsed()) return RunWorkers(global);
  if (project_show->parsed()) return RunProjectShow(global);
  if (project_set->parsed()) return RunProjectSet(global, project_flags);
  return 2;
}
