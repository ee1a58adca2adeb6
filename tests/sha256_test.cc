#include "impulse/sha256.h"

#include <gtest/gtest.h>

#include <cstdio>
#include <filesystem>
#include <fstream>

namespace impulse {
namespace {

constexpr char kEmptyHash[] = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";
constexpr char kAbcHash[] = "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad";

TEST(Sha256Test, KnownVectors) {
  EXPECT_EQ(Sha256Hex(""), kEmptyHash);
  EXPECT_EQ(Sha256Hex("abc"), kAbcHash);
}

TEST(Sha256Test, IncrementalMatchesOneShot) {
  Sha256 hash;
  hash.Update("a");
  hash.Update("");
  hash.Update(std::string_view("bc"));
  EXPECT_EQ(hash.FinishHex(), kAbcHash);
}

TEST(Sha256Test, FileLargerThanOneReadMatchesBytes) {
  const std::filesystem::path path =
      std::filesystem::temp_directory_path() / ("sha256_test_" + std::to_string(getpid()));
  std::string bytes(3 * (1 << 20) + 17, '\0');
  for (size_t i = 0; i < bytes.size(); ++i) bytes[i] = static_cast<char>(i * 31 + 7);
  std::ofstream(path, std::ios::binary) << bytes;
  Result<std::string> hash = Sha256File(path.string());
  std::filesystem::remove(path);
  ASSERT_TRUE(hash.ok()) << hash.status().ToString();
  EXPECT_EQ(*hash, Sha256Hex(bytes));
}

TEST(Sha256Test, MissingFileIsNotFoundAndNamesThePath) {
  Result<std::string> hash = Sha256File("/nonexistent/sha256_test");
  ASSERT_FALSE(hash.ok());
  EXPECT_EQ(hash.status().code(), StatusCode::kNotFound);
  EXPECT_NE(hash.status().message().find("/nonexistent/sha256_test"), std::string::npos);
}

}  // namespace
}  // namespace impulse
