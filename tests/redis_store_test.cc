// The Store contract, run against RedisStore on a real redis-server.
//
// Every test goes through the Store interface only (Connect aside), so an
// in-memory Store would run these same tests by changing NewStore(). Each
// test gets its own key prefix; time comes from a ManualClock.
#include "coordinator/redis_store.h"

#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <map>
#include <random>
#include <thread>

#include "impulse/sha256.h"
#include "tests/support/manual_clock.h"
#include "tests/support/redis_server.h"

namespace impulse::coordinator {
namespace {

using testing::ManualClock;
using testing::RedisServer;
using testing::RedisServerOptions;

constexpr int64_t kTtlMs = 1000;
constexpr char kProject[] = "proj-a";

v1::Job MakeJob(const std::string& project, const std::string& id) {
  v1::Job job;
  job.set_id(id);
  job.set_project(project);
  job.set_kind(v1::JOB_KIND_TRAIN);
  job.set_dataset_sha256(Sha256Hex("dataset"));
  return job;
}

// features -> train, as the scheduler builds a small job.
std::vector<NewTask> TwoTasks(const std::string& job_id, uint32_t max_attempts = 3) {
  NewTask features{.id = job_id + ".features",
                   .kind = v1::TASK_KIND_GENERATE_FEATURES,
                   .max_attempts = max_attempts};
  NewTask train{.id = job_id + ".train",
                .kind = v1::TASK_KIND_TRAIN,
                .deps = {features.id},
                .max_attempts = max_attempts};
  return {features, train};
}

std::vector<NewTask> OneTask(const std::string& job_id, uint32_t max_attempts = 3) {
  return {NewTask{.id = job_id + ".features",
                  .kind = v1::TASK_KIND_GENERATE_FEATURES,
                  .max_attempts = max_attempts}};
}

v1::TaskOutput FeaturesOutput(const std::string& features_sha) {
  v1::TaskOutput output;
  (*output.mutable_blobs())["features"] = features_sha;
  output.mutable_results()->add_labels("cat");
  output.mutable_results()->mutable_features()->set_samples(10);
  v1::Artifact& artifact = *output.add_artifacts();
  artifact.set_name("feature_explorer.png");
  artifact.set_sha256(Sha256Hex("png"));
  return output;
}

const v1::Task& TaskOf(const v1::Job& job, const std::string& task_id) {
  for (const v1::Task& task : job.tasks()) {
    if (task.id() == task_id) return task;
  }
  static const v1::Task kNone;
  ADD_FAILURE() << "no task " << task_id;
  return kNone;
}

bool HasMessage(const std::vector<v1::Event>& events, const std::string& text) {
  for (const v1::Event& event : events) {
    if (event.message().find(text) != std::string::npos) return true;
  }
  return false;
}

std::unique_ptr<Store> NewStore(const std::string& address, const std::string& prefix) {
  auto store = RedisStore::Connect(address, prefix);
  EXPECT_TRUE(store.ok()) << store.status().ToString();
  return store.ok() ? std::move(store).value() : nullptr;
}

std::string UniquePrefix() {
  static std::atomic<int> counter{0};
  const auto* info = ::testing::UnitTest::GetInstance()->current_test_info();
  return std::string("t-") + info->name() + "-" + std::to_string(counter++);
}

class StoreContractTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    auto server = RedisServer::Start();
    ASSERT_TRUE(server.ok()) << server.status().ToString();
    server_ = std::move(server).value().release();
  }
  static void TearDownTestSuite() {
    delete server_;
    server_ = nullptr;
  }
  void SetUp() override {
    ASSERT_NE(server_, nullptr);
    store_ = NewStore(server_->address(), UniquePrefix());
    ASSERT_NE(store_, nullptr);
  }

  LeaseGrant MustLease(const std::string& worker, std::vector<v1::TaskKind> kinds = {}) {
    auto grant = store_->LeaseTask(worker, kinds, clock_.NowMs(), kTtlMs);
    EXPECT_TRUE(grant.ok()) << grant.status().ToString();
    EXPECT_TRUE(grant.ok() && grant->has_value()) << "nothing to lease";
    return grant.ok() && grant->has_value() ? **grant : LeaseGrant{};
  }

  bool NothingToLease() {
    auto grant = store_->LeaseTask("w-idle", {}, clock_.NowMs(), kTtlMs);
    EXPECT_TRUE(grant.ok()) << grant.status().ToString();
    return grant.ok() && !grant->has_value();
  }

  v1::Job MustGetJob(const std::string& project, const std::string& job_id) {
    auto job = store_->GetJob(project, job_id);
    EXPECT_TRUE(job.ok()) << job.status().ToString();
    return job.ok() ? *job : v1::Job();
  }

  // Every event of the job, oldest first, read without waiting.
  std::vector<v1::Event> AllEvents(const std::string& project, const std::string& job_id) {
    std::vector<v1::Event> events;
    std::string after;
    while (true) {
      auto batch = store_->ReadEvents(project, job_id, after, 0, 3);
      EXPECT_TRUE(batch.ok()) << batch.status().ToString();
      if (!batch.ok() || batch->events.empty()) return events;
      after = batch->events.back().id();
      events.insert(events.end(), batch->events.begin(), batch->events.end());
    }
  }

