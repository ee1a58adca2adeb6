// MetricsEndpoint: serves one Prometheus registry as text on
// http://HOST:PORT/metrics, for the coordinator and the workers alike.
//
// A small HTTP/1.0 responder of our own rather than prometheus-cpp's
// civetweb Exposer: Debian's civetweb starts its threads with a fixed
// 100 KiB stack, and in a process that also loads LibTorch (whose static
// thread-local storage is larger than that) pthread_create fails with
// EINVAL, so the worker could not serve metrics at all. Scrapes are rare
// and tiny; one thread answering one request at a time is enough.
//
// Thread-safe; the serving thread stops and joins in the destructor.
#pragma once

#include <prometheus/registry.h>

#include <atomic>
#include <memory>
#include <string>
#include <thread>

#include "impulse/status.h"

namespace impulse {

class MetricsEndpoint {
 public:
  MetricsEndpoint() = default;
  ~MetricsEndpoint();
  MetricsEndpoint(const MetricsEndpoint&) = delete;
  MetricsEndpoint& operator=(const MetricsEndpoint&) = delete;

  // Serves `registry` on HOST:PORT (an IPv4 address or "0.0.0.0"; port 0 =
  // any free port). InvalidArgument for a malformed address, Unavailable
  // when it cannot be bound. Call at most once.
  Status Serve(const std::string& address, std::shared_ptr<prometheus::Registry> registry);

  // The bound port; 0 before Serve() succeeded.
  int port() const { return port_; }

 private:
  void Loop();
  void Answer(int connection);

  std::shared_ptr<prometheus::Registry> registry_;
  int listen_fd_ = -1;
  int port_ = 0;
  std::atomic<bool> stopping_{false};
  std::thread thread_;
};

}  // namespace impulse
