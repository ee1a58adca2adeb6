#include "impulse/idx.h"

#include <gtest/gtest.h>
#include <unistd.h>
#include <zlib.h>

#include <filesystem>
#include <fstream>

namespace impulse {
namespace {

namespace fs = std::filesystem;

std::string BigEndian(uint32_t value) {
  return {static_cast<char>(value >> 24), static_cast<char>(value >> 16),
          static_cast<char>(value >> 8), static_cast<char>(value)};
}

// Two 2x3 images: pixel k of image i is 10 * i + k.
std::string SmallImagesFile() {
  std::string bytes = BigEndian(kIdxImagesMagic) + BigEndian(2) + BigEndian(2) + BigEndian(3);
  for (int i = 0; i < 2; ++i) {
    for (int k = 0; k < 6; ++k) bytes += static_cast<char>(10 * i + k);
  }
  return bytes;
}

std::string SmallLabelsFile() {
  return BigEndian(kIdxLabelsMagic) + BigEndian(3) + std::string("\x01\x00\x09", 3);
}

class IdxTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::temp_directory_path() / ("idx_test_" + std::to_string(getpid()));
    fs::create_directories(dir_);
  }
  void TearDown() override { fs::remove_all(dir_); }

  std::string Write(const std::string& name, const std::string& bytes) {
    const fs::path path = dir_ / name;
    std::ofstream(path, std::ios::binary) << bytes;
    return path.string();
  }
  std::string WriteGz(const std::string& name, const std::string& bytes) {
    const fs::path path = dir_ / name;
    gzFile file = gzopen(path.c_str(), "wb");
    gzwrite(file, bytes.data(), static_cast<unsigned>(bytes.size()));
    gzclose(file);
    return path.string();
  }

  fs::path dir_;
};

TEST_F(IdxTest, ReadsImagesRowMajor) {
  Result<IdxImages> images = ReadIdxImages(Write("a-images-idx3-ubyte", SmallImagesFile()));
  ASSERT_TRUE(images.ok()) << images.status().ToString();
  EXPECT_EQ(images->count, 2u);
  EXPECT_EQ(images->rows, 2u);
  EXPECT_EQ(images->cols, 3u);
  ASSERT_EQ(images->pixels.size(), 12u);
  EXPECT_EQ(images->pixels[0], 0);
  EXPECT_EQ(images->pixels[5], 5);   // image 0, row 1, col 2
  EXPECT_EQ(images->pixels[6], 10);  // image 1 starts
  EXPECT_EQ(images->pixels[11], 15);
}

TEST_F(IdxTest, ReadsGzippedFilesTheSame) {
  Result<IdxImages> plain = ReadIdxImages(Write("p-images-idx3-ubyte", SmallImagesFile()));
  Result<IdxImages> gz = ReadIdxImages(WriteGz("g-images-idx3-ubyte.gz", SmallImagesFile()));
  ASSERT_TRUE(gz.ok()) << gz.status().ToString();
  EXPECT_EQ(gz->pixels, plain->pixels);

  Result<std::vector<uint8_t>> labels = ReadIdxLabels(WriteGz("l.gz", SmallLabelsFile()));
  ASSERT_TRUE(labels.ok()) << labels.status().ToString();
  EXPECT_EQ(*labels, (std::vector<uint8_t>{1, 0, 9}));

  Result<IdxHeader> header = ReadIdxHeader(dir_ / "g-images-idx3-ubyte.gz");
  ASSERT_TRUE(header.ok());
  EXPECT_TRUE(header->gzipped);
  EXPECT_TRUE(header->is_images());
  EXPECT_EQ(header->dims, (std::vector<uint32_t>{2, 2, 3}));
}