  Status Complete(const std::string& task_id, uint64_t token, bool succeeded,
                  v1::TaskOutput output = {}, const std::string& error = "") {
    return store_
        ->CompleteTask(kProject, task_id, token,
                       {.succeeded = succeeded, .error = error, .output = std::move(output)},
                       clock_.NowMs())
        .status();
  }

  static RedisServer* server_;
  ManualClock clock_;
  std::unique_ptr<Store> store_;
};

RedisServer* StoreContractTest::server_ = nullptr;

TEST_F(StoreContractTest, TwoTaskGraphRunsToSuccessAndPassesInputs) {
  ASSERT_TRUE(store_->CreateJob(MakeJob(kProject, "j1"), TwoTasks("j1"), clock_.NowMs()).ok());
  v1::Job job = MustGetJob(kProject, "j1");
  EXPECT_EQ(job.state(), v1::JOB_STATE_QUEUED);
  EXPECT_EQ(TaskOf(job, "j1.features").state(), v1::TASK_STATE_QUEUED);
  EXPECT_EQ(TaskOf(job, "j1.train").state(), v1::TASK_STATE_BLOCKED);
  ASSERT_TRUE(store_
                  ->UpsertWorker(
                      [] {
                        v1::WorkerInfo info;
                        info.set_id("w1");
                        info.set_hostname("host-1");
                        return info;
                      }(),
                      clock_.NowMs())
                  .ok());

  clock_.AdvanceMs(5);
  const int64_t leased_ms = clock_.NowMs();
  LeaseGrant features = MustLease("w1", {v1::TASK_KIND_TRAIN, v1::TASK_KIND_GENERATE_FEATURES});
  EXPECT_EQ(features.spec.task_id(), "j1.features");
  EXPECT_EQ(features.spec.project(), kProject);
  EXPECT_EQ(features.attempt, 1u);
  EXPECT_GT(features.fencing_token, 0u);
  EXPECT_TRUE(NothingToLease()) << "train must wait for features";
  EXPECT_EQ(MustGetJob(kProject, "j1").state(), v1::JOB_STATE_RUNNING);
  auto workers = store_->ListWorkers(0);
  ASSERT_TRUE(workers.ok());
  ASSERT_EQ(workers->size(), 1u);
  EXPECT_EQ((*workers)[0].current_task(), "j1.features");
  EXPECT_EQ((*workers)[0].hostname(), "host-1");

  v1::Event log;
  log.set_kind(v1::EVENT_KIND_LOG);
  log.set_message("reading 10 samples");
  auto answer = store_->Heartbeat(kProject, "j1.features", features.fencing_token, {0.5, {log}},
                                  clock_.NowMs(), kTtlMs);
  ASSERT_TRUE(answer.ok()) << answer.status().ToString();
  EXPECT_FALSE(answer->cancel);
  EXPECT_DOUBLE_EQ(TaskOf(MustGetJob(kProject, "j1"), "j1.features").progress(), 0.5);

  const std::string features_sha = Sha256Hex("features");
  clock_.AdvanceMs(100);
  auto effect = store_->CompleteTask(kProject, "j1.features", features.fencing_token,
                                     {.succeeded = true, .output = FeaturesOutput(features_sha)},
                                     clock_.NowMs());
  ASSERT_TRUE(effect.ok()) << effect.status().ToString();
  EXPECT_EQ(effect->job_id, "j1");
  EXPECT_EQ(effect->kind, v1::TASK_KIND_GENERATE_FEATURES);
  EXPECT_EQ(effect->task_state, v1::TASK_STATE_SUCCEEDED);
  EXPECT_EQ(effect->job_state, v1::JOB_STATE_RUNNING);
  EXPECT_EQ(effect->started_ms, leased_ms);

  LeaseGrant train = MustLease("w2");
  EXPECT_EQ(train.spec.task_id(), "j1.train");
  EXPECT_EQ(train.spec.inputs().at("features"), features_sha);
  EXPECT_EQ(train.spec.dependency_results().features().samples(), 10u)
      << "a task sees what its dependencies reported";
  EXPECT_GT(train.fencing_token, features.fencing_token);

  v1::TaskOutput train_output;
  train_output.mutable_results()->add_labels("cat");
  train_output.mutable_results()->mutable_float32()->mutable_validation()->set_accuracy(0.9);
  train_output.add_artifacts()->set_name("model_f32.onnx");
  effect = store_->CompleteTask(kProject, "j1.train", train.fencing_token,
                                {.succeeded = true, .output = train_output}, clock_.NowMs());
  ASSERT_TRUE(effect.ok()) << effect.status().ToString();
  EXPECT_EQ(effect->job_state, v1::JOB_STATE_SUCCEEDED);

  job = MustGetJob(kProject, "j1");
  EXPECT_EQ(job.state(), v1::JOB_STATE_SUCCEEDED);
  ASSERT_EQ(job.tasks_size(), 2);
  for (const v1::Task& task : job.tasks()) {
    EXPECT_EQ(task.state(), v1::TASK_STATE_SUCCEEDED) << task.id();
    EXPECT_EQ(task.attempt(), 1u);
    EXPECT_EQ(task.finished_ms(), clock_.NowMs());
  }
  EXPECT_EQ(job.results().features().samples(), 10u);
  EXPECT_DOUBLE_EQ(job.results().float32().validation().accuracy(), 0.9);
  EXPECT_EQ(job.results().labels_size(), 1) << "labels are stated in full, not appended";
  ASSERT_EQ(job.artifacts_size(), 2);
  EXPECT_EQ(job.artifacts(1).name(), "model_f32.onnx");

  const std::vector<v1::Event> events = AllEvents(kProject, "j1");
  EXPECT_TRUE(HasMessage(events, "reading 10 samples"));
  bool saw_progress = false;
  for (const v1::Event& event : events) {
    EXPECT_FALSE(event.id().empty());
    saw_progress |= event.kind() == v1::EVENT_KIND_PROGRESS && event.progress() == 0.5;
  }
  EXPECT_TRUE(saw_progress);
  ASSERT_FALSE(events.empty());
  EXPECT_EQ(events.back().job_state(), v1::JOB_STATE_SUCCEEDED);
  auto tail = store_->ReadEvents(kProject, "j1", events.back().id(), 0, 10);
  ASSERT_TRUE(tail.ok());
  EXPECT_TRUE(tail->events.empty());
  EXPECT_TRUE(tail->job_finished);

  auto stats = store_->GetQueueStats();
  ASSERT_TRUE(stats.ok());
  EXPECT_EQ(stats->running, 0);
  for (const auto& [kind, queued] : stats->queued) EXPECT_EQ(queued, 0) << kind;
  auto listed = store_->ListWorkers(0);
  ASSERT_TRUE(listed.ok());
  EXPECT_EQ((*listed)[0].current_task(), "") << "cleared when its task completed";
}

