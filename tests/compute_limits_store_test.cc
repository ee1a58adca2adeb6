// Compute limits in the Store (docs/COMPUTE.md), against RedisStore on a
// real redis-server: charging worker time to jobs and projects, withdrawal
// past the per-job limit, budgets per period, the concurrent-job limit,
// project settings. Only the Store interface is used (Connect aside); time
// comes from a ManualClock.
#include <gtest/gtest.h>

#include <atomic>
#include <cmath>
#include <limits>
#include <thread>

#include "coordinator/projects.h"
#include "coordinator/redis_store.h"
#include "impulse/sha256.h"
#include "tests/support/manual_clock.h"
#include "tests/support/redis_server.h"

namespace impulse::coordinator {
namespace {

using testing::ManualClock;
using testing::RedisServer;

constexpr int64_t kTtlMs = 10000;
constexpr char kProject[] = "limits";

v1::Job MakeJob(const std::string& id, double estimate_s = 0) {
  v1::Job job;
  job.set_id(id);
  job.set_project(kProject);
  job.set_kind(v1::JOB_KIND_TRAIN);
  job.set_estimate_s(estimate_s);
  return job;
}

// features -> train -> quantize, as the scheduler builds a training job.
std::vector<NewTask> Pipeline(const std::string& job_id) {
  NewTask features{.id = job_id + ".features", .kind = v1::TASK_KIND_GENERATE_FEATURES};
  NewTask train{.id = job_id + ".train", .kind = v1::TASK_KIND_TRAIN, .deps = {features.id}};
  NewTask quantize{
      .id = job_id + ".quantize", .kind = v1::TASK_KIND_QUANTIZE_EVALUATE, .deps = {train.id}};
  return {features, train, quantize};
}

v1::Project Settings(double job_limit_s, double budget_s = 0, double period_s = 0,
                     uint32_t max_jobs = 0) {
  v1::Project project;
  project.set_name(kProject);
  project.set_job_limit_s(job_limit_s);
  project.set_period_budget_s(budget_s);
  project.set_period_s(period_s);
  project.set_max_concurrent_jobs(max_jobs);
  return project;
}

std::string UniquePrefix() {
  static std::atomic<int> counter{0};
  return "c-" + std::string(::testing::UnitTest::GetInstance()->current_test_info()->name()) + "-" +
         std::to_string(counter++);
}

class ComputeLimitsStoreTest : public ::testing::Test {
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
    prefix_ = UniquePrefix();
    store_ = Connect();
    ASSERT_NE(store_, nullptr);
  }

  std::unique_ptr<Store> Connect() {
    auto store = RedisStore::Connect(server_->address(), prefix_);
    EXPECT_TRUE(store.ok()) << store.status().ToString();
    return store.ok() ? std::move(store).value() : nullptr;
  }

  void MustSet(const v1::Project& settings) {
    auto set = store_->SetProject(settings, clock_.NowMs());
    ASSERT_TRUE(set.ok()) << set.status().ToString();
  }

  void MustCreate(const std::string& id, double estimate_s = 0) {
    Status created = store_->CreateJob(MakeJob(id, estimate_s), Pipeline(id), clock_.NowMs());
    ASSERT_TRUE(created.ok()) << created.ToString();
  }

  LeaseGrant MustLease(v1::TaskKind kind) {
    auto grant = store_->LeaseTask("w1", {kind}, clock_.NowMs(), kTtlMs);
    EXPECT_TRUE(grant.ok() && grant->has_value()) << "nothing to lease";
    return grant.ok() && grant->has_value() ? **grant : LeaseGrant{};
  }

  Result<HeartbeatAnswer> Beat(const LeaseGrant& grant, double compute_s,
                               const std::string& checkpoint = "") {
    return store_->Heartbeat(
        kProject, grant.spec.task_id(), grant.fencing_token,
        {.progress = 0.5, .checkpoint_sha256 = checkpoint, .compute_s = compute_s}, clock_.NowMs(),
        kTtlMs);
  }

  Result<CompletionEffect> Complete(const LeaseGrant& grant, double compute_s) {
    return store_->CompleteTask(kProject, grant.spec.task_id(), grant.fencing_token,
                                {.succeeded = true, .compute_s = compute_s}, clock_.NowMs());
  }

  v1::Job MustGetJob(const std::string& id) {
    auto job = store_->GetJob(kProject, id);
    EXPECT_TRUE(job.ok()) << job.status().ToString();
    return job.ok() ? *job : v1::Job();
  }

