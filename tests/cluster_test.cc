// End-to-end tests against a real local cluster: redis-server, the
// coordinator and two workers as processes (deploy/local-cluster), driven
// through impulse-client exactly as a user would.
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>
#include <opencv2/imgcodecs.hpp>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <thread>

#include "impulse/idx.h"
#include "impulse/model/layer_graph.h"
#include "tests/support/model_fixtures.h"
#include "tests/support/command.h"
#include "tests/support/temp_dir.h"

namespace impulse {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;
using testing::CommandResult;
using testing::RunCommand;
using testing::ShellQuote;

const std::string kSource = IMPULSE_SOURCE_DIR;
const std::string kBuild = IMPULSE_BUILD_DIR;
const std::string kFashion = "/usr/share/datasets/fashion-mnist";
const char* const kBigImpulse =
    "name: big\ninput: {width: 64, height: 64, resize: fit-longest}\n"
    "processing: {block: image, color: grayscale}\n";
const char* const kClasses[] = {"T-shirt_top", "Trouser", "Pullover", "Dress", "Coat",
                                "Sandal",      "Shirt",   "Sneaker",  "Bag",   "Ankle_boot"};

// Writes `per_class` PNGs of each class from one IDX pair into dir/<class>/.
void WritePngs(const std::string& images_path, const std::string& labels_path,
               const std::string& dir, int per_class) {
  auto images = ReadIdxImages(images_path);
  auto labels = ReadIdxLabels(labels_path);
  ASSERT_TRUE(images.ok() && labels.ok());
  std::vector<int> written(10, 0);
  for (uint32_t i = 0; i < images->count; ++i) {
    const int label = (*labels)[i];
    if (written[label] >= per_class) continue;
    const fs::path folder = fs::path(dir) / kClasses[label];
    fs::create_directories(folder);
    cv::Mat image(static_cast<int>(images->rows), static_cast<int>(images->cols), CV_8UC1,
                  images->pixels.data() + static_cast<size_t>(i) * images->rows * images->cols);
    ASSERT_TRUE(cv::imwrite((folder / (std::to_string(i) + ".png")).string(), image));
    ++written[label];
  }
}

// Writes the first `per_class` images of each class of one IDX pair as an
// uncompressed IDX pair named PREFIX-*-ubyte into dir.
void WriteIdxSubset(const std::string& prefix, const std::string& dir, int per_class) {
  auto images = ReadIdxImages(kFashion + "/" + prefix + "-images-idx3-ubyte.gz");
  auto labels = ReadIdxLabels(kFashion + "/" + prefix + "-labels-idx1-ubyte.gz");
  ASSERT_TRUE(images.ok() && labels.ok());
  std::vector<int> taken(10, 0);
  std::string pixels, kept_labels;
  const size_t size = static_cast<size_t>(images->rows) * images->cols;
  for (uint32_t i = 0; i < images->count; ++i) {
    if (taken[(*labels)[i]]++ >= per_class) continue;
    pixels.append(reinterpret_cast<const char*>(images->pixels.data()) + i * size, size);
    kept_labels.push_back(static_cast<char>((*labels)[i]));
  }
  auto be32 = [](uint32_t v) {
    return std::string{static_cast<char>(v >> 24), static_cast<char>(v >> 16),
                       static_cast<char>(v >> 8), static_cast<char>(v)};
  };
  const auto count = static_cast<uint32_t>(kept_labels.size());
  fs::create_directories(dir);
  std::ofstream(dir + "/" + prefix + "-images-idx3-ubyte", std::ios::binary)
      << be32(0x803) << be32(count) << be32(images->rows) << be32(images->cols) << pixels;
  std::ofstream(dir + "/" + prefix + "-labels-idx1-ubyte", std::ios::binary)
      << be32(0x801) << be32(count) << kept_labels;
}

class ClusterTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    state_ = new testing::TempDir();
    // 1 000 Fashion-MNIST images as PNG folders: 800 training, 200 testing.
    WritePngs(kFashion + "/train-images-idx3-ubyte.gz", kFashion + "/train-labels-idx1-ubyte.gz",
              state_->path() + "/data/training", 80);
    WritePngs(kFashion + "/t10k-images-idx3-ubyte.gz", kFashion + "/t10k-labels-idx1-ubyte.gz",
              state_->path() + "/data/testing", 20);
    CommandResult up = RunCommand(Cluster("up --workers 2 --threads 1 --lease-ttl-ms 3000"), 120);
    ASSERT_EQ(up.exit_code, 0) << up.output;
    std::istringstream lines(up.stdout_text);
    for (std::string line; std::getline(lines, line);) {
      if (!line.empty()) address_ = line;
    }
    ASSERT_FALSE(address_.empty()) << up.output;
  }

  static void TearDownTestSuite() {
    RunCommand(Cluster("down --purge"), 60);
    delete state_;
  }

  static std::string Cluster(const std::string& args) {
    return "BUILD_DIR=" + ShellQuote(kBuild) + " " + ShellQuote(kSource + "/deploy/local-cluster") +
           " " + args + " --state-dir " + ShellQuote(state_->path() + "/cluster");
  }

  static CommandResult Client(const std::string& args, int timeout_s = 300) {
    return RunCommand(ShellQuote(kBuild + "/client/impulse-client") + " --coordinator " +
                          address_ + " " + args,
                      timeout_s);
  }

  static std::string Data() { return state_->path() + "/data"; }
  static std::string Example(const std::string& name) { return kSource + "/examples/" + name; }

  static std::string WriteFile(const std::string& name, const std::string& text) {
    const std::string path = state_->path() + "/" + name;
    fs::create_directories(fs::path(path).parent_path());
    std::ofstream(path) << text;
    return path;
  }

  static json ReadJson(const std::string& path) {
    std::ifstream in(path);
    return json::parse(in);
  }

  static testing::TempDir* state_;
  static std::string address_;
};