TEST_F(StoreContractTest, ExpiredLeaseIsRequeuedAndTheOldTokenIsFenced) {
  ASSERT_TRUE(store_->CreateJob(MakeJob(kProject, "a"), OneTask("a"), clock_.NowMs()).ok());
  clock_.AdvanceMs(10);
  ASSERT_TRUE(store_->CreateJob(MakeJob(kProject, "b"), OneTask("b"), clock_.NowMs()).ok());

  LeaseGrant first = MustLease("w1");
  ASSERT_EQ(first.spec.task_id(), "a.features");
  clock_.AdvanceMs(kTtlMs - 1);
  auto expired = store_->RequeueExpired(clock_.NowMs());
  ASSERT_TRUE(expired.ok());
  EXPECT_TRUE(expired->empty()) << "the lease has 1 ms left";

  clock_.AdvanceMs(1);
  expired = store_->RequeueExpired(clock_.NowMs());
  ASSERT_TRUE(expired.ok()) << expired.status().ToString();
  ASSERT_EQ(expired->size(), 1u);
  EXPECT_EQ((*expired)[0].project, kProject);
  EXPECT_EQ((*expired)[0].task_id, "a.features");
  EXPECT_TRUE((*expired)[0].requeued);
  EXPECT_EQ(TaskOf(MustGetJob(kProject, "a"), "a.features").state(), v1::TASK_STATE_QUEUED);
  EXPECT_TRUE(
      HasMessage(AllEvents(kProject, "a"), "lease expired on worker w1, attempt 1 requeued"));

  LeaseGrant second = MustLease("w2");
  EXPECT_EQ(second.spec.task_id(), "a.features") << "a requeued task keeps its place";
  EXPECT_EQ(second.attempt, 2u);
  EXPECT_GT(second.fencing_token, first.fencing_token);

  // The first lessee comes back: everything it says is refused, unwritten.
  const v1::Job before = MustGetJob(kProject, "a");
  const size_t events_before = AllEvents(kProject, "a").size();
  v1::Event log;
  log.set_kind(v1::EVENT_KIND_LOG);
  log.set_message("stale");
  auto beat = store_->Heartbeat(kProject, "a.features", first.fencing_token, {0.9, {log}},
                                clock_.NowMs(), kTtlMs);
  EXPECT_EQ(beat.status().code(), StatusCode::kAborted);
  EXPECT_EQ(Complete("a.features", first.fencing_token, true, FeaturesOutput("x")).code(),
            StatusCode::kAborted);
  EXPECT_EQ(Complete("a.features", first.fencing_token, false, {}, "boom").code(),
            StatusCode::kAborted);
  EXPECT_EQ(MustGetJob(kProject, "a").DebugString(), before.DebugString());
  EXPECT_EQ(AllEvents(kProject, "a").size(), events_before);

  ASSERT_TRUE(Complete("a.features", second.fencing_token, true).ok());
  const v1::Job done = MustGetJob(kProject, "a");
  EXPECT_EQ(done.state(), v1::JOB_STATE_SUCCEEDED);
  EXPECT_EQ(TaskOf(done, "a.features").worker_id(), "w2");
  EXPECT_EQ(Complete("a.features", second.fencing_token, true).code(), StatusCode::kAborted)
      << "a completed attempt cannot complete twice";
}

