// MetricsEndpoint: serves one Prometheus registry over HTTP (/metrics), for
// the coordinator and the workers alike.
#pragma once

#include <prometheus/exposer.h>
#include <prometheus/registry.h>

#include <memory>
#include <string>

#include "impulse/status.h"

namespace impulse {

class MetricsEndpoint {
 public:
  // Serves `registry` on HOST:PORT (port 0 = any free port). Unavailable
  // when the address cannot be bound.
  Status Serve(const std::string& address, std::shared_ptr<prometheus::Registry> registry);

  // The bound port; 0 before Serve() succeeded.
  int port() const;

 private:
  std::unique_ptr<prometheus::Exposer> exposer_;
};

}  // namespace impulse
