// impulse-client's commands. Each returns the process exit code:
//   0 success; 1 the job failed, was cancelled or withdrawn; 2 the request
//   was refused (bad input, over a limit); 3 the cluster could not be reached.
// Errors go to stderr as one line saying what to change.
#pragma once

#include <cstdint>
#include <string>

namespace impulse::client {

struct GlobalOptions {
  std::string coordinator;  // HOST:PORT
  std::string project;      // "" = default
  bool json = false;        // machine-readable output on stdout
};

struct SubmitOptions {
  std::string impulse_path;
  std::string data_path;
  std::string out_dir;       // "" = do not write artifacts
  bool wait = false;
  bool features_only = false;
  double test_split = 0.2;   // when the layout names no test set
  uint64_t split_seed = 1;
  std::string save_weights_as;  // name the trained model as project weights
};

int RunSubmit(const GlobalOptions& global, const SubmitOptions& options);
// Uploads the dataset as submit does and prints what the job would cost;
// 0 whether or not it fits the project's limit (the output says which).
int RunEstimate(const GlobalOptions& global, const SubmitOptions& options);
int RunWatch(const GlobalOptions& global, const std::string& job_id);
int RunStatus(const GlobalOptions& global, const std::string& job_id);
int RunCancel(const GlobalOptions& global, const std::string& job_id);
int RunFetch(const GlobalOptions& global, const std::string& job_id, const std::string& out_dir);
int RunList(const GlobalOptions& global);
int RunWorkers(const GlobalOptions& global);

// `project set`: each flag given (non-empty) replaces that setting; the
// others keep their values. Durations as client/duration.h reads them.
struct ProjectFlags {
  std::string job_limit;  // e.g. "20m"
  std::string budget;     // per period; "0" = unlimited
  std::string period;     // e.g. "1d"
  std::string max_jobs;   // "0" = unlimited
};

int RunProjectShow(const GlobalOptions& global);
int RunProjectSet(const GlobalOptions& global, const ProjectFlags& flags);

}  // namespace impulse::client