TEST_F(StoreContractTest, RequeuedAttemptResumesFromTheLastCheckpoint) {
  ASSERT_TRUE(store_->CreateJob(MakeJob(kProject, "c"), TwoTasks("c", 3), clock_.NowMs()).ok());
  LeaseGrant first = MustLease("w1");
  EXPECT_EQ(first.spec.inputs().count("checkpoint"), 0u);
  const std::string epoch1(64, 'a'), epoch2(64, 'b');
  ASSERT_TRUE(store_->Heartbeat(kProject, "c.features", first.fencing_token,
                                {.progress = 0.3, .checkpoint_sha256 = epoch1}, clock_.NowMs(), kTtlMs)
                  .ok());
  ASSERT_TRUE(store_->Heartbeat(kProject, "c.features", first.fencing_token,
                                {.progress = 0.6, .checkpoint_sha256 = epoch2}, clock_.NowMs(), kTtlMs)
                  .ok());
  // A heartbeat without a checkpoint keeps the last one.
  ASSERT_TRUE(store_->Heartbeat(kProject, "c.features", first.fencing_token, {.progress = 0.7},
                                clock_.NowMs(), kTtlMs)
                  .ok());
  clock_.AdvanceMs(kTtlMs);
  ASSERT_TRUE(store_->RequeueExpired(clock_.NowMs()).ok());
  LeaseGrant second = MustLease("w2");
  EXPECT_EQ(second.attempt, 2u);
  EXPECT_EQ(second.spec.inputs().at("checkpoint"), epoch2);
}

TEST_F(StoreContractTest, LastAttemptExpiringFailsTaskAndJob) {
  ASSERT_TRUE(store_->CreateJob(MakeJob(kProject, "j"), TwoTasks("j", 2), clock_.NowMs()).ok());
  MustLease("w1");
  clock_.AdvanceMs(kTtlMs);
  ASSERT_TRUE(store_->RequeueExpired(clock_.NowMs()).ok());
  MustLease("w2");
  clock_.AdvanceMs(kTtlMs);
  auto expired = store_->RequeueExpired(clock_.NowMs());
  ASSERT_TRUE(expired.ok());
  ASSERT_EQ(expired->size(), 1u);
  EXPECT_FALSE((*expired)[0].requeued);

  const v1::Job job = MustGetJob(kProject, "j");
  EXPECT_EQ(job.state(), v1::JOB_STATE_FAILED);
  EXPECT_EQ(job.reason(),
            "task j.features failed: lease expired on worker w2 after attempt 2 of 2");
  const v1::Task& features = TaskOf(job, "j.features");
  EXPECT_EQ(features.state(), v1::TASK_STATE_FAILED);
  EXPECT_EQ(features.attempt(), 2u);
  EXPECT_EQ(TaskOf(job, "j.train").state(), v1::TASK_STATE_CANCELLED);
  EXPECT_TRUE(NothingToLease());
  auto stats = store_->GetQueueStats();
  ASSERT_TRUE(stats.ok());
  EXPECT_EQ(stats->running, 0);
}

TEST_F(StoreContractTest, FailedTaskFailsTheJobAndCancelsTheRest) {
  ASSERT_TRUE(store_->CreateJob(MakeJob(kProject, "j"), TwoTasks("j"), clock_.NowMs()).ok());
  LeaseGrant grant = MustLease("w1");
  auto effect =
      store_->CompleteTask(kProject, "j.features", grant.fencing_token,
                           {.succeeded = false, .error = "out of memory"}, clock_.NowMs());
  ASSERT_TRUE(effect.ok());
  EXPECT_EQ(effect->task_state, v1::TASK_STATE_FAILED);
  EXPECT_EQ(effect->job_state, v1::JOB_STATE_FAILED);
  const v1::Job job = MustGetJob(kProject, "j");
  EXPECT_EQ(job.reason(), "task j.features failed: out of memory");
  EXPECT_EQ(TaskOf(job, "j.features").error(), "out of memory");
  EXPECT_EQ(TaskOf(job, "j.train").state(), v1::TASK_STATE_CANCELLED);
  EXPECT_TRUE(NothingToLease());
}

TEST_F(StoreContractTest, CancelQueuedJob) {
  ASSERT_TRUE(store_->CreateJob(MakeJob(kProject, "j"), TwoTasks("j"), clock_.NowMs()).ok());
  ASSERT_TRUE(store_->CancelJob(kProject, "j", "changed my mind", clock_.NowMs()).ok());
  const v1::Job job = MustGetJob(kProject, "j");
  EXPECT_EQ(job.state(), v1::JOB_STATE_CANCELLED);
  EXPECT_EQ(job.reason(), "changed my mind");
  for (const v1::Task& task : job.tasks()) EXPECT_EQ(task.state(), v1::TASK_STATE_CANCELLED);
  EXPECT_TRUE(NothingToLease());
  auto stats = store_->GetQueueStats();
  ASSERT_TRUE(stats.ok());
  for (const auto& [kind, queued] : stats->queued) EXPECT_EQ(queued, 0) << kind;
  EXPECT_EQ(store_->CancelJob(kProject, "j", "again", clock_.NowMs()).code(),
            StatusCode::kFailedPrecondition);
  EXPECT_EQ(store_->CancelJob(kProject, "nope", "", clock_.NowMs()).code(), StatusCode::kNotFound);
  auto batch = store_->ReadEvents(kProject, "j", "", 0, 100);
  ASSERT_TRUE(batch.ok());
  EXPECT_TRUE(batch->job_finished);
}

