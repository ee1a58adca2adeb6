// The feature matrix file: round trip and every kind of damage a reader
// must name.
#include "worker/features/feature_matrix.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>

#include "tests/support/temp_dir.h"

namespace impulse::worker::features {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;

class FeatureMatrixTest : public ::testing::Test {
 protected:
  void SetUp() override {
    path_ = dir_.path() + "/features.bin";
    shape_.channels = 1;
    shape_.height = 2;
    shape_.width = 2;
    shape_.labels = {"cat", "dog"};
    auto writer = FeatureMatrixWriter::Create(path_, shape_, 3);
    ASSERT_TRUE(writer.ok()) << writer.status().ToString();
    const uint8_t a[4] = {1, 2, 3, 4}, b[4] = {5, 6, 7, 8};
    ASSERT_TRUE((*writer)->Append({1, 1, 7}, a).ok());
    ASSERT_TRUE((*writer)->Append({0, 2, 9}, b).ok());
    ASSERT_TRUE((*writer)->Finish().ok());
  }

  std::string Read() {
    std::ifstream in(path_, std::ios::binary);
    return std::string(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
  }
  void Overwrite(const std::string& bytes) { std::ofstream(path_, std::ios::binary) << bytes; }
  std::string OpenError() {
    Result<FeatureMatrix> m = FeatureMatrix::Open(path_);
    EXPECT_FALSE(m.ok());
    return m.ok() ? "" : m.status().message();
  }

  testing::TempDir dir_;
  std::string path_;
  FeatureShape shape_;
};

TEST_F(FeatureMatrixTest, RoundTrip) {
  Result<FeatureMatrix> m = FeatureMatrix::Open(path_);
  ASSERT_TRUE(m.ok()) << m.status().ToString();
  EXPECT_EQ(m->rows(), 2u);
  EXPECT_EQ(m->shape().channels, 1u);
  EXPECT_EQ(m->shape().row_bytes(), 4u);
  EXPECT_THAT(m->shape().labels, ElementsAre("cat", "dog"));
  EXPECT_EQ(m->info(0).label, 1u);
  EXPECT_EQ(m->info(0).split, 1);
  EXPECT_EQ(m->info(1).sample, 9u);
  EXPECT_THAT(std::vector<uint8_t>(m->pixels(1), m->pixels(1) + 4), ElementsAre(5, 6, 7, 8));
  // Pixels start on a 64-byte boundary; the file ends at the last row.
  EXPECT_EQ(std::filesystem::file_size(path_) % 64, 8u);
}

TEST_F(FeatureMatrixTest, WriterRefusesRowsBeyondItsCapacity) {
  auto writer = FeatureMatrixWriter::Create(dir_.path() + "/small.bin", shape_, 1);
  ASSERT_TRUE(writer.ok());
  const uint8_t a[4] = {};
  ASSERT_TRUE((*writer)->Append({0, 1, 0}, a).ok());
  EXPECT_EQ((*writer)->Append({0, 1, 1}, a).code(), StatusCode::kFailedPrecondition);
}

TEST_F(FeatureMatrixTest, MissingFileIsNotFound) {
  Result<FeatureMatrix> m = FeatureMatrix::Open(dir_.path() + "/nope.bin");
  EXPECT_EQ(m.status().code(), StatusCode::kNotFound);
  EXPECT_THAT(m.status().message(), HasSubstr("nope.bin"));
}

TEST_F(FeatureMatrixTest, BadMagic) {
  std::string bytes = Read();
  bytes[0] = 'X';
  Overwrite(bytes);
  EXPECT_THAT(OpenError(), HasSubstr("bad magic"));
}

TEST_F(FeatureMatrixTest, UnsupportedVersion) {
  std::string bytes = Read();
  bytes[8] = 9;
  Overwrite(bytes);
  EXPECT_THAT(OpenError(), HasSubstr("unsupported version 9"));
}

TEST_F(FeatureMatrixTest, TruncatedAndTrailingBytes) {
  const std::string bytes = Read();
  Overwrite(bytes.substr(0, bytes.size() - 1));
  EXPECT_THAT(OpenError(), HasSubstr("truncated"));
  Overwrite(bytes + "x");
  EXPECT_THAT(OpenError(), HasSubstr("trailing"));
  Overwrite(bytes.substr(0, 20));
  EXPECT_THAT(OpenError(), HasSubstr("shorter than the header"));
}

TEST_F(FeatureMatrixTest, RowLabelAndSplitAreChecked) {
  // Row table starts after the fixed header (56) and labels (4+3, 4+3).
  const size_t table = 56 + 7 + 7;
  std::string bytes = Read();
  bytes[table] = 5;  // row 0's label
  Overwrite(bytes);
  EXPECT_THAT(OpenError(), HasSubstr("row 0 has label 5"));
  bytes = Read();
  bytes[table] = 1;
  bytes[table + 9 + 4] = 3;  // row 1's split
  Overwrite(bytes);
  EXPECT_THAT(OpenError(), HasSubstr("row 1 has split 3"));
}

TEST_F(FeatureMatrixTest, BadChannelsAreNamed) {
  std::string bytes = Read();
  bytes[16] = 2;
  Overwrite(bytes);
  EXPECT_THAT(OpenError(), HasSubstr("channels is 2"));
}

}  // namespace
}  // namespace impulse::worker::features
