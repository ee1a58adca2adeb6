// DirTaskContext: a TaskContext over a local directory, for running a task
// in a test without a coordinator. Blobs are files named by their sha256
// under root/blobs; progress, logs and epochs are recorded for assertions.
//
// Thread-safe, as TaskContext requires.
#pragma once

#include <atomic>
#include <mutex>
#include <string>
#include <vector>

#include "worker/task_context.h"

namespace impulse::testing {

class DirTaskContext final : public worker::TaskContext {
 public:
  // Creates root/blobs and root/scratch.
  explicit DirTaskContext(const std::string& root, int threads = 2);

  Result<std::string> BlobPath(const std::string& sha256) override;
  Result<std::string> PutBlob(const std::string& local_path) override;
  const std::string& ScratchDir() const override { return scratch_; }
  void ReportProgress(double fraction, const std::string& message) override;
  void Log(const std::string& line) override;
  bool StopRequested() const override { return stop_; }
  int Threads() const override { return threads_; }

  // Stores `bytes` as a blob; returns its sha256.
  std::string PutBytes(const std::string& bytes);
  void RequestStop() { stop_ = true; }

  std::vector<double> progress() const;
  std::vector<std::string> logs() const;

 private:
  const std::string blobs_;
  const std::string scratch_;
  const int threads_;
  std::atomic<bool> stop_{false};
  mutable std::mutex mu_;
  std::vector<double> progress_;   // guarded by mu_
  std::vector<std::string> logs_;  // guarded by mu_
};

}  // namespace impulse::testing
