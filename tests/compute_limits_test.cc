// Compute limits end to end (docs/COMPUTE.md) on a real local cluster,
// through impulse-client: refusal over the per-job limit, withdrawal of a
// running training job, the budget across a coordinator restart, the
// concurrent-job limit. Each test works in projects of its own; each test
// case brings its own cluster up, so the cheap checks share one case.
#include <gtest/gtest.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <future>
#include <nlohmann/json.hpp>
#include <sstream>
#include <thread>

#include "tests/support/local_cluster.h"

namespace impulse {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;
using testing::CommandResult;
using testing::LocalCluster;

// 30 epochs of 800 images: long enough to still be running when a test
// acts on it, and stopped (withdrawn, cancelled) long before it ends.
const char* const kLongTraining =
    "name: long\ninput: {width: 32, height: 32}\n"
    "processing: {block: image, color: grayscale}\n"
    "learning: {block: classification}\n"
    "training: {epochs: 30, batch_size: 32}\n";

class ComputeLimitsTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    dir_ = new testing::TempDir();
    // 1 000 Fashion-MNIST images: 100 per class to train, 20 to test.
    ASSERT_TRUE(testing::WriteFashionSubset("train", Data(), 100).ok());
    ASSERT_TRUE(testing::WriteFashionSubset("t10k", Data(), 20).ok());
    auto cluster = LocalCluster::Up("--workers 2 --threads 1 --lease-ttl-ms 3000");
    ASSERT_TRUE(cluster.ok()) << cluster.status().ToString();
    cluster_ = std::move(cluster).value().release();
  }

  static void TearDownTestSuite() {
    delete cluster_;
    delete dir_;
  }

  static CommandResult Client(const std::string& project, const std::string& args,
                              int timeout_s = 300) {
    return cluster_->Client("--project " + project + " " + args, timeout_s);
  }

  static json Json(const std::string& project, const std::string& args) {
    CommandResult run = Client(project, "--json " + args);
    EXPECT_EQ(run.exit_code, 0) << run.output;
    return run.exit_code == 0 ? json::parse(run.stdout_text) : json();
  }

  static std::string Data() { return dir_->path() + "/data"; }

  // The coordinator's /metrics once it holds `wanted` (bounded wait: some
  // gauges are refreshed every second).
  static std::string CoordinatorMetrics(const std::string& wanted) {
    std::string url;
    std::istringstream env(cluster_->Run("env").stdout_text);
    for (std::string line; std::getline(env, line);) {
      if (line.rfind("IMPULSE_COORDINATOR_METRICS=", 0) == 0) url = line.substr(line.find('=') + 1);
    }
    std::string text;
    for (int attempt = 0; attempt < 50 && text.find(wanted) == std::string::npos; ++attempt) {
      if (attempt > 0) std::this_thread::sleep_for(std::chrono::milliseconds(100));
      text = testing::RunCommand("curl -sf " + testing::ShellQuote(url), 10).stdout_text;
    }
    return text;
  }

  static std::string WriteFile(const std::string& name, const std::string& text) {
    const std::string path = dir_->path() + "/" + name;
    std::ofstream(path) << text;
    return path;
  }

  // Submits without waiting; the job's id.
  static std::string Submit(const std::string& project, const std::string& impulse) {
    CommandResult run = Client(project, "--json submit " + impulse + " --data " + Data());
    EXPECT_EQ(run.exit_code, 0) << run.output;
    return run.exit_code == 0 ? json::parse(run.stdout_text).value("id", "") : "";
  }

  // Polls (bounded) until the job's train task runs past `progress`.
  static bool WaitForTraining(const std::string& project, const std::string& job_id,
                              double progress) {
    const auto give_up = std::chrono::steady_clock::now() + std::chrono::seconds(180);
    while (std::chrono::steady_clock::now() < give_up) {
      const json job = Json(project, "status " + job_id);
      for (const json& task : job.value("tasks", json::array())) {
        if (task.value("kind", "") == "TASK_KIND_TRAIN" &&
            task.value("state", "") == "TASK_STATE_RUNNING" &&
            task.value("progress", 0.0) > progress) {
          return true;
        }
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(200));
    }
    return false;
  }

  static testing::TempDir* dir_;
  static LocalCluster* cluster_;
};

