// Workers' cost tables in Redis: the cache per CPU model and thread count,
// the registration that fills and reuses it, and which table a job's
// estimate uses. A real redis-server (tests/support/redis_server.h).
#include "coordinator/cost_tables.h"

#include <google/protobuf/util/message_differencer.h>
#include <gtest/gtest.h>

#include <cmath>

#include "coordinator/blob_store.h"
#include "coordinator/redis_store.h"
#include "coordinator/scheduler.h"
#include "coordinator/worker_service.h"
#include "impulse/impulse_spec.h"
#include "tests/support/manual_clock.h"
#include "tests/support/redis_server.h"
#include "tests/support/temp_dir.h"

namespace impulse::coordinator {
namespace {

using google::protobuf::util::MessageDifferencer;

constexpr int64_t kLiveMs = 45000;

// A measured table, `factor` times slower than the default everywhere.
v1::CostTable Table(const std::string& source, double factor) {
  v1::CostTable table = estimate::DefaultCostTable();
  for (v1::PassCosts* pass : {table.mutable_train(), table.mutable_infer()}) {
    pass->set_conv_s_per_mac(pass->conv_s_per_mac() * factor);
    pass->set_depthwise_s_per_mac(pass->depthwise_s_per_mac() * factor);
    pass->set_pointwise_s_per_mac(pass->pointwise_s_per_mac() * factor);
    pass->set_batch_norm_s_per_element(pass->batch_norm_s_per_element() * factor);
  }
  table.set_source(source);
  table.set_measured_ms(1);
  return table;
}

v1::WorkerInfo Worker(const std::string& id, const std::string& cpu, uint32_t threads) {
  v1::WorkerInfo info;
  info.set_id(id);
  info.set_hostname("host");
  info.set_cpu_model(cpu);
  info.set_threads(threads);
  return info;
}

class CostTablesTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    auto server = testing::RedisServer::Start();
    ASSERT_TRUE(server.ok()) << server.status().ToString();
    server_ = std::move(server).value().release();
  }
  static void TearDownTestSuite() {
    delete server_;
    server_ = nullptr;
  }
  void SetUp() override {
    ASSERT_NE(server_, nullptr);
    static int counter = 0;
    auto store = RedisStore::Connect(server_->address(), "costs-" + std::to_string(counter++));
    ASSERT_TRUE(store.ok()) << store.status().ToString();
    store_ = std::move(store).value();
    blobs_ = NewFileBlobStore(dir_.path());
    scheduler_ =
        std::make_unique<Scheduler>(*store_, *blobs_, clock_, metrics_, SchedulerOptions{});
    service_ = std::make_unique<WorkerServiceImpl>(*scheduler_, *store_, clock_, metrics_);
  }

  v1::RegisterWorkerReply Register(const v1::WorkerInfo& info) {
    v1::RegisterWorkerRequest request;
    *request.mutable_info() = info;
    v1::RegisterWorkerReply reply;
    grpc::ServerContext context;
    const grpc::Status status = service_->RegisterWorker(&context, &request, &reply);
    EXPECT_TRUE(status.ok()) << status.error_message();
    return reply;
  }

  static testing::RedisServer* server_;
  testing::TempDir dir_;
  testing::ManualClock clock_;
  Metrics metrics_;
  std::unique_ptr<Store> store_;
  std::unique_ptr<BlobStore> blobs_;
  std::unique_ptr<Scheduler> scheduler_;
  std::unique_ptr<WorkerServiceImpl> service_;
};

testing::RedisServer* CostTablesTest::server_ = nullptr;

TEST_F(CostTablesTest, CachedPerCpuModelAndThreadCountAndReplaced) {
  ASSERT_TRUE(store_->PutCostTable("Xeon", 2, Table("Xeon x2", 1.0)).ok());
  ASSERT_TRUE(store_->PutCostTable("Xeon", 1, Table("Xeon x1", 1.5)).ok());
  auto two = store_->GetCostTable("Xeon", 2);
  ASSERT_TRUE(two.ok() && two->has_value()) << two.status().ToString();
  EXPECT_TRUE(MessageDifferencer::Equals(**two, Table("Xeon x2", 1.0)));
  auto none = store_->GetCostTable("Xeon", 4);
  ASSERT_TRUE(none.ok());
  EXPECT_FALSE(none->has_value());
  none = store_->GetCostTable("EPYC", 2);
  ASSERT_TRUE(none.ok());
  EXPECT_FALSE(none->has_value());

  ASSERT_TRUE(store_->PutCostTable("Xeon", 2, Table("Xeon x2", 3.0)).ok());
  two = store_->GetCostTable("Xeon", 2);
  ASSERT_TRUE(two.ok() && two->has_value());
  EXPECT_TRUE(MessageDifferencer::Equals(**two, Table("Xeon x2", 3.0)));
  auto all = store_->ListCostTables();
  ASSERT_TRUE(all.ok()) << all.status().ToString();
  EXPECT_EQ(all->size(), 2u);
}

