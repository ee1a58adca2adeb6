#include "client/dataset_layout.h"

#include <gtest/gtest.h>
#include <unistd.h>
#include <zlib.h>

#include <filesystem>
#include <fstream>
#include <map>

#include "impulse/idx.h"
#include "impulse/sha256.h"

namespace impulse {
namespace {

namespace fs = std::filesystem;

class DatasetLayoutTest : public ::testing::Test {
 protected:
  void SetUp() override {
    root_ = fs::temp_directory_path() /
            ("dataset_layout_test_" + std::to_string(getpid()) + "_" +
             ::testing::UnitTest::GetInstance()->current_test_info()->name());
    fs::remove_all(root_);
    fs::create_directories(root_);
  }
  void TearDown() override { fs::remove_all(root_); }

  // Writes a file whose content is unique to its name unless given.
  fs::path Write(const std::string& relative, std::string content = "") {
    const fs::path path = root_ / relative;
    fs::create_directories(path.parent_path());
    std::ofstream(path, std::ios::binary) << (content.empty() ? "bytes of " + relative : content);
    return path;
  }

  // `count` images per class under `dir` ("" = the root).
  void WriteClasses(const std::string& dir, std::map<std::string, int> counts) {
    for (const auto& [label, count] : counts) {
      for (int i = 0; i < count; ++i) {
        Write((dir.empty() ? "" : dir + "/") + label + "/img" + std::to_string(i) + ".png");
      }
    }
  }

