// TaskContext: what a running task may ask of the worker around it — blobs
// by hash, uploads, progress, cancellation. The runner implements it over
// gRPC (worker/runner.cc); tests implement it over a local directory.
//
// Thread-safe: a task may call it from several of its own threads.
#pragma once

#include <string>

#include "impulse/status.h"
#include "impulse/v1/results.pb.h"

namespace impulse::worker {

class TaskContext {
 public:
  virtual ~TaskContext() = default;

  // The local path of the blob's bytes, fetched into the worker's cache when
  // absent. NotFound when the coordinator lacks it.
  virtual Result<std::string> BlobPath(const std::string& sha256) = 0;

  // Uploads a local file as a blob of the task's project; returns its sha256.
  virtual Result<std::string> PutBlob(const std::string& local_path) = 0;

  // A fresh, empty directory for this task's scratch files; removed after it.
  virtual const std::string& ScratchDir() const = 0;

  // fraction in [0, 1]; message may be empty. Cheap: the runner batches them
  // into its next heartbeat.
  virtual void ReportProgress(double fraction, const std::string& message) = 0;
  virtual void Log(const std::string& line) = 0;

  // True once the coordinator asked to stop (cancel, withdrawal, lost
  // lease). A task checks it between units of work and returns Cancelled.
  virtual bool StopRequested() const = 0;

  // Compute threads this task may use (OpenCV, LibTorch).
  virtual int Threads() const = 0;

  // Training progress. The defaults drop them, for contexts (tests) that do
  // not forward them; the runner sends each with its next heartbeat.
  // One finished epoch: an EVENT_KIND_EPOCH event in the job's stream.
  virtual void ReportEpoch(const v1::EpochStats& /*stats*/) {}
  // Estimated seconds left in the task; 0 = unknown.
  virtual void ReportEta(double /*eta_s*/) {}
  // The newest checkpoint, already uploaded with PutBlob, after `epoch`
  // completed epochs. A requeued attempt receives it as
  // TaskSpec.inputs["checkpoint"].
  virtual void ReportCheckpoint(const std::string& /*sha256*/, uint32_t /*epoch*/) {}
};

}  // namespace impulse::worker