testing::TempDir* ComputeLimitsTest::dir_ = nullptr;
LocalCluster* ComputeLimitsTest::cluster_ = nullptr;

// Each refusal exits 2 with one line that says why and what to change.
TEST_F(ComputeLimitsTest, RefusalsOverALimitExitTwoNamingTheLimit) {
  ASSERT_EQ(Client("refuse", "project set --job-limit 1s").exit_code, 0);
  const std::string impulse = WriteFile("train.yaml", kLongTraining);
  CommandResult run = Client("refuse", "submit " + impulse + " --data " + Data());
  EXPECT_EQ(run.exit_code, 2) << run.output;
  EXPECT_NE(run.output.find("FAILED_PRECONDITION"), std::string::npos) << run.output;
  EXPECT_NE(run.output.find("s of compute exceeds the project's limit of 1 s per job"),
            std::string::npos)
      << run.output;
  EXPECT_NE(run.output.find("--job-limit"), std::string::npos) << "says what to change";

  // A malformed impulse is refused for what it is, before any limit.
  const std::string bad = WriteFile(
      "bad.yaml", "name: bad\ninput: {width: 32, height: 32}\nprocessing: {block: fft}\n");
  CommandResult malformed = Client("refuse", "submit " + bad + " --data " + Data());
  EXPECT_EQ(malformed.exit_code, 2) << malformed.output;
  EXPECT_NE(malformed.output.find("INVALID_ARGUMENT"), std::string::npos) << malformed.output;
  EXPECT_EQ(Json("refuse", "list")["jobs"].size(), 0u) << "nothing was queued";

  // At the concurrent-job limit: refused until one of the project's jobs ends.
  ASSERT_EQ(Client("busy", "project set --max-jobs 1").exit_code, 0);
  const std::string first = Submit("busy", impulse);
  ASSERT_FALSE(first.empty());

  CommandResult refused = Client("busy", "submit " + impulse + " --data " + Data());
  EXPECT_EQ(refused.exit_code, 2) << refused.output;
  EXPECT_NE(refused.output.find("RESOURCE_EXHAUSTED"), std::string::npos) << refused.output;
  EXPECT_NE(refused.output.find("1 of its 1 concurrent jobs"), std::string::npos) << refused.output;

  ASSERT_EQ(Client("busy", "cancel " + first).exit_code, 0);
  const std::string second = Submit("busy", impulse);
  EXPECT_FALSE(second.empty());
  if (!second.empty()) Client("busy", "cancel " + second);
}