  fs::path root_;
};

std::map<std::string, int> CountSplit(const DatasetPlan& plan, v1::Split split) {
  std::map<std::string, int> counts;
  for (const v1::Sample& sample : plan.manifest.samples()) {
    if (sample.split() == split) ++counts[plan.manifest.labels(sample.label())];
  }
  return counts;
}

TEST_F(DatasetLayoutTest, ImageFolderSortsClassesAndSplitsStratified) {
  WriteClasses("", {{"zebra", 50}, {"ant", 30}, {"moth", 20}});
  Write("zebra/notes.txt");
  Write("ant/UPPER.JPG");
  Result<DatasetPlan> plan = ReadDataset(root_.string(), {.test_split = 0.2, .seed = 7});
  ASSERT_TRUE(plan.ok()) << plan.status().ToString();
  const v1::DatasetManifest& manifest = plan->manifest;
  EXPECT_EQ(manifest.layout(), "image-folder");
  EXPECT_EQ(manifest.name(), root_.filename().string());
  ASSERT_EQ(manifest.labels_size(), 3);
  EXPECT_EQ(manifest.labels(0), "ant");
  EXPECT_EQ(manifest.labels(2), "zebra");
  EXPECT_EQ(manifest.samples_size(), 101);
  EXPECT_EQ(manifest.sources_size(), 101);
  ASSERT_EQ(plan->source_paths.size(), 101u);

  EXPECT_EQ(CountSplit(*plan, v1::SPLIT_TEST),
            (std::map<std::string, int>{{"ant", 6}, {"moth", 4}, {"zebra", 10}}));
  EXPECT_EQ(CountSplit(*plan, v1::SPLIT_TRAIN),
            (std::map<std::string, int>{{"ant", 25}, {"moth", 16}, {"zebra", 40}}));

  for (int i = 0; i < manifest.sources_size(); ++i) {
    const v1::DataSource& source = manifest.sources(i);
    EXPECT_EQ(source.format(), v1::SOURCE_FORMAT_IMAGE_FILE);
    EXPECT_EQ(plan->source_paths[i], (root_ / source.name()).string());
    EXPECT_EQ(source.sha256(), Sha256File(plan->source_paths[i]).value());
  }
  bool warned_txt = false;
  for (const std::string& warning : plan->warnings) {
    warned_txt = warned_txt || warning.find("zebra/notes.txt") != std::string::npos;
  }
  EXPECT_TRUE(warned_txt);
}

TEST_F(DatasetLayoutTest, SplitIsDeterministicAndSeeded) {
  WriteClasses("", {{"a", 40}, {"b", 40}});
  const auto test_names = [&](uint64_t seed) {
    Result<DatasetPlan> plan = ReadDataset(root_.string(), {.test_split = 0.25, .seed = seed});
    EXPECT_TRUE(plan.ok());
    std::vector<std::string> names;
    for (const v1::Sample& s : plan->manifest.samples()) {
      if (s.split() == v1::SPLIT_TEST) names.push_back(plan->manifest.sources(s.source()).name());
    }
    return names;
  };
  const std::vector<std::string> first = test_names(1);
  EXPECT_EQ(first.size(), 20u);
  EXPECT_EQ(test_names(1), first);
  EXPECT_NE(test_names(2), first);
}

TEST_F(DatasetLayoutTest, ImageFolderWithTestingSubtree) {
  WriteClasses("training", {{"cat", 5}, {"dog", 4}});
  WriteClasses("testing", {{"cat", 2}, {"dog", 1}});
  Result<DatasetPlan> plan = ReadDataset(root_.string());
  ASSERT_TRUE(plan.ok()) << plan.status().ToString();
  EXPECT_EQ(CountSplit(*plan, v1::SPLIT_TRAIN),
            (std::map<std::string, int>{{"cat", 5}, {"dog", 4}}));
  EXPECT_EQ(CountSplit(*plan, v1::SPLIT_TEST),
            (std::map<std::string, int>{{"cat", 2}, {"dog", 1}}));
  EXPECT_EQ(plan->manifest.sources(0).name(), "training/cat/img0.png");
}

TEST_F(DatasetLayoutTest, TrainFolderWithoutTestIsSplit) {
  WriteClasses("train", {{"cat", 10}, {"dog", 10}});
  Result<DatasetPlan> plan = ReadDataset(root_.string(), {.test_split = 0.3});
  ASSERT_TRUE(plan.ok()) << plan.status().ToString();
  EXPECT_EQ(CountSplit(*plan, v1::SPLIT_TEST),
            (std::map<std::string, int>{{"cat", 3}, {"dog", 3}}));
}

TEST_F(DatasetLayoutTest, DuplicateFilesShareASource) {
  Write("a/one.png", "same");
  Write("b/two.png", "same");
  Write("b/three.png", "other");
  Result<DatasetPlan> plan = ReadDataset(root_.string());
  ASSERT_TRUE(plan.ok()) << plan.status().ToString();
  EXPECT_EQ(plan->manifest.samples_size(), 3);
  EXPECT_EQ(plan->manifest.sources_size(), 2);
  EXPECT_EQ(plan->source_paths.size(), 2u);
}

TEST_F(DatasetLayoutTest, RefusesOneClassEmptyAndUnknownLayouts) {
  WriteClasses("", {{"only", 3}});
  Result<DatasetPlan> one = ReadDataset(root_.string());
  ASSERT_FALSE(one.ok());
  EXPECT_EQ(one.status().code(), StatusCode::kInvalidArgument);
  EXPECT_NE(one.status().message().find("only one class ('only')"), std::string::npos);
  EXPECT_EQ(one.status().message().find('\n'), std::string::npos);

  const fs::path empty = root_ / "empty";
  fs::create_directories(empty);
  Result<DatasetPlan> none = ReadDataset(empty.string());
  ASSERT_FALSE(none.ok());
  EXPECT_NE(none.status().message().find("no samples found"), std::string::npos);

  Result<DatasetPlan> text = ReadDataset(Write("readme.txt").string());
  ASSERT_FALSE(text.ok());
  EXPECT_NE(text.status().message().find("not a dataset file"), std::string::npos);

  Result<DatasetPlan> missing = ReadDataset((root_ / "nope").string());
  ASSERT_FALSE(missing.ok());
  EXPECT_EQ(missing.status().code(), StatusCode::kInvalidArgument);

  EXPECT_FALSE(ReadDataset(root_.string(), {.test_split = 1.0}).ok());
}

TEST_F(DatasetLayoutTest, CsvWithSplitColumnAndMissingFile) {
  Write("img/a.png");
  Write("img/b.png");
  Write("img/c.png");
  const fs::path csv = Write("data.csv",
                             "path,label,split\n"
                             "img/a.png,shoe,train\n"
                             "img/b.png,\"bag, leather\",testing\n"
                             "img/gone.png,shoe,train\n"
                             "\n"
                             "img/c.png,\"bag, leather\",\n");
  Result<DatasetPlan> plan = ReadDataset(csv.string());
  ASSERT_TRUE(plan.ok()) << plan.status().ToString();
  const v1::DatasetManifest& manifest = plan->manifest;
  EXPECT_EQ(manifest.layout(), "csv");
  ASSERT_EQ(manifest.labels_size(), 2);
  EXPECT_EQ(manifest.labels(0), "bag, leather");
  EXPECT_EQ(manifest.samples_size(), 3);
  EXPECT_EQ(manifest.sources(0).name(), "img/a.png");
  EXPECT_EQ(manifest.samples(1).split(), v1::SPLIT_TEST);
  EXPECT_EQ(manifest.samples(2).split(), v1::SPLIT_TRAIN);  // unnamed: training data
  ASSERT_FALSE(plan->warnings.empty());
  EXPECT_NE(plan->warnings[0].find("data.csv line 4: img/gone.png does not exist"),
            std::string::npos);
}

TEST_F(DatasetLayoutTest, CsvWithoutSplitAndBadHeader) {
  std::string rows = "label,path\n";
  for (int i = 0; i < 10; ++i) {
    Write("x" + std::to_string(i) + ".jpg");
    rows += std::string(i % 2 ? "odd" : "even") + ",x" + std::to_string(i) + ".jpg\n";
  }
  Result<DatasetPlan> plan = ReadDataset(Write("list.csv", rows).string(), {.test_split = 0.2});
  ASSERT_TRUE(plan.ok()) << plan.status().ToString();
  EXPECT_EQ(CountSplit(*plan, v1::SPLIT_TEST),
            (std::map<std::string, int>{{"even", 1}, {"odd", 1}}));

  Result<DatasetPlan> bad = ReadDataset(Write("bad.csv", "file,class\nx0.jpg,a\n").string());
  ASSERT_FALSE(bad.ok());
  EXPECT_NE(bad.status().message().find("path and label"), std::string::npos);

  Result<DatasetPlan> bad_split =
      ReadDataset(Write("split.csv", "path,label,split\nx0.jpg,a,val\n").string());
  ASSERT_FALSE(bad_split.ok());
  EXPECT_NE(bad_split.status().message().find("split.csv line 2: split 'val'"), std::string::npos);
}

// ---- IDX

std::string BigEndian(uint32_t value) {
  return {static_cast<char>(value >> 24), static_cast<char>(value >> 16),
          static_cast<char>(value >> 8), static_cast<char>(value)};
}

void WriteGz(const fs::path& path, const std::string& bytes) {
  gzFile file = gzopen(path.c_str(), "wb");
  gzwrite(file, bytes.data(), static_cast<unsigned>(bytes.size()));
  gzclose(file);
}

void WriteIdxPair(const fs::path& dir, const std::string& prefix,
                  const std::vector<uint8_t>& labels) {
  std::string images = BigEndian(kIdxImagesMagic) + BigEndian(labels.size()) + BigEndian(2) +
                       BigEndian(2) + std::string(4 * labels.size(), '\x7f');
  WriteGz(dir / (prefix + "-images-idx3-ubyte.gz"), images);
  std::ofstream(dir / (prefix + "-labels-idx1-ubyte"), std::ios::binary)
      << BigEndian(kIdxLabelsMagic) + BigEndian(labels.size()) +
             std::string(labels.begin(), labels.end());
}

TEST_F(DatasetLayoutTest, IdxPairsWithT10kAsTest) {
  WriteIdxPair(root_, "train", {0, 1, 2, 1, 0, 2});
  WriteIdxPair(root_, "t10k", {2, 0});
  Result<DatasetPlan> plan = ReadDataset(root_.string());
  ASSERT_TRUE(plan.ok()) << plan.status().ToString();
  const v1::DatasetManifest& manifest = plan->manifest;
  EXPECT_EQ(manifest.layout(), "idx");
  EXPECT_EQ(std::vector<std::string>(manifest.labels().begin(), manifest.labels().end()),
            (std::vector<std::string>{"0", "1", "2"}));
  ASSERT_EQ(manifest.sources_size(), 2);
  EXPECT_EQ(manifest.sources(0).name(), "t10k-images-idx3-ubyte.gz");
  EXPECT_EQ(manifest.sources(0).format(), v1::SOURCE_FORMAT_IDX_IMAGES);
  EXPECT_EQ(manifest.sources(1).sha256(), Sha256File(plan->source_paths[1]).value());
  ASSERT_EQ(manifest.samples_size(), 8);
  EXPECT_EQ(manifest.samples(0).split(), v1::SPLIT_TEST);
  EXPECT_EQ(manifest.samples(0).label(), 2u);
  EXPECT_EQ(manifest.samples(3).source(), 1u);
  EXPECT_EQ(manifest.samples(3).index(), 1u);
  EXPECT_EQ(manifest.samples(3).label(), 1u);
  EXPECT_EQ(manifest.samples(3).split(), v1::SPLIT_TRAIN);
}

TEST_F(DatasetLayoutTest, IdxLabelsTxtNamesClasses) {
  WriteIdxPair(root_, "train", {0, 1, 1, 0, 1, 0, 0, 1, 1, 0});
  Write("labels.txt", "T-shirt/top\nTrouser\n\n");
  Result<DatasetPlan> plan = ReadDataset((root_ / "train-images-idx3-ubyte.gz").string());
  ASSERT_TRUE(plan.ok()) << plan.status().ToString();
  EXPECT_EQ(plan->manifest.labels(0), "T-shirt/top");
  EXPECT_EQ(plan->manifest.labels(1), "Trouser");
  // No t10k pair: a stratified split.
  EXPECT_EQ(CountSplit(*plan, v1::SPLIT_TEST),
            (std::map<std::string, int>{{"T-shirt/top", 1}, {"Trouser", 1}}));

  Write("labels.txt", "only-one\n");
  Result<DatasetPlan> short_names = ReadDataset(root_.string());
  ASSERT_FALSE(short_names.ok());
  EXPECT_NE(short_names.status().message().find("names 1 classes, but the labels go up to 1"),
            std::string::npos);
}

TEST_F(DatasetLayoutTest, IdxMismatchedAndMissingLabels) {
  WriteIdxPair(root_, "train", {0, 1, 1});
  std::ofstream(root_ / "train-labels-idx1-ubyte", std::ios::binary)
      << BigEndian(kIdxLabelsMagic) + BigEndian(2) + std::string("\x00\x01", 2);
  Result<DatasetPlan> plan = ReadDataset(root_.string());
  ASSERT_FALSE(plan.ok());
  EXPECT_NE(plan.status().message().find("2 labels for 3 images"), std::string::npos);

  fs::remove(root_ / "train-labels-idx1-ubyte");
  plan = ReadDataset(root_.string());
  ASSERT_FALSE(plan.ok());
  EXPECT_NE(plan.status().message().find("no matching train-labels-idx1-ubyte"), std::string::npos);
}

TEST(DatasetLayoutFashionMnistTest, ReadsTheRealDataset) {
  const char* dir = "/usr/share/datasets/fashion-mnist";
  if (!fs::exists(dir)) GTEST_SKIP() << dir << " is not installed";
  Result<DatasetPlan> plan = ReadDataset(dir);
  ASSERT_TRUE(plan.ok()) << plan.status().ToString();
  const v1::DatasetManifest& manifest = plan->manifest;
  EXPECT_EQ(manifest.name(), "fashion-mnist");
  EXPECT_EQ(manifest.layout(), "idx");
  EXPECT_EQ(manifest.labels_size(), 10);
  EXPECT_EQ(manifest.labels(9), "9");
  EXPECT_EQ(manifest.sources_size(), 2);
  EXPECT_EQ(manifest.samples_size(), 70000);
  int test = 0;
  for (const v1::Sample& sample : manifest.samples()) test += sample.split() == v1::SPLIT_TEST;
  EXPECT_EQ(test, 10000);
}

}  // namespace
}  // namespace impulse
