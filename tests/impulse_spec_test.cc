#include "impulse/impulse_spec.h"

#include <google/protobuf/util/message_differencer.h>
#include <gtest/gtest.h>

namespace impulse {
namespace {

using google::protobuf::util::MessageDifferencer;

constexpr char kMinimal[] = R"(
name: tiny
input: { width: 28, height: 28 }
processing: { block: raw }
)";

constexpr char kFull[] = R"(
name: "full: every key"
input: { width: 96, height: 64, resize: fit-longest }
processing: { block: image, color: rgb }
learning:
  block: transfer
  backbone: mobilenet_v1
  alpha: 0.25
  weights: mobilenet_v1_0.25_imagenet
  dense: 16
  dropout: 0.1
  frozen_epochs: 5
  fine_tune: true
  fine_tune_learning_rate: 0.0001
training:
  epochs: 30
  learning_rate: 0.0005
  batch_size: 32
  validation_split: 0.15
  augmentation: true
  seed: 42
  optimizer: sgd
  lr_step_epochs: 10
  lr_step_gamma: 0.5
target: cortex-m7-480mhz
limits: { latency_ms: 12.5, ram_bytes: 256K, flash_bytes: 1M }
)";

constexpr char kClassification[] = R"(
name: conv
input: { width: 32, height: 32, resize: fit-shortest }
processing: { block: image, color: grayscale }
learning:
  block: classification
  conv: [ { filters: 8, kernel_size: 3, pool: 2 }, { filters: 16, dropout: 0.25 } ]
  dense_layers: [ { neurons: 32, dropout: 0.5 } ]
)";

v1::Impulse MustParse(std::string_view text) {
  Result<v1::Impulse> impulse = ParseImpulseYaml(text);
  EXPECT_TRUE(impulse.ok()) << impulse.status().ToString();
  return impulse.ok() ? impulse.value() : v1::Impulse();
}

// The message of parsing `text`, or "" when it parses.
std::string ErrorOf(std::string_view text) {
  Result<v1::Impulse> impulse = ParseImpulseYaml(text);
  if (impulse.ok()) return "";
  EXPECT_EQ(impulse.status().code(), StatusCode::kInvalidArgument);
  return impulse.status().message();
}

TEST(ImpulseSpecTest, ParsesEveryKey) {
  const v1::Impulse impulse = MustParse(kFull);
  EXPECT_EQ(impulse.name(), "full: every key");
  EXPECT_EQ(impulse.input().width(), 96u);
  EXPECT_EQ(impulse.input().resize(), v1::RESIZE_MODE_FIT_LONGEST);
  EXPECT_EQ(impulse.learning().block(), v1::LEARNING_KIND_TRANSFER);
  EXPECT_EQ(impulse.learning().backbone(), v1::BACKBONE_MOBILENET_V1);
  EXPECT_FLOAT_EQ(impulse.learning().alpha(), 0.25f);
  EXPECT_TRUE(impulse.learning().fine_tune());
  EXPECT_EQ(impulse.training().seed(), 42u);
  EXPECT_EQ(impulse.training().optimizer(), v1::OPTIMIZER_SGD);
  EXPECT_FLOAT_EQ(impulse.training().lr_step_gamma(), 0.5f);
  EXPECT_EQ(impulse.target(), "cortex-m7-480mhz");
  EXPECT_DOUBLE_EQ(impulse.limits().latency_ms(), 12.5);
  EXPECT_EQ(impulse.limits().ram_bytes(), 256u * 1024);
  EXPECT_EQ(impulse.limits().flash_bytes(), 1024u * 1024);
}

TEST(ImpulseSpecTest, RoundTrips) {
  for (const char* text : {kMinimal, kFull, kClassification}) {
    const v1::Impulse impulse = MustParse(text);
    const std::string yaml = ImpulseToYaml(impulse);
    const v1::Impulse again = MustParse(yaml);
    EXPECT_TRUE(MessageDifferencer::Equals(impulse, again)) << yaml << "\n---\n"
                                                            << impulse.DebugString() << "\n---\n"
                                                            << again.DebugString();
    EXPECT_EQ(ImpulseToYaml(again), yaml);
  }
  // With every default filled in too.
  const v1::Impulse filled = WithDefaults(MustParse(kFull));
  EXPECT_TRUE(MessageDifferencer::Equals(filled, MustParse(ImpulseToYaml(filled))));
}