TEST_F(IdxTest, TruncatedFileNamesFileAndProblem) {
  std::string bytes = SmallImagesFile();
  bytes.resize(bytes.size() - 1);
  const std::string path = Write("t-images-idx3-ubyte", bytes);
  Result<IdxImages> images = ReadIdxImages(path);
  ASSERT_FALSE(images.ok());
  EXPECT_EQ(images.status().code(), StatusCode::kInvalidArgument);
  EXPECT_NE(images.status().message().find(path), std::string::npos);
  EXPECT_NE(images.status().message().find("truncated"), std::string::npos);

  Result<IdxHeader> header = ReadIdxHeader(Write("h", BigEndian(kIdxImagesMagic) + "\0\0"));
  ASSERT_FALSE(header.ok());
  EXPECT_NE(header.status().message().find("truncated"), std::string::npos);
}

TEST_F(IdxTest, TruncatedGzipStreamIsAnError) {
  const std::string path = WriteGz("z-images-idx3-ubyte.gz", SmallImagesFile());
  const auto size = fs::file_size(path);
  fs::resize_file(path, size - 10);
  EXPECT_FALSE(ReadIdxImages(path).ok());
}

TEST_F(IdxTest, BadMagicTrailingBytesAndWrongKind) {
  Result<IdxImages> bad = ReadIdxImages(Write("bad", BigEndian(0x00000802) + BigEndian(1)));
  ASSERT_FALSE(bad.ok());
  EXPECT_NE(bad.status().message().find("bad magic 0x00000802"), std::string::npos);

  Result<IdxImages> trailing = ReadIdxImages(Write("trail", SmallImagesFile() + "x"));
  ASSERT_FALSE(trailing.ok());
  EXPECT_NE(trailing.status().message().find("size mismatch"), std::string::npos);

  Result<IdxImages> labels_as_images = ReadIdxImages(Write("lab", SmallLabelsFile()));
  ASSERT_FALSE(labels_as_images.ok());
  EXPECT_NE(labels_as_images.status().message().find("labels file"), std::string::npos);

  Result<std::vector<uint8_t>> images_as_labels = ReadIdxLabels(Write("img", SmallImagesFile()));
  EXPECT_FALSE(images_as_labels.ok());
}

TEST_F(IdxTest, MissingFileIsNotFound) {
  Result<IdxImages> images = ReadIdxImages((dir_ / "nope").string());
  ASSERT_FALSE(images.ok());
  EXPECT_EQ(images.status().code(), StatusCode::kNotFound);
}

constexpr char kFashionMnist[] = "/usr/share/datasets/fashion-mnist";

TEST(IdxFashionMnistTest, RealHeaders) {
  if (!fs::exists(kFashionMnist)) GTEST_SKIP() << kFashionMnist << " is not installed";
  const std::string dir = kFashionMnist;
  Result<IdxHeader> train = ReadIdxHeader(dir + "/train-images-idx3-ubyte.gz");
  ASSERT_TRUE(train.ok()) << train.status().ToString();
  EXPECT_TRUE(train->gzipped);
  EXPECT_EQ(train->dims, (std::vector<uint32_t>{60000, 28, 28}));
  Result<IdxHeader> test_labels = ReadIdxHeader(dir + "/t10k-labels-idx1-ubyte.gz");
  ASSERT_TRUE(test_labels.ok());
  EXPECT_TRUE(test_labels->is_labels());
  EXPECT_EQ(test_labels->count(), 10000u);

  Result<IdxImages> images = ReadIdxImages(dir + "/t10k-images-idx3-ubyte.gz");
  ASSERT_TRUE(images.ok()) << images.status().ToString();
  EXPECT_EQ(images->pixels.size(), 10000u * 28 * 28);
  Result<std::vector<uint8_t>> labels = ReadIdxLabels(dir + "/t10k-labels-idx1-ubyte.gz");
  ASSERT_TRUE(labels.ok());
  EXPECT_EQ(labels->size(), 10000u);
  EXPECT_EQ(*std::max_element(labels->begin(), labels->end()), 9);
}

}  // namespace
}  // namespace impulse
