#include "worker/training/train.h"

#include <torch/torch.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <random>

#include "impulse/impulse_spec.h"
#include "impulse/model/layer_graph.h"
#include "worker/features/feature_matrix.h"
#include "worker/training/graph_module.h"
#include "worker/training/rows.h"
#include "worker/training/train_step.h"

namespace impulse::worker::training {
namespace {

namespace fs = std::filesystem;
using features::FeatureMatrix;
using Clock = std::chrono::steady_clock;

constexpr double kProgressEveryS = 3.0;
constexpr int64_t kEvalBatch = 256;
constexpr double kSgdMomentum = 0.9;
// Generator streams (MixSeed's second argument), one per purpose.
constexpr uint64_t kStreamInit = 1;
constexpr uint64_t kStreamTorchEpoch = 1000;    // + epoch
constexpr uint64_t kStreamShuffleEpoch = 2000;  // + epoch

struct Settings {
  uint32_t epochs = 0;
  double learning_rate = 0;
  uint32_t batch_size = 0;
  double validation_split = 0;
  bool augmentation = false;
  uint64_t seed = 0;
  bool sgd = false;
  uint32_t lr_step_epochs = 0;
  double lr_step_gamma = 0;
  bool transfer = false;
  bool pretrained = false;  // a weights input was given
  uint32_t frozen_epochs = 0;
  bool fine_tune = false;
  double fine_tune_learning_rate = 0;
};

Settings ReadSettings(const v1::Impulse& impulse, bool pretrained) {
  const v1::TrainingSettings& t = impulse.training();
  const v1::LearningBlock& l = impulse.learning();
  Settings s;
  s.epochs = t.epochs();
  s.learning_rate = t.learning_rate();
  s.batch_size = t.batch_size();
  s.validation_split = t.validation_split();
  s.augmentation = t.augmentation();
  s.seed = t.seed();
  s.sgd = t.optimizer() == v1::OPTIMIZER_SGD;
  s.lr_step_epochs = t.lr_step_epochs();
  s.lr_step_gamma = t.lr_step_gamma();
  s.transfer = l.block() == v1::LEARNING_KIND_TRANSFER;
  s.pretrained = pretrained;
  s.frozen_epochs = s.transfer ? std::min(l.frozen_epochs(), s.epochs) : 0;
  s.fine_tune = s.transfer && l.fine_tune();
  s.fine_tune_learning_rate = l.fine_tune_learning_rate();
  return s;
}

// Frozen in epoch e (1-based)? A backbone without pretrained weights is
// random: freezing it would keep noise, so it always trains.
bool BackboneFrozen(const Settings& s, uint32_t epoch) {
  if (!s.transfer || !s.pretrained) return false;
  return epoch <= s.frozen_epochs || !s.fine_tune;
}

double LearningRate(const Settings& s, uint32_t epoch) {
  double lr = s.learning_rate;
  if (s.pretrained && s.fine_tune && epoch > s.frozen_epochs && s.frozen_epochs > 0) {
    lr = s.fine_tune_learning_rate;
  }
  if (s.lr_step_epochs > 0) lr *= std::pow(s.lr_step_gamma, (epoch - 1) / s.lr_step_epochs);
  return lr;
}

struct LossAccuracy {
  double loss = 0;
  double accuracy = 0;
};

LossAccuracy Evaluate(GraphModule& module, const FeatureMatrix& fm,
                      const std::vector<uint64_t>& rows) {
  if (rows.empty()) return {};
  module->eval();
  torch::NoGradGuard no_grad;
  std::mt19937_64 unused;
  double loss_sum = 0;
  int64_t correct = 0;
  for (size_t start = 0; start < rows.size(); start += kEvalBatch) {
    const int64_t n = std::min<int64_t>(kEvalBatch, rows.size() - start);
    torch::Tensor x = MakeBatch(fm, rows.data() + start, n, false, unused);
    torch::Tensor y = BatchLabels(fm, rows.data() + start, n);
    torch::Tensor logits = module->forward(x);
    loss_sum +=
        torch::nn::functional::cross_entropy(
            logits, y, torch::nn::functional::CrossEntropyFuncOptions().reduction(torch::kSum))
            .item<double>();
    correct += logits.argmax(1).eq(y).sum().item<int64_t>();
  }
  return {loss_sum / rows.size(), static_cast<double>(correct) / rows.size()};
}

torch::Tensor BytesTensor(const std::string& bytes) {
  return torch::from_blob(const_cast<char*>(bytes.data()), {static_cast<int64_t>(bytes.size())},
                          torch::kUInt8)
      .clone();
}

std::string TensorBytes(const torch::Tensor& t) {
  return std::string(reinterpret_cast<const char*>(t.data_ptr<uint8_t>()),
                     static_cast<size_t>(t.numel()));
}

// What a checkpoint must have been made with to be resumed: the same
// learning block, training settings and inputs.
std::string Fingerprint(const v1::TaskSpec& spec) {
  // Built field by field: a proto map's serialization order is not fixed.
  std::string key = spec.impulse().learning().SerializeAsString() + "|" +
                    spec.impulse().training().SerializeAsString() + "|" +
                    spec.impulse().input().SerializeAsString() + "|" +
                    spec.impulse().processing().SerializeAsString();
  for (const char* name : {"features", "weights"}) {
    auto it = spec.inputs().find(name);
    key += std::string("|") + name + "=" + (it == spec.inputs().end() ? "" : it->second);
  }
  return key;
}

// The checkpoint archive: "model" (parameters and buffers by weight name),
// "optimizer", "epoch" (completed epochs), "log" (a v1::JobResults holding
// the training log so far), "fingerprint".
void SaveCheckpoint(const std::string& path, GraphModule& module, torch::optim::Optimizer& opt,
                    uint32_t epoch, const v1::JobResults& log, const std::string& fingerprint) {
  torch::serialize::OutputArchive archive;
  torch::serialize::OutputArchive model_archive;
  module->save(model_archive);
  archive.write("model", model_archive);
  torch::serialize::OutputArchive opt_archive;
  opt.save(opt_archive);
  archive.write("optimizer", opt_archive);
  archive.write("epoch", torch::tensor(static_cast<int64_t>(epoch)));
  archive.write("log", BytesTensor(log.SerializeAsString()));
  archive.write("fingerprint", BytesTensor(fingerprint));
  archive.save_to(path);
}

// Restores module, optimizer and log; returns the completed epoch count.
Result<uint32_t> LoadCheckpoint(const std::string& path, GraphModule& module,
                                torch::optim::Optimizer& opt, v1::JobResults* log,
                                const std::string& fingerprint) {
  torch::serialize::InputArchive archive;
  archive.load_from(path);
  torch::Tensor stored;
  archive.read("fingerprint", stored);
  if (TensorBytes(stored) != fingerprint) {
    return FailedPrecondition("the checkpoint was made with other settings or inputs");
  }
  torch::serialize::InputArchive model_archive;
  archive.read("model", model_archive);
  module->load(model_archive);
  torch::serialize::InputArchive opt_archive;
  archive.read("optimizer", opt_archive);
  opt.load(opt_archive);
  torch::Tensor epoch, log_bytes;
  archive.read("epoch", epoch);
  archive.read("log", log_bytes);
  if (!log->ParseFromString(TensorBytes(log_bytes))) {
    return FailedPrecondition("the checkpoint's training log does not parse");
  }
  return static_cast<uint32_t>(epoch.item<int64_t>());
}

void SetLearningRate(torch::optim::Optimizer& opt, double lr) {
  for (auto& group : opt.param_groups()) group.options().set_lr(lr);
}

Result<v1::Model> ReadModelFile(const std::string& path, const std::string& what) {
  std::ifstream in(path, std::ios::binary);
  v1::Model model;
  if (!in || !model.ParseFromIstream(&in)) {
    return InvalidArgument(what + ": not a serialized impulse.v1.Model (" + path + ")");
  }
  return model;
}

Status WriteModelFile(const v1::Model& model, const std::string& path) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  if (!out || !model.SerializeToOstream(&out) || !out.flush()) {
    return Internal("cannot write " + path);
  }
  return Status::Ok();
}

std::string Number(double value) {
  char text[32];
  std::snprintf(text, sizeof(text), "%g", value);
  return text;
}

Result<v1::TaskOutput> TrainUnguarded(const v1::TaskSpec& spec, TaskContext& ctx) {
  const v1::Impulse impulse = WithDefaults(spec.impulse());
  if (!impulse.has_learning() || impulse.learning().block() == v1::LEARNING_KIND_UNSPECIFIED) {
    return InvalidArgument("learning: the impulse has no learning block to train");
  }
  const Settings s = ReadSettings(impulse, spec.inputs().count("weights") > 0);
  torch::set_num_threads(std::max(1, ctx.Threads()));

  auto features_sha = spec.inputs().find("features");
  if (features_sha == spec.inputs().end()) {
    return FailedPrecondition("train: the task has no features input");
  }
  IMPULSE_ASSIGN_OR_RETURN(std::string features_path, ctx.BlobPath(features_sha->second));
  IMPULSE_ASSIGN_OR_RETURN(FeatureMatrix fm, FeatureMatrix::Open(features_path));
  const auto& shape = fm.shape();
  const uint32_t classes = static_cast<uint32_t>(shape.labels.size());

  IMPULSE_ASSIGN_OR_RETURN(model::LayerGraph graph, model::BuildGraph(impulse, classes));
  const auto input = graph.input_shape();
  if (input[0] != shape.channels || input[1] != shape.height || input[2] != shape.width) {
    return InvalidArgument("features: shape [" + std::to_string(shape.channels) + "," +
                           std::to_string(shape.height) + "," + std::to_string(shape.width) +
                           "] does not match the impulse's input " + model::ShapeString(input));
  }
  for (const auto& label : shape.labels) graph.mutable_model().add_labels(label);

  v1::TaskOutput output;
  v1::JobResults& results = *output.mutable_results();
  for (const auto& label : shape.labels) results.add_labels(label);

  if (auto weights = spec.inputs().find("weights"); weights != spec.inputs().end()) {
    IMPULSE_ASSIGN_OR_RETURN(std::string path, ctx.BlobPath(weights->second));
    IMPULSE_ASSIGN_OR_RETURN(v1::Model file, ReadModelFile(path, "learning.weights"));
    auto copied = graph.LoadWeights(file, /*backbone_only=*/s.transfer);
    if (!copied.ok()) return copied.status().WithContext("learning.weights");
    ctx.Log("loaded " + std::to_string(*copied) + " pretrained tensors (" + file.architecture() +
            ")");
  } else if (s.transfer) {
    results.add_warnings(
        "learning.weights: no pretrained backbone given; the backbone started from random "
        "weights, so expect lower accuracy than transfer learning gives");
  } else if (!impulse.learning().weights().empty()) {
    return FailedPrecondition("learning.weights: named but the task carries no weights input");
  }

  const RowSplit split = SplitRows(fm, s.validation_split, s.seed);
  if (split.train.size() < 2) {
    return InvalidArgument("training.validation_split: leaves " +
                           std::to_string(split.train.size()) + " training rows");
  }
  if (s.batch_size > split.train.size()) {
    return InvalidArgument("training.batch_size: " + std::to_string(s.batch_size) +
                           " is larger than the " + std::to_string(split.train.size()) +
                           " training rows");
  }

  torch::manual_seed(MixSeed(s.seed, kStreamInit));
  GraphModule module(graph);
  if (graph.model().weights_size() > 0) IMPULSE_RETURN_IF_ERROR(module->LoadWeights(graph.model()));
  std::unique_ptr<torch::optim::Optimizer> opt = MakeOptimizer(s.sgd, s.learning_rate, module);

  const std::string fingerprint = Fingerprint(spec);
  uint32_t done_epochs = 0;
  std::string checkpoint_sha;
  if (auto cp = spec.inputs().find("checkpoint"); cp != spec.inputs().end()) {
    auto path = ctx.BlobPath(cp->second);
    Result<uint32_t> resumed = path.ok()
                                   ? LoadCheckpoint(*path, module, *opt, &results, fingerprint)
                                   : Result<uint32_t>(path.status());
    if (resumed.ok()) {
      done_epochs = *resumed;
      checkpoint_sha = cp->second;
      for (const auto& label : shape.labels) {
        if (results.labels_size() < static_cast<int>(classes)) results.add_labels(label);
      }
      ctx.Log("resumed from the checkpoint after epoch " + std::to_string(done_epochs));
    } else {
      results.add_warnings("checkpoint not resumed (" + resumed.status().message() +
                           "); training started over");
    }
  }

  const uint64_t n_train = split.train.size();
  const uint64_t batches = (n_train + s.batch_size - 1) / s.batch_size;
  const auto started = Clock::now();
  auto last_progress = started;
  const uint64_t batches_total = batches * (s.epochs - done_epochs);
  uint64_t batches_run = 0;
  std::string previous_file;

  for (uint32_t epoch = done_epochs + 1; epoch <= s.epochs; ++epoch) {
    const auto epoch_started = Clock::now();
    torch::manual_seed(MixSeed(s.seed, kStreamTorchEpoch + epoch));
    std::mt19937_64 rng(MixSeed(s.seed, kStreamShuffleEpoch + epoch));
    const std::vector<uint64_t> order = ShuffledRows(split.train, rng);

    module->SetBackboneFrozen(BackboneFrozen(s, epoch));
    SetLearningRate(*opt, LearningRate(s, epoch));
    module->train();

    double loss_sum = 0;
    int64_t correct = 0, seen = 0;
    for (uint64_t b = 0; b < batches; ++b) {
      if (ctx.StopRequested()) {
        return Cancelled("train: stopped at epoch " + std::to_string(epoch) + " batch " +
                         std::to_string(b + 1));
      }
      const uint64_t start = b * s.batch_size;
      const int64_t n = static_cast<int64_t>(std::min<uint64_t>(s.batch_size, n_train - start));
      if (n < 2) continue;  // batch norm needs two samples; only a 1-row tail is skipped
      const StepResult step =
          TrainStep(module, *opt, fm, order.data() + start, n, s.augmentation, rng);
      const double loss_value = step.loss;
      if (!step.finite) {
        return FailedPrecondition(
            "train: the loss became " + std::string(std::isnan(loss_value) ? "NaN" : "infinite") +
            " at epoch " + std::to_string(epoch) + " batch " + std::to_string(b + 1) +
            "; lower training.learning_rate (now " + Number(LearningRate(s, epoch)) + ")" +
            (checkpoint_sha.empty() ? ""
                                    : "; the last good checkpoint is " + checkpoint_sha +
                                          " (epoch " + std::to_string(epoch - 1) + ")"));
      }
      loss_sum += loss_value * n;
      correct += step.correct;
      seen += n;
      ++batches_run;

      const auto now = Clock::now();
      if (std::chrono::duration<double>(now - last_progress).count() >= kProgressEveryS) {
        last_progress = now;
        const double elapsed = std::chrono::duration<double>(now - started).count();
        const double fraction =
            (static_cast<double>(epoch - 1) + static_cast<double>(b + 1) / batches) / s.epochs;
        ctx.ReportProgress(fraction, "");
        ctx.ReportEta(elapsed / batches_run * (batches_total - batches_run));
      }
    }

    const LossAccuracy val = Evaluate(module, fm, split.validation);
    v1::EpochStats* stats = results.add_training_log();
    stats->set_epoch(epoch);
    stats->set_train_loss(seen ? loss_sum / seen : 0);
    stats->set_train_accuracy(seen ? static_cast<double>(correct) / seen : 0);
    stats->set_validation_loss(val.loss);
    stats->set_validation_accuracy(val.accuracy);
    stats->set_elapsed_s(std::chrono::duration<double>(Clock::now() - epoch_started).count());
    ctx.ReportEpoch(*stats);
    ctx.ReportProgress(static_cast<double>(epoch) / s.epochs, "");
    const double elapsed = std::chrono::duration<double>(Clock::now() - started).count();
    ctx.ReportEta(batches_run ? elapsed / batches_run * (batches_total - batches_run) : 0);

    const std::string file = ctx.ScratchDir() + "/checkpoint-" + std::to_string(epoch) + ".pt";
    SaveCheckpoint(file, module, *opt, epoch, results, fingerprint);
    IMPULSE_ASSIGN_OR_RETURN(checkpoint_sha, ctx.PutBlob(file));
    ctx.ReportCheckpoint(checkpoint_sha, epoch);
    if (!previous_file.empty()) fs::remove(previous_file);
    previous_file = file;
  }

  module->ExportWeights(&graph.mutable_model());
  graph.mutable_model().set_provenance("trained by task " + spec.task_id() + " of job " +
                                       spec.job_id() + ", " + std::to_string(s.epochs) +
                                       " epochs, seed " + std::to_string(s.seed));
  IMPULSE_RETURN_IF_ERROR(graph.CheckWeights());
  const std::string model_file = ctx.ScratchDir() + "/model.pb";
  IMPULSE_RETURN_IF_ERROR(WriteModelFile(graph.model(), model_file));
  IMPULSE_ASSIGN_OR_RETURN(std::string model_sha, ctx.PutBlob(model_file));
  (*output.mutable_blobs())["model"] = model_sha;
  if (!checkpoint_sha.empty()) (*output.mutable_blobs())["checkpoint"] = checkpoint_sha;
  return output;
}

}  // namespace