TEST(ImpulseSpecTest, ExamplesLoad) {
  Result<v1::Impulse> full = LoadImpulseFile("examples/fashion-mnist.yaml");
  ASSERT_TRUE(full.ok()) << full.status().ToString();
  EXPECT_EQ(full->name(), "fashion-32");
  EXPECT_EQ(full->processing().color(), v1::COLOR_DEPTH_GRAYSCALE);
  EXPECT_EQ(full->learning().block(), v1::LEARNING_KIND_CLASSIFICATION);
  // The example's own settings (docs/IMPULSE.md, "The default network").
  EXPECT_EQ(full->training().epochs(), 10u);
  EXPECT_EQ(full->training().lr_step_epochs(), 7u);

  Result<v1::Impulse> features = LoadImpulseFile("examples/fashion-mnist-features.yaml");
  ASSERT_TRUE(features.ok()) << features.status().ToString();
  EXPECT_FALSE(features->has_learning());
}

TEST(ImpulseSpecTest, LoadMissingFileNamesIt) {
  Result<v1::Impulse> impulse = LoadImpulseFile("/nonexistent/impulse.yaml");
  ASSERT_FALSE(impulse.ok());
  EXPECT_EQ(impulse.status().code(), StatusCode::kNotFound);
  EXPECT_NE(impulse.status().message().find("/nonexistent/impulse.yaml"), std::string::npos);
}

TEST(ImpulseSpecTest, Defaults) {
  const v1::Impulse impulse = WithDefaults(MustParse(kMinimal));
  EXPECT_EQ(impulse.input().resize(), v1::RESIZE_MODE_SQUASH);
  EXPECT_EQ(impulse.processing().color(), v1::COLOR_DEPTH_RGB);
  EXPECT_FALSE(impulse.has_learning());
  EXPECT_EQ(impulse.training().epochs(), 20u);
  EXPECT_FLOAT_EQ(impulse.training().learning_rate(), 0.001f);
  EXPECT_EQ(impulse.training().batch_size(), 64u);
  EXPECT_FLOAT_EQ(impulse.training().validation_split(), 0.2f);
  EXPECT_EQ(impulse.training().seed(), 1u);
  EXPECT_EQ(impulse.training().optimizer(), v1::OPTIMIZER_ADAM);
  EXPECT_FALSE(impulse.training().augmentation());
  EXPECT_EQ(impulse.target(), "cortex-m4f-80mhz");
  EXPECT_TRUE(ValidateImpulse(impulse).ok());
  EXPECT_TRUE(MessageDifferencer::Equals(impulse, WithDefaults(impulse)));

  v1::Impulse transfer = MustParse(R"(
name: t
input: { width: 96, height: 96 }
processing: { block: image }
learning: { block: transfer }
training: { learning_rate: 0.01 }
)");
  transfer = WithDefaults(transfer);
  EXPECT_EQ(transfer.learning().backbone(), v1::BACKBONE_MOBILENET_V2);
  EXPECT_FLOAT_EQ(transfer.learning().alpha(), 0.35f);
  EXPECT_FLOAT_EQ(transfer.learning().fine_tune_learning_rate(), 0.001f);

  const v1::Impulse conv = WithDefaults(MustParse(kClassification));
  EXPECT_EQ(conv.learning().conv(1).kernel_size(), 3u);
  EXPECT_EQ(conv.learning().alpha(), 0.0f);  // classification has no width multiplier
}

TEST(ImpulseSpecTest, WireZerosMeanDefaults) {
  v1::Impulse impulse;
  impulse.set_name("wire");
  impulse.mutable_input()->set_width(32);
  impulse.mutable_input()->set_height(32);
  impulse.mutable_processing()->set_block(v1::PROCESSING_KIND_IMAGE);
  impulse.mutable_learning()->set_block(v1::LEARNING_KIND_TRANSFER);
  impulse.mutable_training();
  EXPECT_TRUE(ValidateImpulse(impulse).ok()) << ValidateImpulse(impulse).ToString();
}

TEST(ImpulseSpecTest, UnknownKeysAreRefusedByName) {
  EXPECT_EQ(ErrorOf("name: x\ninput: {width: 8, height: 8}\nprocessing: {block: raw}\ntrget: host"),
            "trget: unknown key (top level takes name, input, processing, learning, training, "
            "target, limits)");
  EXPECT_EQ(ErrorOf("name: x\ninput: {width: 8, widht: 8}\nprocessing: {block: raw}")
                .find("input.widht: unknown key"),
            0u);
  EXPECT_EQ(ErrorOf(R"(
name: x
input: {width: 32, height: 32}
processing: {block: image}
learning: {block: classification, conv: [{filters: 8, kernal_size: 3}]}
)")
                .find("learning.conv[0].kernal_size: unknown key"),
            0u);
  EXPECT_EQ(ErrorOf("name: x\ninput: {width: 8, height: 8}\nprocessing: {block: raw}\n"
                    "training: {epochs: 3, epochs: 4}"),
            "training.epochs: given twice");
}

