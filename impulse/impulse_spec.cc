#include "impulse/impulse_spec.h"

#include <yaml-cpp/yaml.h>

#include <charconv>
#include <cmath>
#include <fstream>
#include <limits>
#include <set>
#include <sstream>

namespace impulse {
namespace {

// Ranges. The proto's comments and docs/IMPULSE.md say the same.
constexpr uint32_t kMaxInputSide = 4096;
constexpr uint32_t kMinTransferSide = 32;
constexpr uint32_t kMaxFilters = 4096;
constexpr uint32_t kMaxKernelSize = 15;
constexpr uint32_t kMaxPool = 16;
constexpr uint32_t kMaxNeurons = 65536;
constexpr uint32_t kMaxEpochs = 10000;
constexpr uint32_t kMaxBatchSize = 65536;
constexpr float kMaxLearningRate = 10.0f;
constexpr size_t kMaxNameLength = 128;

// Defaults (docs/IMPULSE.md).
constexpr uint32_t kDefaultEpochs = 20;
constexpr float kDefaultLearningRate = 0.001f;
constexpr uint32_t kDefaultBatchSize = 64;
constexpr float kDefaultValidationSplit = 0.2f;
constexpr uint64_t kDefaultSeed = 1;
constexpr float kDefaultLrStepGamma = 0.1f;
constexpr float kDefaultAlpha = 0.35f;
constexpr uint32_t kDefaultKernelSize = 3;
constexpr float kFineTuneLearningRateDivisor = 10.0f;

// The widths each backbone has pretrained weights for.
constexpr float kMobileNetV1Alphas[] = {0.1f, 0.2f, 0.25f, 0.35f, 0.5f, 0.75f, 1.0f};
constexpr float kMobileNetV2Alphas[] = {0.05f, 0.1f, 0.35f, 0.5f, 0.75f, 1.0f};

// The one table per enum, read by the parser and by the writer.
template <typename E>
struct EnumName {
  std::string_view name;
  E value;
};
constexpr EnumName<v1::ResizeMode> kResizeModes[] = {{"squash", v1::RESIZE_MODE_SQUASH},
                                                     {"fit-shortest", v1::RESIZE_MODE_FIT_SHORTEST},
                                                     {"fit-longest", v1::RESIZE_MODE_FIT_LONGEST}};
constexpr EnumName<v1::ProcessingKind> kProcessingKinds[] = {{"image", v1::PROCESSING_KIND_IMAGE},
                                                             {"raw", v1::PROCESSING_KIND_RAW}};
constexpr EnumName<v1::ColorDepth> kColorDepths[] = {{"rgb", v1::COLOR_DEPTH_RGB},
                                                     {"grayscale", v1::COLOR_DEPTH_GRAYSCALE}};
constexpr EnumName<v1::LearningKind> kLearningKinds[] = {
    {"classification", v1::LEARNING_KIND_CLASSIFICATION}, {"transfer", v1::LEARNING_KIND_TRANSFER}};
constexpr EnumName<v1::Backbone> kBackbones[] = {{"mobilenet_v1", v1::BACKBONE_MOBILENET_V1},
                                                 {"mobilenet_v2", v1::BACKBONE_MOBILENET_V2}};
constexpr EnumName<v1::Optimizer> kOptimizers[] = {{"adam", v1::OPTIMIZER_ADAM},
                                                   {"sgd", v1::OPTIMIZER_SGD}};

template <typename E, size_t N>
std::string Choices(const EnumName<E> (&table)[N]) {
  std::string text;
  for (const auto& entry : table) {
    if (!text.empty()) text += " | ";
    text += entry.name;
  }
  return text;
}

template <typename E, size_t N>
std::string_view NameOf(const EnumName<E> (&table)[N], E value) {
  for (const auto& entry : table) {
    if (entry.value == value) return entry.name;
  }
  return {};
}

std::string FormatFloat(double value, bool as_float) {
  char text[64];
  auto end = as_float ? std::to_chars(text, text + sizeof(text), static_cast<float>(value)).ptr
                      : std::to_chars(text, text + sizeof(text), value).ptr;
  return std::string(text, end);
}
std::string FormatFloat(float value) { return FormatFloat(value, true); }

std::string Join(const std::string& path, std::string_view key) {
  return path.empty() ? std::string(key) : path + "." + std::string(key);
}

std::string Describe(const YAML::Node& node) {
  switch (node.Type()) {
    case YAML::NodeType::Map:
      return "a mapping";
    case YAML::NodeType::Sequence:
      return "a list";
    case YAML::NodeType::Scalar:
      return "'" + node.Scalar() + "'";
    default:
      return "nothing";
  }
}

// Walks the YAML tree, writing the proto and remembering which paths the
// file gave explicitly (so that `epochs: 0` is refused rather than read as
// "the default").
class YamlReader {
 public:
  const std::set<std::string>& given() const { return given_; }

  Status ExpectMap(const YAML::Node& node, const std::string& path,
                   std::initializer_list<std::string_view> allowed) {
    if (!node.IsMap()) {
      return InvalidArgument((path.empty() ? "impulse" : path) + ": expected a mapping of keys (" +
                             JoinKeys(allowed) + "), got " + Describe(node));
    }
    std::set<std::string> seen;
    for (const auto& entry : node) {
      const std::string key = entry.first.IsScalar() ? entry.first.Scalar() : "?";
      bool known = false;
      for (std::string_view name : allowed) known = known || key == name;
      if (!known) {
        return InvalidArgument(Join(path, key) + ": unknown key (" +
                               (path.empty() ? std::string("top level") : path) + " takes " +
                               JoinKeys(allowed) + ")");
      }
      if (!seen.insert(key).second) return InvalidArgument(Join(path, key) + ": given twice");
    }
    return Status::Ok();
  }