testing::TempDir* ClusterTest::state_ = nullptr;
std::string ClusterTest::address_;

TEST_F(ClusterTest, GeneratesFeaturesOfPngFoldersAndFetchesTheExplorer) {
  const std::string out = state_->path() + "/out-features";
  CommandResult run = Client("features " + Example("fashion-mnist-features.yaml") + " --data " +
                             Data() + " --out " + out);
  ASSERT_EQ(run.exit_code, 0) << run.output;

  json metrics = ReadJson(out + "/metrics.json");
  EXPECT_EQ(metrics["job"]["state"], "SUCCEEDED");
  EXPECT_EQ(metrics["features"]["samples"], 1000);
  EXPECT_EQ(metrics["features"]["skipped"], 0);
  EXPECT_EQ(metrics["labels"].size(), 10u);
  EXPECT_GT(fs::file_size(out + "/feature_explorer.png"), 1000u);
  EXPECT_GT(fs::file_size(out + "/preview.png"), 1000u);
  std::ifstream csv(out + "/feature_explorer.csv");
  std::string header;
  std::getline(csv, header);
  EXPECT_EQ(header, "x,y,label,sample,split");
  int rows = 0;
  for (std::string line; std::getline(csv, line);) rows += !line.empty();
  EXPECT_EQ(rows, 1000);

  // The same dataset and config again: nothing is uploaded or recomputed.
  const std::string again = state_->path() + "/out-again";
  CommandResult second = Client("features " + Example("fashion-mnist-features.yaml") +
                                " --data " + Data() + " --out " + again);
  ASSERT_EQ(second.exit_code, 0) << second.output;
  EXPECT_NE(second.output.find("sent 0 files"), std::string::npos) << second.output;
  EXPECT_EQ(ReadJson(again + "/metrics.json")["features"]["reused"], true);
  EXPECT_TRUE(fs::exists(again + "/feature_explorer.png"));
}

TEST_F(ClusterTest, UnreadableImageIsSkippedByName) {
  const std::string data = state_->path() + "/broken-data";
  fs::copy(Data(), data, fs::copy_options::recursive);
  WriteFile("broken-data/training/Trouser/broken.png", "this is not a PNG");
  const std::string out = state_->path() + "/out-broken";
  CommandResult run = Client("features " + Example("fashion-mnist-features.yaml") + " --data " +
                             data + " --out " + out);
  ASSERT_EQ(run.exit_code, 0) << run.output;
  json metrics = ReadJson(out + "/metrics.json");
  EXPECT_EQ(metrics["features"]["samples"], 1000);
  EXPECT_EQ(metrics["features"]["skipped"], 1);
  EXPECT_NE(metrics["features"]["skipped_files"].dump().find("broken.png"), std::string::npos);
}