struct BadCase {
  const char* yaml_tail;  // appended to a valid name/input/processing head
  const char* message;    // the whole expected message
};

TEST(ImpulseSpecTest, EachValidationErrorNamesItsField) {
  const BadCase cases[] = {
      {"input: {width: 0, height: 8}\nprocessing: {block: image}",
       "input.width: must be 1..4096, got 0"},
      {"input: {width: 8, height: 5000}\nprocessing: {block: image}",
       "input.height: must be 1..4096, got 5000"},
      {"input: {width: -3, height: 8}\nprocessing: {block: image}",
       "input.width: must not be negative, got -3"},
      {"input: {width: wide, height: 8}\nprocessing: {block: image}",
       "input.width: expected an integer, got 'wide'"},
      {"input: {width: 8, height: 8, resize: crop}\nprocessing: {block: image}",
       "input.resize: unknown mode 'crop' (squash | fit-shortest | fit-longest)"},
      {"input: {width: 8, height: 8}\nprocessing: {block: fft}",
       "processing.block: unknown block 'fft' (image | raw)"},
      {"input: {width: 8, height: 8}\nprocessing: {block: image, color: sepia}",
       "processing.color: unknown color 'sepia' (rgb | grayscale)"},
      {"input: {width: 8, height: 8}\nprocessing: {color: rgb}",
       "processing.block: required (image | raw)"},
      {"input: {width: 8}\nprocessing: {block: image}", "input.height: required (pixels, 1..4096)"},
      {"input: [8, 8]\nprocessing: {block: image}",
       "input: expected a mapping of keys (width, height, resize), got a list"},
      {"input: {width: 8, height: 8}\nprocessing: {block: image}\nlearning: {block: svm}",
       "learning.block: unknown block 'svm' (classification | transfer)"},
      {"input: {width: 16, height: 32}\nprocessing: {block: image}\nlearning: {block: transfer}",
       "input.width: transfer learning needs at least 32, got 16"},
      {"input: {width: 32, height: 32}\nprocessing: {block: image}\n"
       "learning: {block: transfer, backbone: mobilenet_v2, alpha: 0.25}",
       "learning.alpha: 0.25 is not a MobileNetV2 width (0.05 | 0.1 | 0.35 | 0.5 | 0.75 | 1)"},
      {"input: {width: 32, height: 32}\nprocessing: {block: image}\n"
       "learning: {block: transfer, backbone: mobilenet_v1, alpha: 0.05}",
       "learning.alpha: 0.05 is not a MobileNetV1 width (0.1 | 0.2 | 0.25 | 0.35 | 0.5 | 0.75 | "
       "1)"},
      {"input: {width: 32, height: 32}\nprocessing: {block: image}\n"
       "learning: {block: transfer, backbone: resnet}",
       "learning.backbone: unknown backbone 'resnet' (mobilenet_v1 | mobilenet_v2)"},
      {"input: {width: 32, height: 32}\nprocessing: {block: image}\n"
       "learning: {block: transfer, dropout: 1.5}",
       "learning.dropout: must be a fraction in [0, 1), got 1.5"},
      {"input: {width: 32, height: 32}\nprocessing: {block: image}\n"
       "learning: {block: transfer, frozen_epochs: 30}",
       "learning.frozen_epochs: must be at most training.epochs (20), got 30"},
      {"input: {width: 32, height: 32}\nprocessing: {block: image}\n"
       "learning: {block: classification, alpha: 0.35}",
       "learning.alpha: only for block: transfer (classification uses conv and dense_layers)"},
      {"input: {width: 32, height: 32}\nprocessing: {block: image}\n"
       "learning: {block: classification, conv: [{filters: 0}]}",
       "learning.conv[0].filters: must be 1..4096, got 0"},
      {"input: {width: 32, height: 32}\nprocessing: {block: image}\n"
       "learning: {block: classification, conv: [{filters: 4, kernel_size: 4}]}",
       "learning.conv[0].kernel_size: must be odd, 1..15, got 4"},
      {"input: {width: 32, height: 32}\nprocessing: {block: image}\n"
       "learning: {block: classification, dense_layers: [{neurons: 8, dropout: -0.1}]}",
       "learning.dense_layers[0].dropout: must be a fraction in [0, 1), got -0.1"},
      {"input: {width: 32, height: 32}\nprocessing: {block: raw}\n"
       "learning: {block: classification, conv: [{filters: 4}]}",
       "learning.conv: processing.block raw feeds a dense network; leave conv out or use "
       "processing.block image"},
      {"input: {width: 8, height: 8}\nprocessing: {block: image}\nlearning: {dense: 3}",
       "learning.block: required (classification | transfer); leave learning out to generate "
       "features only"},
      {"input: {width: 8, height: 8}\nprocessing: {block: image}\n"
       "learning: {block: classification}\ntraining: {epochs: 0}",
       "training.epochs: must be 1..10000, got 0"},
      {"input: {width: 8, height: 8}\nprocessing: {block: image}\ntraining: {learning_rate: 0}",
       "training.learning_rate: must be in (0, 10], got 0"},
      {"input: {width: 8, height: 8}\nprocessing: {block: image}\ntraining: {batch_size: 0}",
       "training.batch_size: must be 1..65536, got 0"},
      {"input: {width: 8, height: 8}\nprocessing: {block: image}\n"
       "training: {validation_split: 1}",
       "training.validation_split: must be a fraction in (0, 1), got 1"},
      {"input: {width: 8, height: 8}\nprocessing: {block: image}\n"
       "training: {augmentation: maybe}",
       "training.augmentation: expected true or false, got 'maybe'"},
      {"input: {width: 8, height: 8}\nprocessing: {block: image}\ntraining: {optimizer: rmsprop}",
       "training.optimizer: unknown optimizer 'rmsprop' (adam | sgd)"},
      {"input: {width: 8, height: 8}\nprocessing: {block: image}\n"
       "training: {lr_step_gamma: 2}",
       "training.lr_step_gamma: must be in (0, 1], got 2"},
      {"input: {width: 8, height: 8}\nprocessing: {block: image}\ntarget: Arduino Uno",
       "target: 'Arduino Uno' is not a device id (lower-case letters, digits, '.', '_', '-')"},
      {"input: {width: 8, height: 8}\nprocessing: {block: image}\nlimits: {ram_bytes: 12X}",
       "limits.ram_bytes: expected a size in bytes (4096, 256K, 1M, 2G), got '12X'"},
      {"input: {width: 8, height: 8}\nprocessing: {block: image}\nlimits: {latency_ms: -1}",
       "limits.latency_ms: must be >= 0 (0 = no limit), got -1"},
  };
  for (const BadCase& c : cases) {
    EXPECT_EQ(ErrorOf(std::string("name: bad\n") + c.yaml_tail), c.message) << c.yaml_tail;
  }
}

