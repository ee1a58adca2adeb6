// CoordinatorServer: wires the Store, BlobStore, Scheduler, services, lease
// reaper and metrics into one running gRPC server. main.cc and the
// integration tests start the coordinator through this class.
#pragma once

#include <grpcpp/grpcpp.h>

#include <memory>
#include <string>

#include "coordinator/scheduler.h"
#include "impulse/status.h"

namespace impulse::coordinator {

struct ServerOptions {
  std::string listen = "0.0.0.0:50051";  // port 0 = any free port
  std::string redis = "tcp://127.0.0.1:6379";
  std::string key_prefix = "ic";
  std::string data_dir = "./impulse-data";  // blobs live under DATA_DIR/blobs
  std::string metrics = "0.0.0.0:9464";     // empty = no metrics endpoint
  int64_t reaper_interval_ms = 1000;
  SchedulerOptions scheduler;
};

class CoordinatorServer {
 public:
  // Unavailable when Redis cannot be reached or a port cannot be bound.
  static Result<std::unique_ptr<CoordinatorServer>> Start(const ServerOptions& options);
  ~CoordinatorServer();

  int port() const { return port_; }
  int metrics_port() const;

  // Blocks until Shutdown() is called from another thread.
  void Wait();
  // Stops accepting calls; in-flight ones get up to grace_ms to finish.
  void Shutdown(int64_t grace_ms);

 private:
  struct Parts;
  explicit CoordinatorServer(std::unique_ptr<Parts> parts);

  std::unique_ptr<Parts> parts_;
  int port_ = 0;
};

}  // namespace impulse::coordinator