// The first worker of a CPU model and thread count brings its table; a
// later one asking without a table gets the cached one back.
TEST_F(CostTablesTest, RegistrationCachesTheTableAndOffersItToTheNextWorker) {
  v1::WorkerInfo first = Worker("w1", "Xeon", 2);
  *first.mutable_cost_table() = Table("Xeon x2", 1.2);
  EXPECT_FALSE(Register(first).has_cached_cost_table());

  const v1::RegisterWorkerReply same = Register(Worker("w2", "Xeon", 2));
  ASSERT_TRUE(same.has_cached_cost_table());
  EXPECT_TRUE(MessageDifferencer::Equals(same.cached_cost_table(), first.cost_table()));
  EXPECT_FALSE(Register(Worker("w3", "Xeon", 1)).has_cached_cost_table());
  EXPECT_FALSE(Register(Worker("w4", "EPYC", 2)).has_cached_cost_table());
}

TEST_F(CostTablesTest, EstimatesUseTheSlowestLiveTrainingWorkerElseTheCacheElseTheDefault) {
  CostTables tables(*store_, clock_, kLiveMs);
  EXPECT_EQ(tables.ForEstimates().source(), "default");

  v1::WorkerInfo fast = Worker("fast", "Fast CPU", 4);
  *fast.mutable_cost_table() = Table("Fast CPU x4", 0.5);
  v1::WorkerInfo slow = Worker("slow", "Slow CPU", 1);
  *slow.mutable_cost_table() = Table("Slow CPU x1", 4.0);
  slow.add_kinds(v1::TASK_KIND_GENERATE_FEATURES);  // trains nothing
  Register(fast);
  Register(slow);
  EXPECT_EQ(tables.ForEstimates().source(), "Fast CPU x4");

  v1::WorkerInfo medium = Worker("medium", "Medium CPU", 2);
  *medium.mutable_cost_table() = Table("Medium CPU x2", 2.0);
  Register(medium);
  EXPECT_EQ(tables.ForEstimates().source(), "Medium CPU x2");

  // A worker without a table of its own counts with its CPU's cached one.
  v1::WorkerInfo trainer = Worker("trainer", "Slow CPU", 1);
  Register(trainer);
  EXPECT_EQ(tables.ForEstimates().source(), "Slow CPU x1");

  // Every worker gone: the slowest table ever cached.
  clock_.AdvanceMs(2 * kLiveMs);
  EXPECT_EQ(tables.ForEstimates().source(), "Slow CPU x1");
}

// Finished tasks teach each stage's scale: a running mean of log(actual /
// estimated), per table source, kept within 0.5 to 2.
TEST_F(CostTablesTest, FinishedTasksScaleTheirStageOfTheTablesEstimates) {
  CostTables tables(*store_, clock_, kLiveMs);
  v1::CostTable table = tables.ForEstimates();
  EXPECT_EQ(table.train_scale(), 1);
  EXPECT_EQ(table.features_scale(), 1);

  ASSERT_TRUE(tables.Learn("default", v1::TASK_KIND_TRAIN, 13, 10).ok());
  EXPECT_NEAR(tables.ForEstimates().train_scale(), 1.3, 1e-9);
  ASSERT_TRUE(tables.Learn("default", v1::TASK_KIND_TRAIN, 10, 10).ok());
  EXPECT_NEAR(tables.ForEstimates().train_scale(), std::pow(1.3, 0.7), 1e-9);
  ASSERT_TRUE(tables.Learn("default", v1::TASK_KIND_GENERATE_FEATURES, 1000, 10).ok());
  ASSERT_TRUE(tables.Learn("default", v1::TASK_KIND_QUANTIZE_EVALUATE, 0, 10).ok());  // ignored
  ASSERT_TRUE(tables.Learn("other x2", v1::TASK_KIND_QUANTIZE_EVALUATE, 1, 10).ok());
  table = tables.ForEstimates();
  EXPECT_EQ(table.features_scale(), 2);
  EXPECT_EQ(table.evaluate_scale(), 1);

  // The scales multiply their stage of an estimate.
  auto impulse = ParseImpulseYaml(R"(
name: t
input: { width: 32, height: 32 }
processing: { block: image, color: grayscale }
learning: { block: classification })");
  ASSERT_TRUE(impulse.ok()) << impulse.status().ToString();
  const estimate::DatasetSize data{.train_rows = 2000, .test_rows = 500, .classes = 10};
  auto scaled = estimate::EstimateJob(*impulse, data, table);
  auto plain = estimate::EstimateJob(*impulse, data, estimate::DefaultCostTable());
  ASSERT_TRUE(scaled.ok() && plain.ok());
  EXPECT_NEAR(scaled->train_s, std::pow(1.3, 0.7) * plain->train_s, 1e-9 * plain->train_s);
  EXPECT_NEAR(scaled->features_s, 2 * plain->features_s, 1e-9 * plain->features_s);
  EXPECT_NEAR(scaled->evaluate_s, plain->evaluate_s, 1e-9 * plain->evaluate_s);
}

}  // namespace
}  // namespace impulse::coordinator