TEST_F(ClusterTest, MalformedImpulseIsRefusedNamingTheField) {
  const std::string impulse = WriteFile(
      "bad.yaml", "name: bad\ninput: {width: 32, height: 32}\nprocessing: {block: fft}\n");
  CommandResult run = Client("features " + impulse + " --data " + Data() + " --out " +
                             state_->path() + "/never");
  EXPECT_EQ(run.exit_code, 2) << run.output;
  EXPECT_NE(run.output.find("processing.block"), std::string::npos) << run.output;
  EXPECT_FALSE(fs::exists(state_->path() + "/never/metrics.json"));
}

TEST_F(ClusterTest, SingleClassDatasetIsRefused) {
  const std::string data = state_->path() + "/one-class";
  fs::create_directories(data);
  fs::copy(Data() + "/training/Bag", data + "/Bag", fs::copy_options::recursive);
  CommandResult run = Client("features " + Example("fashion-mnist-features.yaml") + " --data " +
                             data + " --out " + state_->path() + "/never");
  EXPECT_EQ(run.exit_code, 2) << run.output;
  EXPECT_NE(run.output.find("class"), std::string::npos) << run.output;
}

TEST_F(ClusterTest, UnreachableCoordinatorExitsWithThree) {
  CommandResult run = RunCommand(ShellQuote(kBuild + "/client/impulse-client") +
                                     " --coordinator 127.0.0.1:1 list",
                                 60);
  EXPECT_EQ(run.exit_code, 3) << run.output;
}

TEST_F(ClusterTest, ListsBothWorkers) {
  CommandResult run = Client("--json workers");
  ASSERT_EQ(run.exit_code, 0) << run.output;
  json workers = json::parse(run.stdout_text);
  EXPECT_EQ(workers["workers"].size(), 2u) << run.stdout_text;
}

// Submits a features job over the whole Fashion-MNIST set (a few seconds of
// work) and returns its id once a worker runs it.
std::string SubmitBigJobAndWaitUntilRunning(const std::function<CommandResult(const std::string&)>& client,
                                            const std::string& impulse, std::string* worker) {
  CommandResult submitted = client("--json submit " + impulse + " --data " + kFashion);
  EXPECT_EQ(submitted.exit_code, 0) << submitted.output;
  if (submitted.exit_code != 0) return "";
  const std::string job_id = json::parse(submitted.stdout_text)["id"];
  const auto give_up = std::chrono::steady_clock::now() + std::chrono::seconds(120);
  while (worker->empty() && std::chrono::steady_clock::now() < give_up) {
    json job = json::parse(client("--json status " + job_id).stdout_text);
    const json& task = job["tasks"][0];
    if (task.value("state", "") == "TASK_STATE_RUNNING") *worker = task.value("worker_id", "");
    if (worker->empty()) std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  return job_id;
}

// A worker killed with SIGKILL in the middle of a task: its lease lapses,
// the task is requeued with attempt 2 and finishes on the other worker.
TEST_F(ClusterTest, TaskOfKilledWorkerFinishesOnAnother) {
  const std::string impulse = WriteFile("big.yaml", kBigImpulse);
  std::string victim;
  const std::string job_id =
      SubmitBigJobAndWaitUntilRunning([](const std::string& a) { return Client(a); }, impulse, &victim);
  ASSERT_EQ(victim.rfind("local-worker-", 0), 0u) << "never saw the task running: " << victim;
  const std::string index = victim.substr(std::string("local-worker-").size());
  CommandResult killed = RunCommand(Cluster("kill-worker " + index), 30);
  ASSERT_EQ(killed.exit_code, 0) << killed.output;

  CommandResult watched = Client("--json watch " + job_id, 400);
  EXPECT_EQ(watched.exit_code, 0) << watched.output;
  json job = json::parse(Client("--json status " + job_id).stdout_text);
  EXPECT_EQ(job["state"], "JOB_STATE_SUCCEEDED");
  EXPECT_EQ(job["tasks"][0]["attempt"], 2);
  EXPECT_NE(job["tasks"][0]["worker_id"], victim);
  RunCommand(Cluster("start-worker " + index), 60);
}

}  // namespace
}  // namespace impulse