TEST_F(StoreContractTest, CancelRunningJobIsToldAtTheNextHeartbeat) {
  ASSERT_TRUE(store_->CreateJob(MakeJob(kProject, "j"), TwoTasks("j"), clock_.NowMs()).ok());
  LeaseGrant grant = MustLease("w1");
  ASSERT_TRUE(store_->CancelJob(kProject, "j", "user asked", clock_.NowMs()).ok());
  EXPECT_EQ(TaskOf(MustGetJob(kProject, "j"), "j.features").state(), v1::TASK_STATE_RUNNING);
  auto answer = store_->Heartbeat(kProject, "j.features", grant.fencing_token, {0.2, {}},
                                  clock_.NowMs(), kTtlMs);
  ASSERT_TRUE(answer.ok()) << answer.status().ToString();
  EXPECT_TRUE(answer->cancel);
  EXPECT_EQ(answer->reason, "user asked");

  auto effect =
      store_->CompleteTask(kProject, "j.features", grant.fencing_token,
                           {.succeeded = true, .output = FeaturesOutput("x")}, clock_.NowMs());
  ASSERT_TRUE(effect.ok()) << effect.status().ToString();
  EXPECT_EQ(effect->task_state, v1::TASK_STATE_CANCELLED);
  EXPECT_EQ(effect->job_state, v1::JOB_STATE_CANCELLED);
  const v1::Job job = MustGetJob(kProject, "j");
  EXPECT_EQ(job.state(), v1::JOB_STATE_CANCELLED);
  EXPECT_FALSE(job.results().has_features()) << "a cancelled task's output is not kept";
  EXPECT_TRUE(NothingToLease());
  auto stats = store_->GetQueueStats();
  ASSERT_TRUE(stats.ok());
  EXPECT_EQ(stats->running, 0);
}

TEST_F(StoreContractTest, ExpiredLeaseOfCancelledJobIsReleased) {
  ASSERT_TRUE(store_->CreateJob(MakeJob(kProject, "j"), OneTask("j"), clock_.NowMs()).ok());
  MustLease("w1");
  ASSERT_TRUE(store_->CancelJob(kProject, "j", "stop", clock_.NowMs()).ok());
  clock_.AdvanceMs(kTtlMs);
  auto expired = store_->RequeueExpired(clock_.NowMs());
  ASSERT_TRUE(expired.ok());
  EXPECT_TRUE(expired->empty()) << "released tasks are not listed";
  EXPECT_EQ(TaskOf(MustGetJob(kProject, "j"), "j.features").state(), v1::TASK_STATE_CANCELLED);
  EXPECT_TRUE(NothingToLease());
}

TEST_F(StoreContractTest, ReusedOutputCountsAsDone) {
  const std::string features_sha = Sha256Hex("cached features");
  std::vector<NewTask> tasks = TwoTasks("j");
  tasks[0].reused_output = FeaturesOutput(features_sha);
  ASSERT_TRUE(store_->CreateJob(MakeJob(kProject, "j"), tasks, clock_.NowMs()).ok());
  v1::Job job = MustGetJob(kProject, "j");
  EXPECT_EQ(TaskOf(job, "j.features").state(), v1::TASK_STATE_SUCCEEDED);
  EXPECT_EQ(TaskOf(job, "j.train").state(), v1::TASK_STATE_QUEUED);
  EXPECT_EQ(job.results().features().samples(), 10u);

  LeaseGrant train = MustLease("w1");
  EXPECT_EQ(train.spec.task_id(), "j.train");
  EXPECT_EQ(train.spec.inputs().at("features"), features_sha);
  ASSERT_TRUE(Complete("j.train", train.fencing_token, true).ok());
  EXPECT_EQ(MustGetJob(kProject, "j").state(), v1::JOB_STATE_SUCCEEDED);

  // A job whose every task is reused is done at once.
  std::vector<NewTask> only = OneTask("k");
  only[0].reused_output = FeaturesOutput(features_sha);
  ASSERT_TRUE(store_->CreateJob(MakeJob(kProject, "k"), only, clock_.NowMs()).ok());
  EXPECT_EQ(MustGetJob(kProject, "k").state(), v1::JOB_STATE_SUCCEEDED);
  auto batch = store_->ReadEvents(kProject, "k", "", 0, 100);
  ASSERT_TRUE(batch.ok());
  EXPECT_TRUE(batch->job_finished);
  EXPECT_TRUE(NothingToLease());
}

TEST_F(StoreContractTest, CreateJobRefusesDuplicatesAndBadGraphs) {
  ASSERT_TRUE(store_->CreateJob(MakeJob(kProject, "j"), TwoTasks("j"), clock_.NowMs()).ok());
  EXPECT_EQ(store_->CreateJob(MakeJob(kProject, "j"), TwoTasks("other"), clock_.NowMs()).code(),
            StatusCode::kAlreadyExists);
  EXPECT_EQ(store_->CreateJob(MakeJob(kProject, "j2"), TwoTasks("j"), clock_.NowMs()).code(),
            StatusCode::kAlreadyExists)
      << "task ids are unique";
  EXPECT_EQ(store_->GetJob(kProject, "j2").status().code(), StatusCode::kNotFound)
      << "a refused job leaves nothing";

  std::vector<NewTask> cycle = TwoTasks("c");
  cycle[0].deps = {cycle[1].id};
  EXPECT_EQ(store_->CreateJob(MakeJob(kProject, "c"), cycle, clock_.NowMs()).code(),
            StatusCode::kInvalidArgument);
  std::vector<NewTask> dangling = TwoTasks("d");
  dangling[1].deps = {"elsewhere"};
  EXPECT_EQ(store_->CreateJob(MakeJob(kProject, "d"), dangling, clock_.NowMs()).code(),
            StatusCode::kInvalidArgument);
  EXPECT_EQ(store_->CreateJob(MakeJob(kProject, "e"), {}, clock_.NowMs()).code(),
            StatusCode::kInvalidArgument);
}