  Result<std::string> Text(const YAML::Node& node, const std::string& path, const char* what) {
    if (!node.IsScalar()) {
      return InvalidArgument(path + ": expected " + what + ", got " + Describe(node));
    }
    given_.insert(path);
    return node.Scalar();
  }

  template <typename T>
  Result<T> Unsigned(const YAML::Node& node, const std::string& path) {
    IMPULSE_ASSIGN_OR_RETURN(std::string text, Text(node, path, "an integer"));
    int64_t value = 0;
    const char* begin = text.data() + (text.starts_with('+') ? 1 : 0);
    auto [end, error] = std::from_chars(begin, text.data() + text.size(), value);
    if (error == std::errc::result_out_of_range) {
      return InvalidArgument(path + ": " + text + " is too large");
    }
    if (error != std::errc() || end != text.data() + text.size()) {
      return InvalidArgument(path + ": expected an integer, got '" + text + "'");
    }
    if (value < 0) return InvalidArgument(path + ": must not be negative, got " + text);
    if (static_cast<uint64_t>(value) > std::numeric_limits<T>::max()) {
      return InvalidArgument(path + ": " + text + " is too large");
    }
    return static_cast<T>(value);
  }

  template <typename T>
  Result<T> Real(const YAML::Node& node, const std::string& path) {
    IMPULSE_ASSIGN_OR_RETURN(std::string text, Text(node, path, "a number"));
    T value = 0;
    const char* begin = text.data() + (text.starts_with('+') ? 1 : 0);
    auto [end, error] = std::from_chars(begin, text.data() + text.size(), value);
    if (error != std::errc() || end != text.data() + text.size() || !std::isfinite(value)) {
      return InvalidArgument(path + ": expected a number, got '" + text + "'");
    }
    return value;
  }

  Result<bool> Bool(const YAML::Node& node, const std::string& path) {
    IMPULSE_ASSIGN_OR_RETURN(std::string text, Text(node, path, "true or false"));
    for (char& c : text) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    if (text == "true" || text == "yes" || text == "on") return true;
    if (text == "false" || text == "no" || text == "off") return false;
    return InvalidArgument(path + ": expected true or false, got '" + node.Scalar() + "'");
  }

  Result<uint64_t> Bytes(const YAML::Node& node, const std::string& path) {
    IMPULSE_ASSIGN_OR_RETURN(std::string text, Text(node, path, "a size in bytes"));
    return ParseByteSize(text, path);
  }

  template <typename E, size_t N>
  Result<E> Enum(const YAML::Node& node, const std::string& path, const char* what,
                 const EnumName<E> (&table)[N]) {
    if (!node.IsScalar()) {
      return InvalidArgument(path + ": expected one of " + Choices(table) + ", got " +
                             Describe(node));
    }
    IMPULSE_ASSIGN_OR_RETURN(std::string text, Text(node, path, "a name"));
    for (const auto& entry : table) {
      if (entry.name == text) return entry.value;
    }
    return InvalidArgument(path + ": unknown " + what + " '" + text + "' (" + Choices(table) + ")");
  }

 private:
  static std::string JoinKeys(std::initializer_list<std::string_view> keys) {
    std::string text;
    for (std::string_view key : keys) {
      if (!text.empty()) text += ", ";
      text += key;
    }
    return text;
  }

