// FileBlobStore against a real directory.
#include <gtest/gtest.h>

#include <filesystem>
#include <vector>

#include "coordinator/blob_store.h"
#include "impulse/sha256.h"
#include "tests/support/temp_dir.h"

namespace impulse::coordinator {
namespace {

namespace fs = std::filesystem;

// Every regular file under `dir`, recursively.
int CountFiles(const std::string& dir) {
  int files = 0;
  for (const auto& entry : fs::recursive_directory_iterator(dir)) files += entry.is_regular_file();
  return files;
}

class FileBlobStoreTest : public ::testing::Test {
 protected:
  testing::TempDir dir_;
  std::unique_ptr<BlobStore> store_ = NewFileBlobStore(dir_.path());
};

TEST_F(FileBlobStoreTest, WriteThenReadHasSize) {
  const std::string bytes = "hello, blobs";
  const std::string sha = Sha256Hex(bytes);
  EXPECT_FALSE(store_->Has(sha));
  auto writer = store_->NewWriter(sha);
  ASSERT_TRUE(writer.ok()) << writer.status().ToString();
  ASSERT_TRUE((*writer)->Append("hello, ").ok());
  ASSERT_TRUE((*writer)->Append("blobs").ok());
  EXPECT_FALSE(store_->Has(sha)) << "visible before Commit";
  ASSERT_TRUE((*writer)->Commit().ok());

  EXPECT_TRUE(store_->Has(sha));
  EXPECT_TRUE(fs::exists(dir_.path() + "/" + sha.substr(0, 2) + "/" + sha));
  auto size = store_->Size(sha);
  ASSERT_TRUE(size.ok());
  EXPECT_EQ(*size, bytes.size());
  EXPECT_EQ(store_->Read(sha, 0, 100).value(), bytes);
  EXPECT_EQ(store_->Read(sha, 7, 3).value(), "blo");
  EXPECT_EQ(store_->Read(sha, bytes.size(), 10).value(), "");
  EXPECT_EQ(store_->Read(sha, bytes.size() + 5, 10).value(), "");

  ASSERT_TRUE(store_->Delete(sha).ok());
  EXPECT_FALSE(store_->Has(sha));
  EXPECT_TRUE(store_->Delete(sha).ok()) << "deleting an absent blob is OK";
}

TEST_F(FileBlobStoreTest, AbsentBlobIsNotFound) {
  const std::string sha = Sha256Hex("never written");
  EXPECT_EQ(store_->Size(sha).status().code(), StatusCode::kNotFound);
  EXPECT_EQ(store_->Read(sha, 0, 1).status().code(), StatusCode::kNotFound);
}

TEST_F(FileBlobStoreTest, MismatchIsDataLossAndKeepsNothing) {
  const std::string sha = Sha256Hex("the real content");
  auto writer = store_->NewWriter(sha);
  ASSERT_TRUE(writer.ok());
  ASSERT_TRUE((*writer)->Append("something else").ok());
  EXPECT_EQ((*writer)->Commit().code(), StatusCode::kDataLoss);
  writer->reset();
  EXPECT_FALSE(store_->Has(sha));
  EXPECT_EQ(CountFiles(dir_.path()), 0);
}

TEST_F(FileBlobStoreTest, AbandonedWriterLeavesNothing) {
  const std::string sha = Sha256Hex("abandoned");
  {
    auto writer = store_->NewWriter(sha);
    ASSERT_TRUE(writer.ok());
    ASSERT_TRUE((*writer)->Append("aband").ok());
    EXPECT_EQ(CountFiles(dir_.path()), 1) << "the temp file exists while writing";
  }
  EXPECT_FALSE(store_->Has(sha));
  EXPECT_EQ(CountFiles(dir_.path()), 0);
}

TEST_F(FileBlobStoreTest, RejectsNamesThatAreNotSha256) {
  for (const std::string& bad :
       std::vector<std::string>{"", "../etc/passwd", std::string(64, 'A'), std::string(63, 'a')}) {
    EXPECT_FALSE(IsSha256Hex(bad)) << bad;
    EXPECT_EQ(store_->NewWriter(bad).status().code(), StatusCode::kInvalidArgument) << bad;
    EXPECT_FALSE(store_->Has(bad));
  }
  EXPECT_TRUE(IsSha256Hex(Sha256Hex("x")));
}

TEST_F(FileBlobStoreTest, TwoWritersOfTheSameBlobBothCommit) {
  const std::string bytes = "same content twice";
  const std::string sha = Sha256Hex(bytes);
  auto first = store_->NewWriter(sha);
  auto second = store_->NewWriter(sha);
  ASSERT_TRUE(first.ok() && second.ok());
  ASSERT_TRUE((*first)->Append(bytes).ok());
  ASSERT_TRUE((*second)->Append(bytes).ok());
  ASSERT_TRUE((*first)->Commit().ok());
  ASSERT_TRUE((*second)->Commit().ok());
  EXPECT_EQ(store_->Read(sha, 0, 100).value(), bytes);
  EXPECT_EQ(CountFiles(dir_.path()), 1);
}

}  // namespace
}  // namespace impulse::coordinator