torch::Tensor MakeBatch(const FeatureMatrix& fm, const uint64_t* rows, int64_t n, bool augment,
                        std::mt19937_64& rng) {
  const auto& shape = fm.shape();
  const int64_t c = shape.channels, h = shape.height, w = shape.width;
  torch::Tensor batch = torch::empty({n, c, h, w}, torch::kFloat32);
  float* out = batch.data_ptr<float>();
  const int64_t max_shift = std::max<int64_t>(1, w / 16);
  std::uniform_real_distribution<float> gain_draw(0.8f, 1.2f);
  for (int64_t i = 0; i < n; ++i) {
    const uint8_t* px = fm.pixels(rows[i]);
    float* dst = out + i * c * h * w;
    if (!augment) {
      for (int64_t k = 0; k < c * h * w; ++k) dst[k] = px[k] * (1.0f / 255.0f);
      continue;
    }
    const bool flip = (rng() & 1) != 0;
    const int64_t dx = static_cast<int64_t>(rng() % (2 * max_shift + 1)) - max_shift;
    const int64_t dy = static_cast<int64_t>(rng() % (2 * max_shift + 1)) - max_shift;
    const float gain = gain_draw(rng) * (1.0f / 255.0f);
    for (int64_t ch = 0; ch < c; ++ch) {
      for (int64_t y = 0; y < h; ++y) {
        const int64_t sy = y - dy;
        for (int64_t x = 0; x < w; ++x) {
          const int64_t fx = flip ? w - 1 - x : x;
          const int64_t sx = fx - dx;
          float v = 0.0f;
          if (sy >= 0 && sy < h && sx >= 0 && sx < w) {
            v = std::min(1.0f, px[(ch * h + sy) * w + sx] * gain);
          }
          dst[(ch * h + y) * w + x] = v;
        }
      }
    }
  }
  return batch;
}