  std::set<std::string> given_;
};

// Assigns the field from `parent[key]` when the key is present (and not null).
#define IMPULSE_READ(parent, key, path, setter, read_expr)  \
  do {                                                      \
    const YAML::Node impulse_node_ = (parent)[key];         \
    if (impulse_node_) {                                    \
      const YAML::Node& node = impulse_node_;               \
      const std::string field = Join(path, key);            \
      IMPULSE_ASSIGN_OR_RETURN(auto impulse_v_, read_expr); \
      setter(impulse_v_);                                   \
    }                                                       \
  } while (0)

// A section given as `key:` with nothing after it is the same as absent.
bool Present(const YAML::Node& node) { return node && !node.IsNull(); }

Status ParseInput(YamlReader& r, const YAML::Node& map, v1::InputBlock* input) {
  const std::string path = "input";
  IMPULSE_RETURN_IF_ERROR(r.ExpectMap(map, path, {"width", "height", "resize"}));
  if (!map["width"]) return InvalidArgument("input.width: required (pixels, 1..4096)");
  if (!map["height"]) return InvalidArgument("input.height: required (pixels, 1..4096)");
  IMPULSE_READ(map, "width", path, input->set_width, r.Unsigned<uint32_t>(node, field));
  IMPULSE_READ(map, "height", path, input->set_height, r.Unsigned<uint32_t>(node, field));
  IMPULSE_READ(map, "resize", path, input->set_resize, r.Enum(node, field, "mode", kResizeModes));
  return Status::Ok();
}

Status ParseProcessing(YamlReader& r, const YAML::Node& map, v1::ProcessingBlock* processing) {
  const std::string path = "processing";
  IMPULSE_RETURN_IF_ERROR(r.ExpectMap(map, path, {"block", "color"}));
  if (!map["block"]) {
    return InvalidArgument("processing.block: required (" + Choices(kProcessingKinds) + ")");
  }
  IMPULSE_READ(map, "block", path, processing->set_block,
               r.Enum(node, field, "block", kProcessingKinds));
  IMPULSE_READ(map, "color", path, processing->set_color,
               r.Enum(node, field, "color", kColorDepths));
  return Status::Ok();
}

Status ParseLearning(YamlReader& r, const YAML::Node& map, v1::LearningBlock* learning) {
  const std::string path = "learning";
  IMPULSE_RETURN_IF_ERROR(
      r.ExpectMap(map, path,
                  {"block", "backbone", "alpha", "weights", "dense", "dropout", "frozen_epochs",
                   "fine_tune", "fine_tune_learning_rate", "conv", "dense_layers"}));
  if (!map["block"]) {
    return InvalidArgument("learning.block: required (" + Choices(kLearningKinds) +
                           "); leave learning out to generate features only");
  }
  IMPULSE_READ(map, "block", path, learning->set_block,
               r.Enum(node, field, "block", kLearningKinds));
  IMPULSE_READ(map, "backbone", path, learning->set_backbone,
               r.Enum(node, field, "backbone", kBackbones));
  IMPULSE_READ(map, "alpha", path, learning->set_alpha, r.Real<float>(node, field));
  IMPULSE_READ(map, "weights", path, learning->set_weights,
               r.Text(node, field, "a weights name or file"));
  IMPULSE_READ(map, "dense", path, learning->set_dense, r.Unsigned<uint32_t>(node, field));
  IMPULSE_READ(map, "dropout", path, learning->set_dropout, r.Real<float>(node, field));
  IMPULSE_READ(map, "frozen_epochs", path, learning->set_frozen_epochs,
               r.Unsigned<uint32_t>(node, field));
  IMPULSE_READ(map, "fine_tune", path, learning->set_fine_tune, r.Bool(node, field));
  IMPULSE_READ(map, "fine_tune_learning_rate", path, learning->set_fine_tune_learning_rate,
               r.Real<float>(node, field));

  if (const YAML::Node conv = map["conv"]; Present(conv)) {
    if (!conv.IsSequence()) {
      return InvalidArgument(
          "learning.conv: expected a list of {filters, kernel_size, pool, "
          "dropout}, got " +
          Describe(conv));
    }
    for (size_t i = 0; i < conv.size(); ++i) {
      const std::string item = "learning.conv[" + std::to_string(i) + "]";
      const YAML::Node layer_node = conv[i];
      IMPULSE_RETURN_IF_ERROR(
          r.ExpectMap(layer_node, item, {"filters", "kernel_size", "pool", "dropout"}));
      if (!layer_node["filters"]) return InvalidArgument(item + ".filters: required");
      v1::ConvLayer* layer = learning->add_conv();
      IMPULSE_READ(layer_node, "filters", item, layer->set_filters,
                   r.Unsigned<uint32_t>(node, field));
      IMPULSE_READ(layer_node, "kernel_size", item, layer->set_kernel_size,
                   r.Unsigned<uint32_t>(node, field));
      IMPULSE_READ(layer_node, "pool", item, layer->set_pool, r.Unsigned<uint32_t>(node, field));
      IMPULSE_READ(layer_node, "dropout", item, layer->set_dropout, r.Real<float>(node, field));
    }
  }
  if (const YAML::Node dense = map["dense_layers"]; Present(dense)) {
    if (!dense.IsSequence()) {
      return InvalidArgument("learning.dense_layers: expected a list of {neurons, dropout}, got " +
                             Describe(dense));
    }
    for (size_t i = 0; i < dense.size(); ++i) {
      const std::string item = "learning.dense_layers[" + std::to_string(i) + "]";
      const YAML::Node layer_node = dense[i];
      IMPULSE_RETURN_IF_ERROR(r.ExpectMap(layer_node, item, {"neurons", "dropout"}));
      if (!layer_node["neurons"]) return InvalidArgument(item + ".neurons: required");
      v1::DenseLayer* layer = learning->add_dense_layers();
      IMPULSE_READ(layer_node, "neurons", item, layer->set_neurons,
                   r.Unsigned<uint32_t>(node, field));
      IMPULSE_READ(layer_node, "dropout", item, layer->set_dropout, r.Real<float>(node, field));
    }
  }
  return Status::Ok();
}

Status ParseTraining(YamlReader& r, const YAML::Node& map, v1::TrainingSettings* training) {
  const std::string path = "training";
  IMPULSE_RETURN_IF_ERROR(
      r.ExpectMap(map, path,
                  {"epochs", "learning_rate", "batch_size", "validation_split", "augmentation",
                   "seed", "optimizer", "lr_step_epochs", "lr_step_gamma"}));
  IMPULSE_READ(map, "epochs", path, training->set_epochs, r.Unsigned<uint32_t>(node, field));
  IMPULSE_READ(map, "learning_rate", path, training->set_learning_rate, r.Real<float>(node, field));
  IMPULSE_READ(map, "batch_size", path, training->set_batch_size,
               r.Unsigned<uint32_t>(node, field));
  IMPULSE_READ(map, "validation_split", path, training->set_validation_split,
               r.Real<float>(node, field));
  IMPULSE_READ(map, "augmentation", path, training->set_augmentation, r.Bool(node, field));
  IMPULSE_READ(map, "seed", path, training->set_seed, r.Unsigned<uint64_t>(node, field));
  IMPULSE_READ(map, "optimizer", path, training->set_optimizer,
               r.Enum(node, field, "optimizer", kOptimizers));
  IMPULSE_READ(map, "lr_step_epochs", path, training->set_lr_step_epochs,
               r.Unsigned<uint32_t>(node, field));
  IMPULSE_READ(map, "lr_step_gamma", path, training->set_lr_step_gamma, r.Real<float>(node, field));
  return Status::Ok();
}

Status ParseLimits(YamlReader& r, const YAML::Node& map, v1::DeviceLimits* limits) {
  const std::string path = "limits";
  IMPULSE_RETURN_IF_ERROR(r.ExpectMap(map, path, {"latency_ms", "ram_bytes", "flash_bytes"}));
  IMPULSE_READ(map, "latency_ms", path, limits->set_latency_ms, r.Real<double>(node, field));
  IMPULSE_READ(map, "ram_bytes", path, limits->set_ram_bytes, r.Bytes(node, field));
  IMPULSE_READ(map, "flash_bytes", path, limits->set_flash_bytes, r.Bytes(node, field));
  return Status::Ok();
}

#undef IMPULSE_READ

// ---- validation

std::string Range(uint32_t lo, uint32_t hi) {
  return std::to_string(lo) + ".." + std::to_string(hi);
}

Status CheckCount(const std::string& path, uint32_t value, uint32_t lo, uint32_t hi) {
  if (value >= lo && value <= hi) return Status::Ok();
  return InvalidArgument(path + ": must be " + Range(lo, hi) + ", got " + std::to_string(value));
}

// A dropout-style fraction: [0, 1).
Status CheckFraction(const std::string& path, float value) {
  if (value >= 0.0f && value < 1.0f) return Status::Ok();
  return InvalidArgument(path + ": must be a fraction in [0, 1), got " + FormatFloat(value));
}

Status CheckPositive(const std::string& path, float value, float max) {
  if (value > 0.0f && value <= max) return Status::Ok();
  return InvalidArgument(path + ": must be in (0, " + FormatFloat(max) + "], got " +
                         FormatFloat(value));
}

template <size_t N>
bool OneOf(float value, const float (&set)[N]) {
  for (float allowed : set) {
    if (std::fabs(value - allowed) < 1e-4f) return true;
  }
  return false;
}

template <size_t N>
std::string ListFloats(const float (&set)[N]) {
  std::string text;
  for (float value : set) text += (text.empty() ? "" : " | ") + FormatFloat(value);
  return text;
}

// `given` holds the paths a YAML file spelled out; a zero there is refused
// where on the wire it would mean "the default". nullptr: from the wire.
class Validator {
 public:
  Validator(const std::vector<std::string>* target_ids, const std::set<std::string>* given)
      : target_ids_(target_ids), given_(given) {}

