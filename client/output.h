// What impulse-client shows and writes: progress on a terminal or as plain
// lines, result tables, JSON for scripts, and the output directory.
#pragma once

#include <string>

#include "impulse/status.h"
#include "impulse/v1/coordinator.grpc.pb.h"

namespace impulse::client {

// One line on stderr: "impulse-client: CODE: message".
void PrintError(const Status& status);

// The exit code a failed call maps to (2 refused, 3 unreachable, 1 other).
int ExitCodeFor(const Status& status);

// Renders a job's event stream: a redrawn progress bar on a terminal, plain
// lines otherwise, nothing with --json.
class EventPrinter {
 public:
  explicit EventPrinter(bool json);
  ~EventPrinter();
  void Print(const v1::Event& event);

 private:
  void Redraw();

  const bool json_;
  const bool tty_;
  std::string task_;
  double progress_ = 0;
  double eta_s_ = 0;
  int last_plain_decile_ = -1;
  bool bar_shown_ = false;
};

// A job as a human-readable summary and results table, or as JSON.
void PrintJob(const v1::Job& job, bool json);
void PrintJobList(const v1::ListJobsReply& jobs, bool json);
void PrintWorkers(const v1::ListWorkersReply& workers, bool json);
// An estimate: compute by stage against the limit, ways to fit, MACs, and
// the target's latency, RAM and flash for float32 and int8.
void PrintEstimate(const v1::EstimateReply& estimate, const v1::Impulse& impulse, bool json);
// A project's compute limits and its usage this budget period.
void PrintProject(const v1::Project& project, bool json);

// Writes metrics.json and fetches every artifact of the job into out_dir.
Status WriteJobOutputs(const v1::Job& job, v1::BlobService::Stub& blobs, const std::string& out_dir);

}  // namespace impulse::client