TEST_F(StoreContractTest, ProjectsSeeNothingOfEachOther) {
  const std::string other = "proj-b";
  ASSERT_TRUE(store_->CreateJob(MakeJob(kProject, "j"), OneTask("j"), clock_.NowMs()).ok());
  EXPECT_EQ(store_->GetJob(other, "j").status().code(), StatusCode::kNotFound);
  EXPECT_EQ(store_->ReadEvents(other, "j", "", 0, 10).status().code(), StatusCode::kNotFound);
  EXPECT_EQ(store_->CancelJob(other, "j", "", clock_.NowMs()).code(), StatusCode::kNotFound);
  auto listed = store_->ListJobs(other, 10);
  ASSERT_TRUE(listed.ok());
  EXPECT_TRUE(listed->empty());
  listed = store_->ListJobs(kProject, 10);
  ASSERT_TRUE(listed.ok());
  ASSERT_EQ(listed->size(), 1u);

  LeaseGrant grant = MustLease("w1");
  EXPECT_EQ(
      store_->Heartbeat(other, "j.features", grant.fencing_token, {0.1, {}}, clock_.NowMs(), kTtlMs)
          .status()
          .code(),
      StatusCode::kNotFound);
  EXPECT_EQ(Complete("j.features", grant.fencing_token + 1, true).code(), StatusCode::kAborted);

  const std::string blob = Sha256Hex("blob of a");
  ASSERT_TRUE(store_->AddBlobs(kProject, {blob}).ok());
  EXPECT_EQ(store_->MissingBlobs(kProject, {blob}).value(), std::vector<std::string>{});
  EXPECT_EQ(store_->MissingBlobs(other, {blob}).value(), std::vector<std::string>{blob});

  v1::DatasetInfo dataset;
  dataset.set_sha256(Sha256Hex("manifest"));
  dataset.set_name("fashion");
  ASSERT_TRUE(store_->PutDataset(kProject, dataset).ok());
  EXPECT_EQ(store_->GetDataset(kProject, dataset.sha256()).value().name(), "fashion");
  EXPECT_EQ(store_->GetDataset(other, dataset.sha256()).status().code(), StatusCode::kNotFound);

  ASSERT_TRUE(store_->PutCachedOutput(kProject, "features:abc", FeaturesOutput(blob)).ok());
  auto cached = store_->GetCachedOutput(kProject, "features:abc");
  ASSERT_TRUE(cached.ok() && cached->has_value());
  EXPECT_EQ((*cached)->blobs().at("features"), blob);
  cached = store_->GetCachedOutput(other, "features:abc");
  ASSERT_TRUE(cached.ok());
  EXPECT_FALSE(cached->has_value());
}

TEST_F(StoreContractTest, NamedWeightsArePerProjectAndReplaceable) {
  const std::string first(64, 'c'), second(64, 'd');
  EXPECT_EQ(store_->GetWeights(kProject, "fashion-0-4").status().code(), StatusCode::kNotFound);
  ASSERT_TRUE(store_->PutWeights(kProject, "fashion-0-4", first).ok());
  EXPECT_EQ(*store_->GetWeights(kProject, "fashion-0-4"), first);
  ASSERT_TRUE(store_->PutWeights(kProject, "fashion-0-4", second).ok());
  EXPECT_EQ(*store_->GetWeights(kProject, "fashion-0-4"), second);
  EXPECT_EQ(store_->GetWeights("other", "fashion-0-4").status().code(), StatusCode::kNotFound);
  EXPECT_EQ(store_->PutWeights(kProject, "x", "not-a-sha").code(), StatusCode::kInvalidArgument);
}

TEST_F(StoreContractTest, BadProjectNamesAreInvalidArguments) {
  for (const std::string& bad :
       std::vector<std::string>{"", "a/b", "a:b", "a b", std::string(65, 'p'), "queue", "worker"}) {
    EXPECT_EQ(store_->CreateJob(MakeJob(bad, "j"), OneTask("j-" + bad), clock_.NowMs()).code(),
              StatusCode::kInvalidArgument)
        << bad;
    EXPECT_EQ(store_->GetJob(bad, "j").status().code(), StatusCode::kInvalidArgument) << bad;
    EXPECT_EQ(store_->AddBlobs(bad, {Sha256Hex("x")}).code(), StatusCode::kInvalidArgument) << bad;
  }
  EXPECT_TRUE(ValidateProjectName(std::string(64, 'p')).ok());
  EXPECT_TRUE(ValidateProjectName("My_project-1.2").ok());
}