namespace impulse {
namespace {

// The coordinator and Redis are killed with SIGKILL and restarted while a
// job runs: the job still finishes, and its event stream, read from the
// start, still holds the job's first and last state changes.
TEST_F(ClusterTest, JobSurvivesCoordinatorAndRedisRestarts) {
  // Another input size than the other tests: features are not reused.
  const std::string impulse = WriteFile(
      "restart.yaml",
      "name: restart\ninput: {width: 60, height: 60, resize: fit-longest}\n"
      "processing: {block: image, color: grayscale}\n");
  std::string worker;
  const std::string job_id =
      SubmitBigJobAndWaitUntilRunning([](const std::string& a) { return Client(a); }, impulse, &worker);
  ASSERT_FALSE(worker.empty());
  for (const char* step : {"kill-coordinator", "start-coordinator", "kill-redis", "start-redis"}) {
    CommandResult result = RunCommand(Cluster(step), 60);
    ASSERT_EQ(result.exit_code, 0) << step << ": " << result.output;
  }
  CommandResult watched = Client("--json watch " + job_id, 400);
  EXPECT_EQ(watched.exit_code, 0) << watched.output;
  EXPECT_NE(watched.stdout_text.find("JOB_STATE_QUEUED"), std::string::npos) << watched.stdout_text;
  EXPECT_NE(watched.stdout_text.find("JOB_STATE_SUCCEEDED"), std::string::npos);
}

}  // namespace
}  // namespace impulse

namespace impulse {
namespace {

const char* const kTrainImpulse =
    "name: small-train\ninput: {width: 32, height: 32}\n"
    "processing: {block: image, color: grayscale}\n"
    "learning: {block: classification}\n";

TEST_F(ClusterTest, TrainsAndWritesFloat32AndInt8Results) {
  const std::string impulse = WriteFile(
      "train.yaml", std::string(kTrainImpulse) + "training: {epochs: 3, batch_size: 32}\n");
  const std::string out = state_->path() + "/out-train";
  CommandResult run = Client("submit " + impulse + " --data " + Data() + " --wait --out " + out, 600);
  ASSERT_EQ(run.exit_code, 0) << run.output;
  EXPECT_NE(run.output.find("test class"), std::string::npos) << "the per-class table";

  json metrics = ReadJson(out + "/metrics.json");
  for (const char* split : {"validation", "test"}) {
    const json& m = metrics["float32"][split];
    EXPECT_GT(m["accuracy"].get<double>(), 0.5) << split;  // 10 classes: chance is 0.1
    EXPECT_LE(m["accuracy"].get<double>(), 1.0);
    EXPECT_GT(m["loss"].get<double>(), 0.0);
    ASSERT_EQ(m["confusion_matrix"].size(), 10u);
  }
  uint64_t test_total = 0;
  for (const auto& row : metrics["float32"]["test"]["confusion_matrix"]) {
    for (const auto& count : row) test_total += count.get<uint64_t>();
  }
  EXPECT_EQ(test_total, 200u) << "every test image is counted once";
  ASSERT_EQ(metrics["labels"].size(), 10u);
  EXPECT_NE(metrics["labels"].dump().find("Trouser"), std::string::npos);
  for (const char* file : {"model_f32.onnx", "confusion_matrix_f32.png", "training_curves.png",
                           "feature_explorer.png"}) {
    EXPECT_GT(fs::file_size(out + "/" + file), 1000u) << file;
  }

  // int8 beside float32: the same metrics, the method, the C library in its
  // subfolder.
  EXPECT_NE(run.output.find("  int8 "), std::string::npos) << "the int8 row";
  for (const char* split : {"validation", "test"}) {
    const json& f32 = metrics["float32"][split];
    const json& i8 = metrics["int8"][split];
    EXPECT_NEAR(i8["accuracy"].get<double>(), f32["accuracy"].get<double>(), 0.05) << split;
    ASSERT_EQ(i8["confusion_matrix"].size(), 10u);
    EXPECT_EQ(i8["per_class"].size(), 10u);
  }
  EXPECT_TRUE(metrics["quantization_method"].is_string());
  for (const char* file : {"model_i8.onnx", "confusion_matrix_i8.png", "model_i8/model.h",
                           "model_i8/model.c"}) {
    EXPECT_GT(fs::file_size(out + "/" + file), 1000u) << file;
  }
}

// A worker killed during training: the requeued attempt resumes from the
// last checkpoint the dead worker reported instead of starting over.
TEST_F(ClusterTest, KilledTrainingResumesFromItsCheckpoint) {
  const std::string data = state_->path() + "/idx-5000";
  WriteIdxSubset("train", data, 500);
  WriteIdxSubset("t10k", data, 100);
  const std::string impulse = WriteFile(
      "resume.yaml", std::string(kTrainImpulse) + "training: {epochs: 6, batch_size: 64}\n");
  CommandResult submitted = Client("--json submit " + impulse + " --data " + data);
  ASSERT_EQ(submitted.exit_code, 0) << submitted.output;
  const std::string job_id = json::parse(submitted.stdout_text)["id"];

  // Wait until the train task is past its second epoch, then for one more
  // heartbeat to carry the checkpoint.
  std::string victim;
  const auto give_up = std::chrono::steady_clock::now() + std::chrono::seconds(300);
  while (victim.empty() && std::chrono::steady_clock::now() < give_up) {
    json job = json::parse(Client("--json status " + job_id).stdout_text);
    for (const json& task : job["tasks"]) {
      if (task.value("kind", "") == "TASK_KIND_TRAIN" &&
          task.value("state", "") == "TASK_STATE_RUNNING" && task.value("progress", 0.0) > 0.4) {
        victim = task.value("worker_id", "");
      }
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(200));
  }
  ASSERT_EQ(victim.rfind("local-worker-", 0), 0u) << "never saw training pass epoch 2";
  std::this_thread::sleep_for(std::chrono::milliseconds(1500));
  CommandResult killed =
      RunCommand(Cluster("kill-worker " + victim.substr(std::string("local-worker-").size())), 30);
  ASSERT_EQ(killed.exit_code, 0) << killed.output;

  CommandResult watched = Client("watch " + job_id, 600);
  EXPECT_EQ(watched.exit_code, 0) << watched.output;
  EXPECT_NE(watched.output.find("resumed from the checkpoint after epoch"), std::string::npos)
      << watched.output;
  json job = json::parse(Client("--json status " + job_id).stdout_text);
  EXPECT_EQ(job["state"], "JOB_STATE_SUCCEEDED");
  EXPECT_EQ(job["results"]["training_log"].size(), 6u);
  RunCommand(Cluster("start-worker " + victim.substr(std::string("local-worker-").size())), 60);
}

}  // namespace
}  // namespace impulse

