#include "coordinator/server.h"

#include <grpcpp/ext/proto_server_reflection_plugin.h>
#include <grpcpp/health_check_service_interface.h>

#include <chrono>
#include <filesystem>

#include "coordinator/blob_service.h"
#include "coordinator/client_service.h"
#include "coordinator/cost_tables.h"
#include "coordinator/lease_reaper.h"
#include "coordinator/redis_store.h"
#include "coordinator/worker_service.h"

namespace impulse::coordinator {

// Declared in the order they must be built; destroyed in reverse.
struct CoordinatorServer::Parts {
  SystemClock clock;
  Metrics metrics;
  std::unique_ptr<Store> store;
  std::unique_ptr<BlobStore> blobs;
  std::unique_ptr<CostTables> cost_tables;
  std::unique_ptr<Scheduler> scheduler;
  std::unique_ptr<BlobServiceImpl> blob_service;
  std::unique_ptr<ClientServiceImpl> client_service;
  std::unique_ptr<WorkerServiceImpl> worker_service;
  std::unique_ptr<grpc::Server> server;
  std::unique_ptr<LeaseReaper> reaper;
};

Result<std::unique_ptr<CoordinatorServer>> CoordinatorServer::Start(const ServerOptions& options) {
  auto parts = std::make_unique<Parts>();
  IMPULSE_ASSIGN_OR_RETURN(parts->store, RedisStore::Connect(options.redis, options.key_prefix));
  std::error_code error;
  std::filesystem::create_directories(options.data_dir + "/blobs", error);
  if (error) return Unavailable("cannot create " + options.data_dir + "/blobs: " + error.message());
  parts->blobs = NewFileBlobStore(options.data_dir + "/blobs");
  if (!options.metrics.empty()) IMPULSE_RETURN_IF_ERROR(parts->metrics.Expose(options.metrics));

  // Workers count as live for estimates as long as ListWorkers shows them.
  parts->cost_tables = std::make_unique<CostTables>(*parts->store, parts->clock,
                                                    3 * options.scheduler.lease_ttl_ms);
  parts->scheduler = std::make_unique<Scheduler>(
      *parts->store, *parts->blobs, parts->clock, parts->metrics, options.scheduler,
      [tables = parts->cost_tables.get()] { return tables->ForEstimates(); },
      [tables = parts->cost_tables.get()](const std::string& source, v1::TaskKind stage,
                                          double actual_s, double estimated_s) {
        return tables->Learn(source, stage, actual_s, estimated_s);
      });
  parts->blob_service =
      std::make_unique<BlobServiceImpl>(*parts->store, *parts->blobs, parts->metrics);
  parts->client_service = std::make_unique<ClientServiceImpl>(
      *parts->scheduler, *parts->store, *parts->blobs, parts->clock, parts->metrics);
  parts->worker_service = std::make_unique<WorkerServiceImpl>(*parts->scheduler, *parts->store,
                                                              parts->clock, parts->metrics);

  grpc::EnableDefaultHealthCheckService(true);
  grpc::reflection::InitProtoReflectionServerBuilderPlugin();
  grpc::ServerBuilder builder;
  int port = 0;
  builder.AddListeningPort(options.listen, grpc::InsecureServerCredentials(), &port);
  // Long polls and watch streams stay open; keepalives find dead peers.
  builder.AddChannelArgument(GRPC_ARG_KEEPALIVE_TIME_MS, 20000);
  builder.AddChannelArgument(GRPC_ARG_KEEPALIVE_TIMEOUT_MS, 10000);
  builder.AddChannelArgument(GRPC_ARG_KEEPALIVE_PERMIT_WITHOUT_CALLS, 1);
  builder.AddChannelArgument(GRPC_ARG_HTTP2_MIN_RECV_PING_INTERVAL_WITHOUT_DATA_MS, 10000);
  builder.AddChannelArgument(GRPC_ARG_HTTP2_MAX_PINGS_WITHOUT_DATA, 0);
  builder.RegisterService(parts->blob_service.get());
  builder.RegisterService(parts->client_service.get());
  builder.RegisterService(parts->worker_service.get());
  parts->server = builder.BuildAndStart();
  if (!parts->server || port == 0) return Unavailable("cannot listen on " + options.listen);

  parts->reaper = std::make_unique<LeaseReaper>(*parts->store, parts->clock, parts->metrics,
                                                options.reaper_interval_ms,
                                                3 * options.scheduler.lease_ttl_ms);
  auto server = std::unique_ptr<CoordinatorServer>(new CoordinatorServer(std::move(parts)));
  server->port_ = port;
  return server;
}

CoordinatorServer::CoordinatorServer(std::unique_ptr<Parts> parts) : parts_(std::move(parts)) {}

CoordinatorServer::~CoordinatorServer() { Shutdown(0); }

int CoordinatorServer::metrics_port() const { return parts_->metrics.ExposedPort(); }

void CoordinatorServer::Wait() { parts_->server->Wait(); }

void CoordinatorServer::Shutdown(int64_t grace_ms) {
  if (!parts_->server) return;
  parts_->reaper.reset();
  parts_->server->Shutdown(std::chrono::system_clock::now() + std::chrono::milliseconds(grace_ms));
}

}  // namespace impulse::coordinator