TEST_F(StoreContractTest, ListJobsNewestFirstWithoutTasks) {
  for (const std::string id : {"j1", "j2", "j3"}) {
    ASSERT_TRUE(store_->CreateJob(MakeJob(kProject, id), OneTask(id), clock_.NowMs()).ok());
    clock_.AdvanceMs(1);
  }
  auto jobs = store_->ListJobs(kProject, 2);
  ASSERT_TRUE(jobs.ok());
  ASSERT_EQ(jobs->size(), 2u);
  EXPECT_EQ((*jobs)[0].id(), "j3");
  EXPECT_EQ((*jobs)[1].id(), "j2");
  EXPECT_EQ((*jobs)[0].tasks_size(), 0);
  EXPECT_EQ((*jobs)[0].dataset_sha256(), Sha256Hex("dataset"));
}

TEST_F(StoreContractTest, BlockingReadWakesOnANewEvent) {
  ASSERT_TRUE(store_->CreateJob(MakeJob(kProject, "j"), OneTask("j"), clock_.NowMs()).ok());
  LeaseGrant grant = MustLease("w1");
  const std::vector<v1::Event> seen = AllEvents(kProject, "j");
  ASSERT_FALSE(seen.empty());

  Result<EventBatch> batch = Internal("not read");
  const auto start = std::chrono::steady_clock::now();
  std::thread reader(
      [&] { batch = store_->ReadEvents(kProject, "j", seen.back().id(), 20000, 100); });
  ASSERT_TRUE(
      store_
          ->Heartbeat(kProject, "j.features", grant.fencing_token, {0.3, {}}, clock_.NowMs(), kTtlMs)
          .ok());
  reader.join();
  ASSERT_TRUE(batch.ok()) << batch.status().ToString();
  ASSERT_FALSE(batch->events.empty());
  EXPECT_EQ(batch->events[0].kind(), v1::EVENT_KIND_PROGRESS);
  EXPECT_FALSE(batch->job_finished);
  EXPECT_LT(std::chrono::steady_clock::now() - start, std::chrono::seconds(10));

  auto empty = store_->ReadEvents(kProject, "j", batch->events.back().id(), 0, 100);
  ASSERT_TRUE(empty.ok());
  EXPECT_TRUE(empty->events.empty());
  EXPECT_EQ(store_->ReadEvents(kProject, "j", "not-an-id", 0, 10).status().code(),
            StatusCode::kInvalidArgument);
}

// Random operations against an in-process model of each task's lease; after
// every step the Store must agree with the model about which tokens are
// current, and its counters must agree with the task states it reports.
TEST_F(StoreContractTest, RandomOperationsAgreeWithAModel) {
  std::mt19937 random(20261126);
  struct Lease {
    uint64_t token;
    int64_t expires_ms;
  };
  std::map<std::string, Lease> current;  // task id -> the live lease
  std::vector<std::pair<std::string, uint64_t>> old_tokens;
  std::vector<std::string> job_ids;
  for (int step = 0; step < 300; ++step) {
    switch (random() % 6) {
      case 0: {  // submit
        const std::string id = "r" + std::to_string(step);
        ASSERT_TRUE(store_->CreateJob(MakeJob(kProject, id), TwoTasks(id, 2), clock_.NowMs()).ok());
        job_ids.push_back(id);
        break;
      }
      case 1: {  // lease
        auto grant = store_->LeaseTask("w" + std::to_string(step % 3), {}, clock_.NowMs(), kTtlMs);
        ASSERT_TRUE(grant.ok()) << grant.status().ToString();
        if (grant->has_value()) {
          const std::string task = (*grant)->spec.task_id();
          ASSERT_EQ(current.count(task), 0u) << task << " leased twice";
          current[task] = {(*grant)->fencing_token, clock_.NowMs() + kTtlMs};
        }
        break;
      }
      case 2:
      case 3: {  // complete a live lease, mostly successfully
        if (current.empty()) break;
        auto it = std::next(current.begin(), random() % current.size());
        const bool succeeded = random() % 4 != 0;
        ASSERT_TRUE(Complete(it->first, it->second.token, succeeded, {}, "random failure").ok());
        old_tokens.emplace_back(it->first, it->second.token);
        current.erase(it);
        break;
      }
      case 4: {  // time passes; leases lapse
        clock_.AdvanceMs(random() % (kTtlMs + 200));
        auto expired = store_->RequeueExpired(clock_.NowMs());
        ASSERT_TRUE(expired.ok());
        size_t lapsed = 0;
        for (auto it = current.begin(); it != current.end();) {
          if (it->second.expires_ms <= clock_.NowMs()) {
            old_tokens.emplace_back(it->first, it->second.token);
            it = current.erase(it);
            ++lapsed;
          } else {
            ++it;
          }
        }
        ASSERT_GE(lapsed, expired->size());
        break;
      }
      case 5: {  // cancel a random job
        if (job_ids.empty()) break;
        const Status status = store_->CancelJob(kProject, job_ids[random() % job_ids.size()],
                                                "random", clock_.NowMs());
        ASSERT_TRUE(status.ok() || status.code() == StatusCode::kFailedPrecondition)
            << status.ToString();
        break;
      }
    }
    // Every superseded token is refused.
    if (!old_tokens.empty()) {
      const auto& [task, token] = old_tokens[random() % old_tokens.size()];
      EXPECT_EQ(
          store_->Heartbeat(kProject, task, token, {0.5, {}}, clock_.NowMs(), kTtlMs).status().code(),
          StatusCode::kAborted);
    }
  }
  // The Store's states agree with the model and with its own counters.
  int64_t running = 0;
  int64_t queued = 0;
  for (const std::string& id : job_ids) {
    const v1::Job job = MustGetJob(kProject, id);
    bool all_succeeded = true;
    for (const v1::Task& task : job.tasks()) {
      all_succeeded &= task.state() == v1::TASK_STATE_SUCCEEDED;
      running += task.state() == v1::TASK_STATE_RUNNING;
      queued += task.state() == v1::TASK_STATE_QUEUED;
      EXPECT_EQ(task.state() == v1::TASK_STATE_RUNNING, current.count(task.id()) == 1) << task.id();
      if (IsTerminal(job.state())) {
        EXPECT_NE(task.state(), v1::TASK_STATE_QUEUED) << task.id();
        EXPECT_NE(task.state(), v1::TASK_STATE_BLOCKED) << task.id();
      }
    }
    EXPECT_EQ(all_succeeded, job.state() == v1::JOB_STATE_SUCCEEDED) << id;
  }
  auto stats = store_->GetQueueStats();
  ASSERT_TRUE(stats.ok());
  EXPECT_EQ(stats->running, running);
  int64_t in_queues = 0;
  for (const auto& [kind, count] : stats->queued) in_queues += count;
  EXPECT_EQ(in_queues, queued);
}