  Status Run(const v1::Impulse& impulse) {
    IMPULSE_RETURN_IF_ERROR(CheckName(impulse.name()));
    IMPULSE_RETURN_IF_ERROR(CheckInput(impulse.input()));
    IMPULSE_RETURN_IF_ERROR(CheckProcessing(impulse.processing()));
    const bool learning =
        impulse.has_learning() && impulse.learning().block() != v1::LEARNING_KIND_UNSPECIFIED;
    if (impulse.has_learning() && !learning && impulse.learning().ByteSizeLong() > 0) {
      return InvalidArgument("learning.block: required (" + Choices(kLearningKinds) + ")");
    }
    if (learning) IMPULSE_RETURN_IF_ERROR(CheckLearning(impulse));
    IMPULSE_RETURN_IF_ERROR(CheckTraining(impulse.training()));
    IMPULSE_RETURN_IF_ERROR(CheckTarget(impulse.target()));
    return CheckLimits(impulse.limits());
  }

 private:
  // True when the value must be checked: non-zero, or written out in a file.
  bool Set(const std::string& path, bool nonzero) const {
    return nonzero || (given_ != nullptr && given_->count(path) > 0);
  }

  static Status CheckName(const std::string& name) {
    if (name.empty()) return InvalidArgument("name: required (a short name for the impulse)");
    if (name.size() > kMaxNameLength) {
      return InvalidArgument("name: at most " + std::to_string(kMaxNameLength) +
                             " characters, got " + std::to_string(name.size()));
    }
    for (unsigned char c : name) {
      if (c < 0x20 || c == 0x7f) return InvalidArgument("name: must not hold control characters");
    }
    return Status::Ok();
  }

  static Status CheckInput(const v1::InputBlock& input) {
    IMPULSE_RETURN_IF_ERROR(CheckCount("input.width", input.width(), 1, kMaxInputSide));
    IMPULSE_RETURN_IF_ERROR(CheckCount("input.height", input.height(), 1, kMaxInputSide));
    if (!v1::ResizeMode_IsValid(input.resize())) {
      return InvalidArgument("input.resize: unknown mode " + std::to_string(input.resize()));
    }
    return Status::Ok();
  }

  static Status CheckProcessing(const v1::ProcessingBlock& processing) {
    if (processing.block() == v1::PROCESSING_KIND_UNSPECIFIED ||
        !v1::ProcessingKind_IsValid(processing.block())) {
      return InvalidArgument("processing.block: required (" + Choices(kProcessingKinds) + ")");
    }
    if (!v1::ColorDepth_IsValid(processing.color())) {
      return InvalidArgument("processing.color: unknown color " +
                             std::to_string(processing.color()));
    }
    return Status::Ok();
  }