TEST(ImpulseSpecTest, RequiredSectionsAndSyntax) {
  EXPECT_EQ(ErrorOf("input: {width: 8, height: 8}\nprocessing: {block: raw}"),
            "name: required (a short name for the impulse)");
  EXPECT_EQ(ErrorOf("name: x\nprocessing: {block: raw}"),
            "input: required ({width, height, resize})");
  EXPECT_EQ(ErrorOf("name: x\ninput: {width: 8, height: 8}").find("processing: required"), 0u);
  EXPECT_EQ(ErrorOf("name: x\ninput: {width: 8").find("impulse YAML, line "), 0u);
  EXPECT_EQ(ErrorOf("- just\n- a list").find("impulse: expected a mapping"), 0u);
}

TEST(ImpulseSpecTest, SizeSuffixes) {
  const v1::Impulse impulse = MustParse(
      "name: x\ninput: {width: 8, height: 8}\nprocessing: {block: raw}\n"
      "limits: {ram_bytes: 64k, flash_bytes: 2G}");
  EXPECT_EQ(impulse.limits().ram_bytes(), 64u * 1024);
  EXPECT_EQ(impulse.limits().flash_bytes(), 2ull << 30);
}

TEST(ImpulseSpecTest, ValidateTakesAnotherCatalog) {
  v1::Impulse impulse = MustParse(kMinimal);
  impulse.set_target("my-board");
  EXPECT_TRUE(ValidateImpulse(impulse).ok());  // any well-formed id without a catalog
  EXPECT_TRUE(ValidateImpulse(impulse, {"my-board"}).ok());
  EXPECT_EQ(ValidateImpulse(impulse, {"a", "b"}).message(), "target: unknown device 'my-board' (a | b)");
}

}  // namespace
}  // namespace impulse