  v1::Project MustGetProject(const std::string& name = kProject) {
    auto project = store_->GetProject(name, clock_.NowMs());
    EXPECT_TRUE(project.ok()) << project.status().ToString();
    return project.ok() ? *project : v1::Project();
  }

  static RedisServer* server_;
  std::string prefix_;
  ManualClock clock_;
  std::unique_ptr<Store> store_;
};

RedisServer* ComputeLimitsStoreTest::server_ = nullptr;

TEST_F(ComputeLimitsStoreTest, UnknownProjectReadsAsTheDefaults) {
  const v1::Project project = MustGetProject("never-used");
  EXPECT_EQ(project.name(), "never-used");
  EXPECT_EQ(project.job_limit_s(), kDefaultJobLimitS);
  EXPECT_EQ(project.period_s(), kDefaultPeriodS);
  EXPECT_EQ(project.period_budget_s(), 0);
  EXPECT_EQ(project.max_concurrent_jobs(), 0u);
  EXPECT_EQ(project.period_used_s(), 0);
  EXPECT_EQ(project.period_reset_ms(), 0);
}

TEST_F(ComputeLimitsStoreTest, SettingsAreCheckedByFieldAndZeroMeansDefault) {
  const struct {
    v1::Project settings;
    const char* field;
  } bad[] = {{Settings(-5), "job_limit_s"},
             {Settings(std::numeric_limits<double>::quiet_NaN()), "job_limit_s"},
             {Settings(1e12), "job_limit_s"},
             {Settings(0, -1), "period_budget_s"},
             {Settings(0, 0, 1), "period_s"},
             {Settings(0, 0, 0, 10'000'000), "max_concurrent_jobs"}};
  for (const auto& [settings, field] : bad) {
    auto set = store_->SetProject(settings, clock_.NowMs());
    EXPECT_EQ(set.status().code(), StatusCode::kInvalidArgument) << field;
    EXPECT_NE(set.status().message().find(field), std::string::npos) << set.status().ToString();
  }
  v1::Project bad_name = Settings(10);
  bad_name.set_name("no/slash");
  EXPECT_EQ(store_->SetProject(bad_name, clock_.NowMs()).status().code(),
            StatusCode::kInvalidArgument);

  auto set = store_->SetProject(Settings(0, 3600, 0, 3), clock_.NowMs());
  ASSERT_TRUE(set.ok()) << set.status().ToString();
  EXPECT_EQ(set->job_limit_s(), kDefaultJobLimitS);
  EXPECT_EQ(set->period_s(), kDefaultPeriodS);
  EXPECT_EQ(set->period_budget_s(), 3600);
  EXPECT_EQ(set->max_concurrent_jobs(), 3u);
  EXPECT_EQ(set->period_reset_ms(), clock_.NowMs() + 86'400'000);
  EXPECT_EQ(MustGetProject().period_budget_s(), 3600);
}

// Heartbeats report an attempt's cumulative worker time: a repeated or
// older report charges nothing more, and the job and project move together.
TEST_F(ComputeLimitsStoreTest, ChargesAreCumulativePerAttemptAndReachJobAndProject) {
  MustCreate("j", 30);
  const LeaseGrant grant = MustLease(v1::TASK_KIND_GENERATE_FEATURES);
  const std::pair<double, double> reported_charged[] = {{1.5, 1.5}, {1.5, 0}, {1.0, 0}, {4.0, 2.5}};
  for (const auto& [reported, charged] : reported_charged) {
    auto answer = Beat(grant, reported);
    ASSERT_TRUE(answer.ok()) << answer.status().ToString();
    EXPECT_EQ(answer->charged_s, charged) << reported;
  }
  EXPECT_DOUBLE_EQ(MustGetJob("j").compute_s(), 4.0);
  auto effect = Complete(grant, 4.25);
  ASSERT_TRUE(effect.ok()) << effect.status().ToString();
  EXPECT_EQ(effect->charged_s, 0.25);
  EXPECT_EQ(effect->job_compute_s, 4.25);
  EXPECT_EQ(effect->job_estimate_s, 30);

  const v1::Job job = MustGetJob("j");
  EXPECT_DOUBLE_EQ(job.compute_s(), 4.25);
  EXPECT_DOUBLE_EQ(job.estimate_s(), 30);
  const v1::Project project = MustGetProject();
  EXPECT_DOUBLE_EQ(project.period_used_s(), 4.25);
  EXPECT_DOUBLE_EQ(project.total_used_s(), 4.25);
  EXPECT_EQ(project.active_jobs(), 1u);
}

// A worker whose lease lapsed really spent its time: it is charged, but its
// heartbeat is refused and changes nothing of the task.
TEST_F(ComputeLimitsStoreTest, StaleAttemptIsChargedButChangesNothingElse) {
  MustCreate("j");
  const LeaseGrant first = MustLease(v1::TASK_KIND_GENERATE_FEATURES);
  ASSERT_TRUE(Beat(first, 2).ok());
  clock_.AdvanceMs(kTtlMs + 1);
  ASSERT_TRUE(store_->RequeueExpired(clock_.NowMs()).ok());
  const LeaseGrant second = MustLease(v1::TASK_KIND_GENERATE_FEATURES);
  ASSERT_TRUE(Beat(second, 1).ok());

  auto stale = Beat(first, 12, Sha256Hex("stale checkpoint"));
  EXPECT_EQ(stale.status().code(), StatusCode::kAborted);
  auto stale_again = Beat(first, 12);
  EXPECT_EQ(stale_again.status().code(), StatusCode::kAborted);
  const v1::Job job = MustGetJob("j");
  EXPECT_DOUBLE_EQ(job.compute_s(), 12 + 1);
  EXPECT_EQ(job.tasks(0).attempt(), 2u);
  EXPECT_EQ(job.tasks(0).state(), v1::TASK_STATE_RUNNING);
  EXPECT_EQ(job.tasks(0).progress(), 0.5);
  EXPECT_EQ(job.tasks(0).checkpoint_sha256(), "");
  EXPECT_DOUBLE_EQ(MustGetProject().period_used_s(), 13);

  // A token this task never had is not charged.
  EXPECT_EQ(
      store_->Heartbeat(kProject, "j.features", 999999, {.compute_s = 50}, clock_.NowMs(), kTtlMs)
          .status()
          .code(),
      StatusCode::kAborted);
  EXPECT_DOUBLE_EQ(MustGetJob("j").compute_s(), 13);
}

// Two workers charging the same job and project at once: each charge is
// one atomic script, so nothing is lost (quarter seconds add exactly).
TEST_F(ComputeLimitsStoreTest, ConcurrentChargesSumExactly) {
  NewTask a{.id = "j.a", .kind = v1::TASK_KIND_GENERATE_FEATURES};
  NewTask b{.id = "j.b", .kind = v1::TASK_KIND_GENERATE_FEATURES};
  ASSERT_TRUE(store_->CreateJob(MakeJob("j"), {a, b}, clock_.NowMs()).ok());
  const LeaseGrant grants[] = {MustLease(v1::TASK_KIND_GENERATE_FEATURES),
                               MustLease(v1::TASK_KIND_GENERATE_FEATURES)};
  constexpr int kBeats = 400;
  std::vector<std::thread> workers;
  std::atomic<int> failures{0};
  for (const LeaseGrant& grant : grants) {
    workers.emplace_back([&, grant] {
      for (int k = 1; k <= kBeats; ++k) {
        if (!Beat(grant, 0.25 * k).ok()) ++failures;
      }
    });
  }
  for (auto& worker : workers) worker.join();
  EXPECT_EQ(failures, 0);
  EXPECT_EQ(MustGetJob("j").compute_s(), 2 * 0.25 * kBeats);
  EXPECT_EQ(MustGetProject().period_used_s(), 2 * 0.25 * kBeats);
}

TEST_F(ComputeLimitsStoreTest, PassingTheJobLimitWithdrawsTheJob) {
  MustSet(Settings(10));
  MustCreate("j", 8);
  ASSERT_TRUE(Complete(MustLease(v1::TASK_KIND_GENERATE_FEATURES), 2).ok());
  const LeaseGrant train = MustLease(v1::TASK_KIND_TRAIN);
  const std::string checkpoint = Sha256Hex("epoch 1");
  auto under = Beat(train, 7, checkpoint);
  ASSERT_TRUE(under.ok()) << under.status().ToString();
  EXPECT_FALSE(under->cancel);

  auto over = Beat(train, 9.25);
  ASSERT_TRUE(over.ok()) << over.status().ToString();
  EXPECT_TRUE(over->cancel);
  EXPECT_TRUE(over->withdrew);
  EXPECT_NE(over->reason.find("used 11 s of its 10 s compute limit"), std::string::npos)
      << over->reason;

  const v1::Job job = MustGetJob("j");
  EXPECT_EQ(job.state(), v1::JOB_STATE_WITHDRAWN);
  EXPECT_EQ(job.reason(), over->reason);
  EXPECT_EQ(job.tasks(2).state(), v1::TASK_STATE_CANCELLED) << "quantize never runs";
  EXPECT_EQ(job.tasks(1).checkpoint_sha256(), checkpoint) << "the checkpoint stays";
  EXPECT_EQ(MustGetProject().active_jobs(), 0u);

  // The worker keeps being told to stop; its last report is still charged.
  auto again = Beat(train, 9.5);
  ASSERT_TRUE(again.ok());
  EXPECT_TRUE(again->cancel);
  EXPECT_FALSE(again->withdrew);
  auto done = store_->CompleteTask(kProject, train.spec.task_id(), train.fencing_token,
                                   {.succeeded = false, .error = "stopped", .compute_s = 9.75},
                                   clock_.NowMs());
  ASSERT_TRUE(done.ok()) << done.status().ToString();
  EXPECT_EQ(done->job_state, v1::JOB_STATE_WITHDRAWN);
  EXPECT_DOUBLE_EQ(MustGetJob("j").compute_s(), 11.75);

  auto events = store_->ReadEvents(kProject, "j", "", 0, 1000);
  ASSERT_TRUE(events.ok());
  bool withdrawn_event = false;
  for (const v1::Event& event : events->events) {
    withdrawn_event |= event.job_state() == v1::JOB_STATE_WITHDRAWN &&
                       event.message().find("compute limit") != std::string::npos;
  }
  EXPECT_TRUE(withdrawn_event);
}

// The limit applies as set now: lowering it withdraws a running job that
// has already used more at its next heartbeat.
TEST_F(ComputeLimitsStoreTest, LoweringTheLimitWithdrawsARunningJob) {
  MustCreate("j");
  const LeaseGrant features = MustLease(v1::TASK_KIND_GENERATE_FEATURES);
  auto before = Beat(features, 30);
  ASSERT_TRUE(before.ok()) << before.status().ToString();
  EXPECT_FALSE(before->cancel);
  MustSet(Settings(20));
  auto answer = Beat(features, 31);
  ASSERT_TRUE(answer.ok());
  EXPECT_TRUE(answer->withdrew);
  EXPECT_EQ(MustGetJob("j").state(), v1::JOB_STATE_WITHDRAWN);
  EXPECT_NE(answer->reason.find("used 31 s of its 20 s"), std::string::npos) << answer->reason;
}

// Rounding never reads as if the job were within its limit.
TEST_F(ComputeLimitsStoreTest, WithdrawalReasonShowsDecimalsJustPastTheLimit) {
  MustSet(Settings(20));
  MustCreate("j");
  auto answer = Beat(MustLease(v1::TASK_KIND_GENERATE_FEATURES), 20.25);
  ASSERT_TRUE(answer.ok());
  EXPECT_NE(answer->reason.find("used 20.25 s of its 20 s"), std::string::npos) << answer->reason;
}

// A task that finishes its work past the limit keeps its output; the job is
// withdrawn and what was still to run is cancelled.
TEST_F(ComputeLimitsStoreTest, CompletionPastTheLimitKeepsItsOutputAndWithdraws) {
  MustSet(Settings(10));
  MustCreate("j");
  auto effect = Complete(MustLease(v1::TASK_KIND_GENERATE_FEATURES), 12);
  ASSERT_TRUE(effect.ok()) << effect.status().ToString();
  EXPECT_TRUE(effect->withdrew);
  EXPECT_EQ(effect->task_state, v1::TASK_STATE_SUCCEEDED);
  EXPECT_EQ(effect->job_state, v1::JOB_STATE_WITHDRAWN);
  const v1::Job job = MustGetJob("j");
  EXPECT_EQ(job.tasks(1).state(), v1::TASK_STATE_CANCELLED);
  auto none = store_->LeaseTask("w2", {}, clock_.NowMs(), kTtlMs);
  ASSERT_TRUE(none.ok());
  EXPECT_FALSE(none->has_value());
}

TEST_F(ComputeLimitsStoreTest, BudgetRefusesUntilThePeriodResets) {
  MustSet(Settings(0, 100, 3600));
  MustCreate("j1", 50);
  ASSERT_TRUE(Complete(MustLease(v1::TASK_KIND_GENERATE_FEATURES), 80).ok());

  // 80 used + 30 estimated > 100.
  Status refused = store_->CreateJob(MakeJob("j2", 30), Pipeline("j2"), clock_.NowMs());
  EXPECT_EQ(refused.code(), StatusCode::kFailedPrecondition);
  EXPECT_NE(refused.message().find("used 80 s of its 100 s compute budget"), std::string::npos)
      << refused.ToString();
  EXPECT_NE(refused.message().find("resets at"), std::string::npos) << refused.ToString();
  EXPECT_EQ(store_->GetJob(kProject, "j2").status().code(), StatusCode::kNotFound);
  MustCreate("j3", 20);  // fits: 80 + 20 <= 100

  clock_.AdvanceMs(3600 * 1000);
  const v1::Project project = MustGetProject();
  EXPECT_EQ(project.period_used_s(), 0);
  EXPECT_EQ(project.total_used_s(), 80);
  MustCreate("j2", 30);
}

// The coordinator keeps nothing: a new Store on the same Redis (as after a
// coordinator restart) sees the same usage and goes on charging it.
TEST_F(ComputeLimitsStoreTest, UsageSurvivesACoordinatorRestart) {
  MustSet(Settings(0, 1000, 3600));
  MustCreate("j");
  const LeaseGrant grant = MustLease(v1::TASK_KIND_GENERATE_FEATURES);
  ASSERT_TRUE(Beat(grant, 40).ok());
  store_.reset();

  store_ = Connect();
  ASSERT_NE(store_, nullptr);
  EXPECT_EQ(MustGetProject().period_used_s(), 40);
  ASSERT_TRUE(Beat(grant, 45).ok()) << "the same attempt goes on";
  ASSERT_TRUE(Complete(grant, 46).ok());
  EXPECT_EQ(MustGetProject().period_used_s(), 46);
  EXPECT_EQ(MustGetJob("j").compute_s(), 46);
}

TEST_F(ComputeLimitsStoreTest, ConcurrentJobLimitCountsQueuedAndRunningJobs) {
  MustSet(Settings(0, 0, 0, 2));
  MustCreate("j1");
  MustCreate("j2");
  Status refused = store_->CreateJob(MakeJob("j3"), Pipeline("j3"), clock_.NowMs());
  EXPECT_EQ(refused.code(), StatusCode::kResourceExhausted);
  EXPECT_NE(refused.message().find("2 of its 2 concurrent jobs"), std::string::npos)
      << refused.ToString();
  EXPECT_EQ(MustGetProject().active_jobs(), 2u);

  ASSERT_TRUE(store_->CancelJob(kProject, "j1", "", clock_.NowMs()).ok());
  MustCreate("j3");
  EXPECT_EQ(store_->CreateJob(MakeJob("j4"), Pipeline("j4"), clock_.NowMs()).code(),
            StatusCode::kResourceExhausted);

  // A job that fails frees its place too.
  const LeaseGrant grant = MustLease(v1::TASK_KIND_GENERATE_FEATURES);
  ASSERT_TRUE(store_
                  ->CompleteTask(kProject, grant.spec.task_id(), grant.fencing_token,
                                 {.succeeded = false, .error = "broken"}, clock_.NowMs())
                  .ok());
  MustCreate("j4");
}

TEST_F(ComputeLimitsStoreTest, ProjectsAreChargedSeparatelyAndListed) {
  MustSet(Settings(100));
  v1::Project other = Settings(200);
  other.set_name("other");
  ASSERT_TRUE(store_->SetProject(other, clock_.NowMs()).ok());
  MustCreate("j");
  ASSERT_TRUE(Complete(MustLease(v1::TASK_KIND_GENERATE_FEATURES), 5).ok());

  auto projects = store_->ListProjects(clock_.NowMs());
  ASSERT_TRUE(projects.ok()) << projects.status().ToString();
  ASSERT_EQ(projects->size(), 2u);
  EXPECT_EQ((*projects)[0].name(), kProject);
  EXPECT_EQ((*projects)[0].period_used_s(), 5);
  EXPECT_EQ((*projects)[1].name(), "other");
  EXPECT_EQ((*projects)[1].period_used_s(), 0);
  EXPECT_EQ((*projects)[1].job_limit_s(), 200);
}

}  // namespace
}  // namespace impulse::coordinator