  Status CheckLearning(const v1::Impulse& impulse) const {
    const v1::LearningBlock& learning = impulse.learning();
    if (!v1::LearningKind_IsValid(learning.block())) {
      return InvalidArgument("learning.block: unknown block " + std::to_string(learning.block()));
    }
    const bool transfer = learning.block() == v1::LEARNING_KIND_TRANSFER;
    if (transfer) return CheckTransfer(impulse);

    // Classification: the transfer keys would be silently ignored; say so.
    const char* transfer_key = nullptr;
    if (Set("learning.backbone", learning.backbone() != 0)) transfer_key = "backbone";
    if (Set("learning.alpha", learning.alpha() != 0)) transfer_key = "alpha";
    if (Set("learning.weights", !learning.weights().empty())) transfer_key = "weights";
    if (Set("learning.dense", learning.dense() != 0)) transfer_key = "dense";
    if (Set("learning.dropout", learning.dropout() != 0)) transfer_key = "dropout";
    if (Set("learning.frozen_epochs", learning.frozen_epochs() != 0))
      transfer_key = "frozen_epochs";
    if (Set("learning.fine_tune", learning.fine_tune())) transfer_key = "fine_tune";
    if (Set("learning.fine_tune_learning_rate", learning.fine_tune_learning_rate() != 0)) {
      transfer_key = "fine_tune_learning_rate";
    }
    if (transfer_key != nullptr) {
      return InvalidArgument(std::string("learning.") + transfer_key +
                             ": only for block: transfer (classification uses conv and "
                             "dense_layers)");
    }
    if (impulse.processing().block() == v1::PROCESSING_KIND_RAW && learning.conv_size() > 0) {
      return InvalidArgument(
          "learning.conv: processing.block raw feeds a dense network; leave conv out or use "
          "processing.block image");
    }
    for (int i = 0; i < learning.conv_size(); ++i) {
      const v1::ConvLayer& layer = learning.conv(i);
      const std::string item = "learning.conv[" + std::to_string(i) + "]";
      IMPULSE_RETURN_IF_ERROR(CheckCount(item + ".filters", layer.filters(), 1, kMaxFilters));
      if (Set(item + ".kernel_size", layer.kernel_size() != 0) &&
          (layer.kernel_size() % 2 == 0 || layer.kernel_size() > kMaxKernelSize)) {
        return InvalidArgument(item + ".kernel_size: must be odd, 1.." +
                               std::to_string(kMaxKernelSize) + ", got " +
                               std::to_string(layer.kernel_size()));
      }
      IMPULSE_RETURN_IF_ERROR(CheckCount(item + ".pool", layer.pool(), 0, kMaxPool));
      IMPULSE_RETURN_IF_ERROR(CheckFraction(item + ".dropout", layer.dropout()));
    }
    for (int i = 0; i < learning.dense_layers_size(); ++i) {
      const v1::DenseLayer& layer = learning.dense_layers(i);
      const std::string item = "learning.dense_layers[" + std::to_string(i) + "]";
      IMPULSE_RETURN_IF_ERROR(CheckCount(item + ".neurons", layer.neurons(), 1, kMaxNeurons));
      IMPULSE_RETURN_IF_ERROR(CheckFraction(item + ".dropout", layer.dropout()));
    }
    return Status::Ok();
  }

  Status CheckTransfer(const v1::Impulse& impulse) const {
    const v1::LearningBlock& learning = impulse.learning();
    if (learning.conv_size() > 0) {
      return InvalidArgument("learning.conv: only for block: classification");
    }
    if (learning.dense_layers_size() > 0) {
      return InvalidArgument(
          "learning.dense_layers: only for block: classification (transfer uses dense)");
    }
    if (impulse.processing().block() != v1::PROCESSING_KIND_IMAGE) {
      return InvalidArgument("learning.block: transfer needs processing.block image, got raw");
    }
    if (impulse.input().width() < kMinTransferSide) {
      return InvalidArgument("input.width: transfer learning needs at least " +
                             std::to_string(kMinTransferSide) + ", got " +
                             std::to_string(impulse.input().width()));
    }
    if (impulse.input().height() < kMinTransferSide) {
      return InvalidArgument("input.height: transfer learning needs at least " +
                             std::to_string(kMinTransferSide) + ", got " +
                             std::to_string(impulse.input().height()));
    }
    if (!v1::Backbone_IsValid(learning.backbone())) {
      return InvalidArgument("learning.backbone: unknown backbone " +
                             std::to_string(learning.backbone()));
    }
    const bool v1_backbone = learning.backbone() == v1::BACKBONE_MOBILENET_V1;
    if (Set("learning.alpha", learning.alpha() != 0)) {
      const bool ok = v1_backbone ? OneOf(learning.alpha(), kMobileNetV1Alphas)
                                  : OneOf(learning.alpha(), kMobileNetV2Alphas);
      if (!ok) {
        return InvalidArgument("learning.alpha: " + FormatFloat(learning.alpha()) + " is not a " +
                               (v1_backbone
                                    ? "MobileNetV1 width (" + ListFloats(kMobileNetV1Alphas)
                                    : "MobileNetV2 width (" + ListFloats(kMobileNetV2Alphas)) +
                               ")");
      }
    }
    IMPULSE_RETURN_IF_ERROR(CheckCount("learning.dense", learning.dense(), 0, kMaxNeurons));
    IMPULSE_RETURN_IF_ERROR(CheckFraction("learning.dropout", learning.dropout()));
    const uint32_t epochs =
        impulse.training().epochs() != 0 ? impulse.training().epochs() : kDefaultEpochs;
    if (learning.frozen_epochs() > epochs) {
      return InvalidArgument("learning.frozen_epochs: must be at most training.epochs (" +
                             std::to_string(epochs) + "), got " +
                             std::to_string(learning.frozen_epochs()));
    }
    if (Set("learning.fine_tune_learning_rate", learning.fine_tune_learning_rate() != 0)) {
      IMPULSE_RETURN_IF_ERROR(CheckPositive("learning.fine_tune_learning_rate",
                                            learning.fine_tune_learning_rate(), kMaxLearningRate));
    }
    return Status::Ok();
  }