namespace impulse {
namespace {

// Weights that do not fit the backbone are refused at submit, naming the
// tensor and both shapes; nothing is queued.
TEST_F(ClusterTest, WeightsOfAnotherWidthAreRefusedAtSubmit) {
  auto other = model::BuildMobileNetV2(0.5f, 1, 32, 32, 10, {});
  ASSERT_TRUE(other.ok()) << other.status().ToString();
  testing::FillRandomWeights(*other, 7);
  const std::string weights = WriteFile("alpha-0.5.weights", other->model().SerializeAsString());
  const std::string impulse = WriteFile(
      "transfer.yaml",
      "name: transfer\ninput: {width: 32, height: 32}\n"
      "processing: {block: image, color: grayscale}\n"
      "learning: {block: transfer, backbone: mobilenet_v2, alpha: 0.35, weights: " + weights +
          "}\ntraining: {epochs: 1}\n");
  CommandResult run = Client("submit " + impulse + " --data " + Data());
  EXPECT_EQ(run.exit_code, 2) << run.output;
  EXPECT_NE(run.output.find("learning.weights"), std::string::npos) << run.output;
  EXPECT_NE(run.output.find("shape"), std::string::npos) << run.output;

  const std::string garbage = WriteFile("garbage.weights", "not a model");
  const std::string impulse2 = WriteFile(
      "transfer2.yaml",
      "name: transfer\ninput: {width: 32, height: 32}\n"
      "processing: {block: image, color: grayscale}\n"
      "learning: {block: transfer, weights: " + garbage + "}\ntraining: {epochs: 1}\n");
  CommandResult run2 = Client("submit " + impulse2 + " --data " + Data());
  EXPECT_EQ(run2.exit_code, 2) << run2.output;
  EXPECT_NE(run2.output.find("not a weights file"), std::string::npos) << run2.output;

  CommandResult unknown = Client("submit " + WriteFile("transfer3.yaml",
      "name: t\ninput: {width: 32, height: 32}\nprocessing: {block: image}\n"
      "learning: {block: transfer, weights: no-such-weights}\n") + " --data " + Data());
  EXPECT_EQ(unknown.exit_code, 2) << unknown.output;
  EXPECT_NE(unknown.output.find("no-such-weights"), std::string::npos) << unknown.output;
}

}  // namespace
}  // namespace impulse