torch::Tensor BatchLabels(const FeatureMatrix& fm, const uint64_t* rows, int64_t n) {
  torch::Tensor labels = torch::empty({n}, torch::kInt64);
  int64_t* out = labels.data_ptr<int64_t>();
  for (int64_t i = 0; i < n; ++i) out[i] = fm.info(rows[i]).label;
  return labels;
}

std::unique_ptr<torch::optim::Optimizer> MakeOptimizer(bool sgd, double learning_rate,
                                                       GraphModule& module) {
  if (sgd) {
    return std::make_unique<torch::optim::SGD>(
        module->parameters(), torch::optim::SGDOptions(learning_rate).momentum(kSgdMomentum));
  }
  return std::make_unique<torch::optim::Adam>(module->parameters(),
                                              torch::optim::AdamOptions(learning_rate));
}

std::vector<uint64_t> ShuffledRows(std::vector<uint64_t> rows, std::mt19937_64& rng) {
  for (size_t i = rows.size(); i > 1; --i) std::swap(rows[i - 1], rows[rng() % i]);
  return rows;
}

StepResult TrainStep(GraphModule& module, torch::optim::Optimizer& opt, const FeatureMatrix& fm,
                     const uint64_t* rows, int64_t n, bool augment, std::mt19937_64& rng) {
  torch::Tensor x = MakeBatch(fm, rows, n, augment, rng);
  torch::Tensor y = BatchLabels(fm, rows, n);
  opt.zero_grad();
  torch::Tensor logits = module->forward(x);
  torch::Tensor loss = torch::nn::functional::cross_entropy(logits, y);
  StepResult result;
  result.loss = loss.item<double>();
  if (!std::isfinite(result.loss)) {
    result.finite = false;
    return result;
  }
  loss.backward();
  opt.step();
  result.correct = logits.argmax(1).eq(y).sum().item<int64_t>();
  return result;
}

Result<v1::TaskOutput> Train(const v1::TaskSpec& spec, TaskContext& ctx) {
  try {
    return TrainUnguarded(spec, ctx);
  } catch (const c10::Error& e) {
    return Internal(std::string("train: LibTorch: ") + e.what_without_backtrace());
  } catch (const std::exception& e) {
    return Internal(std::string("train: ") + e.what());
  }
}

}  // namespace impulse::worker::training