  Status CheckTraining(const v1::TrainingSettings& training) const {
    if (Set("training.epochs", training.epochs() != 0)) {
      IMPULSE_RETURN_IF_ERROR(CheckCount("training.epochs", training.epochs(), 1, kMaxEpochs));
    }
    if (Set("training.learning_rate", training.learning_rate() != 0)) {
      IMPULSE_RETURN_IF_ERROR(
          CheckPositive("training.learning_rate", training.learning_rate(), kMaxLearningRate));
    }
    if (Set("training.batch_size", training.batch_size() != 0)) {
      IMPULSE_RETURN_IF_ERROR(
          CheckCount("training.batch_size", training.batch_size(), 1, kMaxBatchSize));
    }
    if (Set("training.validation_split", training.validation_split() != 0)) {
      const float split = training.validation_split();
      if (!(split > 0.0f && split < 1.0f)) {
        return InvalidArgument("training.validation_split: must be a fraction in (0, 1), got " +
                               FormatFloat(split));
      }
    }
    if (!v1::Optimizer_IsValid(training.optimizer())) {
      return InvalidArgument("training.optimizer: unknown optimizer " +
                             std::to_string(training.optimizer()));
    }
    IMPULSE_RETURN_IF_ERROR(
        CheckCount("training.lr_step_epochs", training.lr_step_epochs(), 0, kMaxEpochs));
    if (Set("training.lr_step_gamma", training.lr_step_gamma() != 0)) {
      IMPULSE_RETURN_IF_ERROR(
          CheckPositive("training.lr_step_gamma", training.lr_step_gamma(), 1.0f));
    }
    return Status::Ok();
  }

  // Without a catalog (nullptr) only the id's form is checked: the
  // coordinator knows the users' devices, a client parsing a file does not.
  Status CheckTarget(const std::string& target) const {
    if (!Set("target", !target.empty())) return Status::Ok();
    if (!IsDeviceId(target)) {
      return InvalidArgument("target: '" + target +
                             "' is not a device id (lower-case letters, digits, '.', '_', '-')");
    }
    if (target_ids_ == nullptr) return Status::Ok();
    std::string known;
    for (const std::string& id : *target_ids_) {
      if (id == target) return Status::Ok();
      known += (known.empty() ? "" : " | ") + id;
    }
    return InvalidArgument("target: unknown device '" + target + "' (" + known + ")");
  }

  static Status CheckLimits(const v1::DeviceLimits& limits) {
    if (!(limits.latency_ms() >= 0.0) || !std::isfinite(limits.latency_ms())) {
      return InvalidArgument("limits.latency_ms: must be >= 0 (0 = no limit), got " +
                             FormatFloat(limits.latency_ms(), false));
    }
    return Status::Ok();
  }

  const std::vector<std::string>* target_ids_;  // nullptr: any well-formed id
  const std::set<std::string>* given_;
};

// ---- writing

void EmitFloat(YAML::Emitter& out, const char* key, float value) {
  out << YAML::Key << key << YAML::Value << FormatFloat(value);
}

}  // namespace

bool IsDeviceId(std::string_view id) {
  if (id.empty() || id.size() > 64) return false;
  for (char c : id) {
    if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '.' || c == '_' || c == '-')) {
      return false;
    }
  }
  return true;
}

Result<uint64_t> ParseByteSize(std::string_view text, const std::string& path) {
  uint64_t value = 0;
  auto [end, error] = std::from_chars(text.data(), text.data() + text.size(), value);
  std::string suffix(end, text.data() + text.size());
  for (char& c : suffix) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
  int shift = -1;
  if (suffix.empty() || suffix == "B") shift = 0;
  if (suffix == "K" || suffix == "KB" || suffix == "KIB") shift = 10;
  if (suffix == "M" || suffix == "MB" || suffix == "MIB") shift = 20;
  if (suffix == "G" || suffix == "GB" || suffix == "GIB") shift = 30;
  if (error != std::errc() || end == text.data() || shift < 0) {
    return InvalidArgument(path + ": expected a size in bytes (4096, 256K, 1M, 2G), got '" +
                           std::string(text) + "'");
  }
  if (value > (std::numeric_limits<uint64_t>::max() >> shift)) {
    return InvalidArgument(path + ": " + std::string(text) + " is too large");
  }
  return value << shift;
}