// The limit is lowered below what a running training job has used: the job
// is withdrawn at its next heartbeat, `submit --wait` exits 1 with the
// reason, and the checkpoint and the epochs so far can still be fetched.
TEST_F(ComputeLimitsTest, RunningJobPastItsLimitIsWithdrawnAndKeepsItsCheckpoint) {
  const std::string impulse = WriteFile("withdraw.yaml", kLongTraining);
  auto waited = std::async(std::launch::async, [&] {
    return Client("withdraw", "submit " + impulse + " --data " + Data() + " --wait", 400);
  });
  std::string job_id;
  const auto give_up = std::chrono::steady_clock::now() + std::chrono::seconds(60);
  while (job_id.empty() && std::chrono::steady_clock::now() < give_up) {
    const json jobs = Json("withdraw", "list").value("jobs", json::array());
    if (!jobs.empty()) job_id = jobs[0].value("id", "");
    std::this_thread::sleep_for(std::chrono::milliseconds(200));
  }
  ASSERT_FALSE(job_id.empty()) << "the job never appeared";
  ASSERT_TRUE(WaitForTraining("withdraw", job_id, 0.07)) << "training never passed epoch 2";
  std::this_thread::sleep_for(
      std::chrono::milliseconds(1500));  // a heartbeat carries the checkpoint
  ASSERT_EQ(Client("withdraw", "project set --job-limit 1s").exit_code, 0);

  CommandResult run = waited.get();
  EXPECT_EQ(run.exit_code, 1) << run.output;
  EXPECT_NE(run.output.find("WITHDRAWN: used"), std::string::npos) << run.output;
  EXPECT_NE(run.output.find("s of its 1 s compute limit per job"), std::string::npos) << run.output;

  const std::string out = dir_->path() + "/out-withdrawn";
  CommandResult fetched = Client("withdraw", "fetch " + job_id + " --out " + out);
  ASSERT_EQ(fetched.exit_code, 0) << fetched.output;
  EXPECT_GT(fs::file_size(out + "/checkpoint.pt"), 1000u);
  std::ifstream metrics_file(out + "/metrics.json");
  const json metrics = json::parse(metrics_file);
  EXPECT_EQ(metrics["job"]["state"], "WITHDRAWN");
  EXPECT_GE(metrics["training_log"].size(), 2u);
  EXPECT_LT(metrics["training_log"].size(), 30u);
  EXPECT_GT(metrics["compute"]["used_s"].get<double>(), 1.0);

  const std::string withdrawn = "impulse_jobs_withdrawn_total{project=\"withdraw\"} 1";
  const std::string coordinator = CoordinatorMetrics(withdrawn);
  EXPECT_NE(coordinator.find(withdrawn), std::string::npos) << coordinator;
  EXPECT_NE(coordinator.find("impulse_project_compute_seconds_total{project=\"withdraw\"}"),
            std::string::npos);
}

// Usage lives in Redis: a restarted coordinator reports the same, and
// refuses what the rest of the budget cannot cover.
TEST_F(ComputeLimitsTest, BudgetIsKeptAcrossACoordinatorRestart) {
  ASSERT_EQ(Client("budget", "project set --budget 1h --period 1d").exit_code, 0);
  const std::string features = WriteFile(
      "budget-a.yaml", "name: a\ninput: {width: 32, height: 32}\nprocessing: {block: image}\n");
  CommandResult run = Client("budget", "features " + features + " --data " + Data() + " --out " +
                                           dir_->path() + "/out-budget");
  ASSERT_EQ(run.exit_code, 0) << run.output;
  const double used_s = Json("budget", "project show").value("period_used_s", 0.0);
  EXPECT_GT(used_s, 0.5);

  for (const char* step : {"kill-coordinator", "start-coordinator"}) {
    CommandResult result = cluster_->Run(step);
    ASSERT_EQ(result.exit_code, 0) << step << ": " << result.output;
  }
  const json project = Json("budget", "project show");
  EXPECT_DOUBLE_EQ(project.value("period_used_s", 0.0), used_s);
  EXPECT_EQ(project.value("period_budget_s", 0.0), 3600);

  ASSERT_EQ(Client("budget", "project set --budget 1s").exit_code, 0);
  const std::string other = WriteFile(
      "budget-b.yaml", "name: b\ninput: {width: 24, height: 24}\nprocessing: {block: image}\n");
  CommandResult refused = Client("budget", "submit " + other + " --data " + Data());
  EXPECT_EQ(refused.exit_code, 2) << refused.output;
  EXPECT_NE(refused.output.find("s of its 1 s compute budget this period"), std::string::npos)
      << refused.output;
  EXPECT_NE(refused.output.find("resets at"), std::string::npos) << refused.output;

  // The restarted coordinator's metrics: usage read back from Redis (the
  // gauges follow within a second), and the refusal counted by reason.
  const std::string remaining = "impulse_project_compute_remaining_seconds{project=\"budget\"} 0";
  const std::string metrics = CoordinatorMetrics(remaining);
  EXPECT_NE(metrics.find(remaining), std::string::npos) << metrics;
  EXPECT_NE(metrics.find("impulse_project_compute_used_seconds{project=\"budget\"}"),
            std::string::npos);
  EXPECT_NE(metrics.find("impulse_jobs_refused_total{project=\"budget\",reason=\"budget\"} 1"),
            std::string::npos);
}

}  // namespace
}  // namespace impulse