// Servers of their own: these tests stop and restart them.

TEST(RedisStoreRestartTest, EventStreamResumesAfterARestartWithAof) {
  auto server = RedisServer::Start(RedisServerOptions{.append_only = true});
  ASSERT_TRUE(server.ok()) << server.status().ToString();
  std::unique_ptr<Store> store = NewStore((*server)->address(), "restart");
  ASSERT_NE(store, nullptr);
  ManualClock clock;
  ASSERT_TRUE(store->CreateJob(MakeJob(kProject, "j"), OneTask("j"), clock.NowMs()).ok());
  auto grant = store->LeaseTask("w1", {}, clock.NowMs(), 60000);
  ASSERT_TRUE(grant.ok() && grant->has_value());
  const uint64_t token = (*grant)->fencing_token;
  v1::Event log;
  log.set_kind(v1::EVENT_KIND_LOG);
  log.set_message("before the restart");
  ASSERT_TRUE(
      store->Heartbeat(kProject, "j.features", token, {0.4, {log}}, clock.NowMs(), 60000).ok());
  auto before = store->ReadEvents(kProject, "j", "", 0, 100);
  ASSERT_TRUE(before.ok());
  ASSERT_GE(before->events.size(), 3u);
  const std::string resume_after = before->events[1].id();

  ASSERT_TRUE((*server)->Restart().ok());

  // Pooled connections died with the server: calls fail Unavailable until
  // each broken connection has been discarded once.
  Result<EventBatch> after = Internal("not read");
  for (int i = 0; i < 40; ++i) {
    after = store->ReadEvents(kProject, "j", resume_after, 0, 100);
    if (after.ok()) break;
    ASSERT_EQ(after.status().code(), StatusCode::kUnavailable) << after.status().ToString();
  }
  ASSERT_TRUE(after.ok()) << after.status().ToString();
  ASSERT_EQ(after->events.size(), before->events.size() - 2);
  for (size_t i = 0; i < after->events.size(); ++i) {
    EXPECT_EQ(after->events[i].DebugString(), before->events[i + 2].DebugString());
  }
  EXPECT_TRUE(HasMessage(after->events, "before the restart"));

  // The lease and its fencing token survived too; scripts reload (NOSCRIPT).
  Result<HeartbeatAnswer> beat = Internal("not sent");
  for (int i = 0; i < 40; ++i) {
    beat = store->Heartbeat(kProject, "j.features", token, {0.6, {}}, clock.NowMs(), 60000);
    if (beat.ok() || beat.status().code() != StatusCode::kUnavailable) break;
  }
  ASSERT_TRUE(beat.ok()) << beat.status().ToString();
  auto tail = store->ReadEvents(kProject, "j", before->events.back().id(), 0, 100);
  ASSERT_TRUE(tail.ok());
  ASSERT_EQ(tail->events.size(), 1u);
  EXPECT_GT(tail->events[0].id(), before->events.back().id());
}

TEST(RedisStoreDownTest, CallsFailUnavailableWhenRedisIsDown) {
  auto server = RedisServer::Start();
  ASSERT_TRUE(server.ok()) << server.status().ToString();
  const std::string address = (*server)->address();
  std::unique_ptr<Store> store = NewStore(address, "down");
  ASSERT_NE(store, nullptr);
  ASSERT_TRUE((*server)->Stop().ok());

  EXPECT_EQ(store->GetJob(kProject, "j").status().code(), StatusCode::kUnavailable);
  EXPECT_EQ(store->LeaseTask("w", {}, 0, kTtlMs).status().code(), StatusCode::kUnavailable);
  EXPECT_EQ(store->CreateJob(MakeJob(kProject, "j"), OneTask("j"), 0).code(),
            StatusCode::kUnavailable);
  EXPECT_EQ(store->GetQueueStats().status().code(), StatusCode::kUnavailable);
  EXPECT_EQ(RedisStore::Connect(address, "down").status().code(), StatusCode::kUnavailable);
  EXPECT_EQ(RedisStore::Connect("not an address", "x").status().code(),
            StatusCode::kInvalidArgument);
}

}  // namespace
}  // namespace impulse::coordinator