Result<v1::Impulse> ParseImpulseYaml(std::string_view text) {
  YAML::Node root;
  try {
    root = YAML::Load(std::string(text));
  } catch (const YAML::Exception& e) {
    return InvalidArgument("impulse YAML, line " + std::to_string(e.mark.line + 1) + ": " + e.msg);
  }
  YamlReader r;
  v1::Impulse impulse;
  IMPULSE_RETURN_IF_ERROR(r.ExpectMap(
      root, "", {"name", "input", "processing", "learning", "training", "target", "limits"}));
  if (!Present(root["name"]))
    return InvalidArgument("name: required (a short name for the impulse)");
  if (!Present(root["input"])) {
    return InvalidArgument("input: required ({width, height, resize})");
  }
  if (!Present(root["processing"])) {
    return InvalidArgument("processing: required ({block: image | raw, color: rgb | grayscale})");
  }
  IMPULSE_ASSIGN_OR_RETURN(*impulse.mutable_name(), r.Text(root["name"], "name", "a name"));
  IMPULSE_RETURN_IF_ERROR(ParseInput(r, root["input"], impulse.mutable_input()));
  IMPULSE_RETURN_IF_ERROR(ParseProcessing(r, root["processing"], impulse.mutable_processing()));
  if (Present(root["learning"])) {
    IMPULSE_RETURN_IF_ERROR(ParseLearning(r, root["learning"], impulse.mutable_learning()));
  }
  if (Present(root["training"])) {
    IMPULSE_RETURN_IF_ERROR(ParseTraining(r, root["training"], impulse.mutable_training()));
  }
  if (Present(root["target"])) {
    IMPULSE_ASSIGN_OR_RETURN(*impulse.mutable_target(),
                             r.Text(root["target"], "target", "a device catalog id"));
  }
  if (Present(root["limits"])) {
    IMPULSE_RETURN_IF_ERROR(ParseLimits(r, root["limits"], impulse.mutable_limits()));
  }
  IMPULSE_RETURN_IF_ERROR(Validator(nullptr, &r.given()).Run(impulse));
  return impulse;
}

Result<v1::Impulse> LoadImpulseFile(const std::string& path) {
  std::ifstream file(path, std::ios::binary);
  if (!file) return NotFound(path + ": cannot open the impulse file");
  std::ostringstream text;
  text << file.rdbuf();
  if (file.bad()) return NotFound(path + ": cannot read the impulse file");
  Result<v1::Impulse> impulse = ParseImpulseYaml(text.str());
  if (!impulse.ok()) return impulse.status().WithContext(path);
  return impulse;
}

std::string ImpulseToYaml(const v1::Impulse& impulse) {
  YAML::Emitter out;
  out << YAML::BeginMap;
  out << YAML::Key << "name" << YAML::Value << impulse.name();

  const v1::InputBlock& input = impulse.input();
  out << YAML::Key << "input" << YAML::Value << YAML::Flow << YAML::BeginMap;
  out << YAML::Key << "width" << YAML::Value << input.width();
  out << YAML::Key << "height" << YAML::Value << input.height();
  if (input.resize() != 0) {
    out << YAML::Key << "resize" << YAML::Value
        << std::string(NameOf(kResizeModes, input.resize()));
  }
  out << YAML::EndMap;

  const v1::ProcessingBlock& processing = impulse.processing();
  out << YAML::Key << "processing" << YAML::Value << YAML::Flow << YAML::BeginMap;
  out << YAML::Key << "block" << YAML::Value
      << std::string(NameOf(kProcessingKinds, processing.block()));
  if (processing.color() != 0) {
    out << YAML::Key << "color" << YAML::Value
        << std::string(NameOf(kColorDepths, processing.color()));
  }
  out << YAML::EndMap;

  const v1::LearningBlock& learning = impulse.learning();
  if (impulse.has_learning() && learning.block() != v1::LEARNING_KIND_UNSPECIFIED) {
    out << YAML::Key << "learning" << YAML::Value << YAML::BeginMap;
    out << YAML::Key << "block" << YAML::Value
        << std::string(NameOf(kLearningKinds, learning.block()));
    if (learning.backbone() != 0) {
      out << YAML::Key << "backbone" << YAML::Value
          << std::string(NameOf(kBackbones, learning.backbone()));
    }
    if (learning.alpha() != 0) EmitFloat(out, "alpha", learning.alpha());
    if (!learning.weights().empty()) {
      out << YAML::Key << "weights" << YAML::Value << learning.weights();
    }
    if (learning.dense() != 0) out << YAML::Key << "dense" << YAML::Value << learning.dense();
    if (learning.dropout() != 0) EmitFloat(out, "dropout", learning.dropout());
    if (learning.frozen_epochs() != 0) {
      out << YAML::Key << "frozen_epochs" << YAML::Value << learning.frozen_epochs();
    }
    if (learning.fine_tune()) out << YAML::Key << "fine_tune" << YAML::Value << true;
    if (learning.fine_tune_learning_rate() != 0) {
      EmitFloat(out, "fine_tune_learning_rate", learning.fine_tune_learning_rate());
    }
    if (learning.conv_size() > 0) {
      out << YAML::Key << "conv" << YAML::Value << YAML::BeginSeq;
      for (const v1::ConvLayer& layer : learning.conv()) {
        out << YAML::Flow << YAML::BeginMap;
        out << YAML::Key << "filters" << YAML::Value << layer.filters();
        if (layer.kernel_size() != 0) {
          out << YAML::Key << "kernel_size" << YAML::Value << layer.kernel_size();
        }
        if (layer.pool() != 0) out << YAML::Key << "pool" << YAML::Value << layer.pool();
        if (layer.dropout() != 0) EmitFloat(out, "dropout", layer.dropout());
        out << YAML::EndMap;
      }
      out << YAML::EndSeq;
    }
    if (learning.dense_layers_size() > 0) {
      out << YAML::Key << "dense_layers" << YAML::Value << YAML::BeginSeq;
      for (const v1::DenseLayer& layer : learning.dense_layers()) {
        out << YAML::Flow << YAML::BeginMap;
        out << YAML::Key << "neurons" << YAML::Value << layer.neurons();
        if (layer.dropout() != 0) EmitFloat(out, "dropout", layer.dropout());
        out << YAML::EndMap;
      }
      out << YAML::EndSeq;
    }
    out << YAML::EndMap;
  }

  if (impulse.has_training()) {
    const v1::TrainingSettings& training = impulse.training();
    out << YAML::Key << "training" << YAML::Value << YAML::BeginMap;
    if (training.epochs() != 0) out << YAML::Key << "epochs" << YAML::Value << training.epochs();
    if (training.learning_rate() != 0) EmitFloat(out, "learning_rate", training.learning_rate());
    if (training.batch_size() != 0) {
      out << YAML::Key << "batch_size" << YAML::Value << training.batch_size();
    }
    if (training.validation_split() != 0) {
      EmitFloat(out, "validation_split", training.validation_split());
    }
    if (training.augmentation()) out << YAML::Key << "augmentation" << YAML::Value << true;
    if (training.seed() != 0) out << YAML::Key << "seed" << YAML::Value << training.seed();
    if (training.optimizer() != 0) {
      out << YAML::Key << "optimizer" << YAML::Value
          << std::string(NameOf(kOptimizers, training.optimizer()));
    }
    if (training.lr_step_epochs() != 0) {
      out << YAML::Key << "lr_step_epochs" << YAML::Value << training.lr_step_epochs();
    }
    if (training.lr_step_gamma() != 0) EmitFloat(out, "lr_step_gamma", training.lr_step_gamma());
    out << YAML::EndMap;
  }

  if (!impulse.target().empty()) out << YAML::Key << "target" << YAML::Value << impulse.target();

  if (impulse.has_limits()) {
    const v1::DeviceLimits& limits = impulse.limits();
    out << YAML::Key << "limits" << YAML::Value << YAML::BeginMap;
    if (limits.latency_ms() != 0) {
      out << YAML::Key << "latency_ms" << YAML::Value << FormatFloat(limits.latency_ms(), false);
    }
    if (limits.ram_bytes() != 0) {
      out << YAML::Key << "ram_bytes" << YAML::Value << limits.ram_bytes();
    }
    if (limits.flash_bytes() != 0) {
      out << YAML::Key << "flash_bytes" << YAML::Value << limits.flash_bytes();
    }
    out << YAML::EndMap;
  }
  out << YAML::EndMap;
  return std::string(out.c_str()) + "\n";
}

