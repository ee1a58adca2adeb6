#include "impulse/metrics_endpoint.h"

namespace impulse {

Status MetricsEndpoint::Serve(const std::string& address,
                              std::shared_ptr<prometheus::Registry> registry) {
  try {
    exposer_ = std::make_unique<prometheus::Exposer>(address);
  } catch (const std::exception& e) {
    // civetweb reports a port it cannot bind by throwing.
    return Unavailable("cannot serve metrics on " + address + ": " + e.what());
  }
  exposer_->RegisterCollectable(registry);
  return Status::Ok();
}

int MetricsEndpoint::port() const {
  if (!exposer_) return 0;
  auto ports = exposer_->GetListeningPorts();
  return ports.empty() ? 0 : ports.front();
}

}  // namespace impulse
