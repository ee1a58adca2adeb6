// impulse-coordinator: the gRPC coordinator. See docs/ARCHITECTURE.md.
#include <CLI/CLI.hpp>
#include <spdlog/spdlog.h>

#include <csignal>
#include <fstream>
#include <thread>

#include "coordinator/server.h"
#include "impulse/device/device_catalog.h"

namespace {

bool WritePortFile(const std::string& path, int port) {
  if (path.empty()) return true;
  const std::string tmp = path + ".tmp";
  {
    std::ofstream out(tmp);
    out << port << "\n";
    if (!out) return false;
  }
  return std::rename(tmp.c_str(), path.c_str()) == 0;
}

}  // namespace

int main(int argc, char** argv) {
  impulse::coordinator::ServerOptions options;
  std::string port_file, metrics_port_file, log_level = "info";
  int64_t lease_ttl_ms = options.scheduler.lease_ttl_ms;
  uint32_t max_attempts = options.scheduler.max_attempts;

  CLI::App app{"impulse-coordinator: schedules feature, training and tuner tasks"};
  app.add_option("--listen", options.listen, "gRPC address HOST:PORT (port 0 = any free port)")
      ->capture_default_str();
  app.add_option("--port-file", port_file, "write the bound gRPC port here");
  app.add_option("--redis", options.redis, "tcp://HOST:PORT or unix:///path/redis.sock")
      ->capture_default_str();
  app.add_option("--key-prefix", options.key_prefix, "namespace of every Redis key")
      ->capture_default_str();
  app.add_option("--data-dir", options.data_dir, "where blobs are stored")->capture_default_str();
  app.add_option("--metrics", options.metrics, "Prometheus HOST:PORT; empty = off")
      ->capture_default_str();
  app.add_option("--metrics-port-file", metrics_port_file, "write the bound metrics port here");
  app.add_option("--lease-ttl-ms", lease_ttl_ms, "a lease lapses this long after its last heartbeat")
      ->capture_default_str()
      ->check(CLI::Range(int64_t{1000}, int64_t{600000}));
  app.add_option("--max-attempts", max_attempts, "leases of one task before it fails")
      ->capture_default_str()
      ->check(CLI::Range(1u, 100u));
  std::string devices_file;
  app.add_option("--devices", devices_file,
                 "YAML file of devices added to the target catalog (or IMPULSE_DEVICES); "
                 "docs/DEVICES.md");
  app.add_option("--log-level", log_level, "trace|debug|info|warn|error")->capture_default_str();
  CLI11_PARSE(app, argc, argv);

  spdlog::set_level(spdlog::level::from_str(log_level));
  options.scheduler.lease_ttl_ms = lease_ttl_ms;
  options.scheduler.max_attempts = max_attempts;
  auto devices = impulse::device::LoadDeviceCatalog(devices_file);
  if (!devices.ok()) {
    spdlog::error("{}", devices.status().ToString());
    return 2;
  }
  options.scheduler.devices = std::move(devices).value();

  // Signals are taken by one thread so the server shuts down cleanly.
  sigset_t signals;
  sigemptyset(&signals);
  sigaddset(&signals, SIGINT);
  sigaddset(&signals, SIGTERM);
  pthread_sigmask(SIG_BLOCK, &signals, nullptr);

  auto server = impulse::coordinator::CoordinatorServer::Start(options);
  if (!server.ok()) {
    spdlog::error("cannot start: {}", server.status().ToString());
    return 3;
  }
  if (!WritePortFile(port_file, (*server)->port()) ||
      !WritePortFile(metrics_port_file, (*server)->metrics_port())) {
    spdlog::error("cannot write the port files");
    return 3;
  }
  spdlog::info("coordinator listening on port {} (metrics on {}), redis {}", (*server)->port(),
               (*server)->metrics_port(), options.redis);

  std::thread signal_waiter([&] {
    int signal = 0;
    sigwait(&signals, &signal);
    spdlog::info("signal {}: shutting down", signal);
    (*server)->Shutdown(5000);
  });
  (*server)->Wait();
  signal_waiter.join();
  return 0;
}