Status ValidateImpulse(const v1::Impulse& impulse) { return Validator(nullptr, nullptr).Run(impulse); }

Status ValidateImpulse(const v1::Impulse& impulse, const std::vector<std::string>& target_ids) {
  return Validator(&target_ids, nullptr).Run(impulse);
}

v1::Impulse WithDefaults(v1::Impulse impulse) {
  v1::InputBlock* input = impulse.mutable_input();
  if (input->resize() == v1::RESIZE_MODE_UNSPECIFIED) input->set_resize(v1::RESIZE_MODE_SQUASH);
  v1::ProcessingBlock* processing = impulse.mutable_processing();
  if (processing->color() == v1::COLOR_DEPTH_UNSPECIFIED) {
    processing->set_color(v1::COLOR_DEPTH_RGB);
  }

  v1::TrainingSettings* training = impulse.mutable_training();
  if (training->epochs() == 0) training->set_epochs(kDefaultEpochs);
  if (training->learning_rate() == 0) training->set_learning_rate(kDefaultLearningRate);
  if (training->batch_size() == 0) training->set_batch_size(kDefaultBatchSize);
  if (training->validation_split() == 0) training->set_validation_split(kDefaultValidationSplit);
  if (training->seed() == 0) training->set_seed(kDefaultSeed);
  if (training->optimizer() == v1::OPTIMIZER_UNSPECIFIED) {
    training->set_optimizer(v1::OPTIMIZER_ADAM);
  }
  if (training->lr_step_gamma() == 0) training->set_lr_step_gamma(kDefaultLrStepGamma);

  if (impulse.target().empty()) impulse.set_target(std::string(kDefaultTarget));

  if (impulse.has_learning()) {
    v1::LearningBlock* learning = impulse.mutable_learning();
    if (learning->block() == v1::LEARNING_KIND_TRANSFER) {
      if (learning->backbone() == v1::BACKBONE_UNSPECIFIED) {
        learning->set_backbone(v1::BACKBONE_MOBILENET_V2);
      }
      if (learning->alpha() == 0) learning->set_alpha(kDefaultAlpha);
      if (learning->fine_tune_learning_rate() == 0) {
        learning->set_fine_tune_learning_rate(training->learning_rate() /
                                              kFineTuneLearningRateDivisor);
      }
    }
    for (v1::ConvLayer& layer : *learning->mutable_conv()) {
      if (layer.kernel_size() == 0) layer.set_kernel_size(kDefaultKernelSize);
    }
  }
  return impulse;
}

}  // namespace impulse
