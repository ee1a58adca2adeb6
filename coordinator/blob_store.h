// BlobStore: the coordinator's content-addressed bytes, named by the
// lowercase hex sha256 of their content.
//
// Bytes are shared across projects (one copy per content); which project may
// see a blob is the Store's business, not this one's.
// Thread-safe: every method may be called from any thread; concurrent writers
// of the same blob are safe (the last complete commit wins, and both are equal).
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>

#include "impulse/status.h"

namespace impulse::coordinator {

// Receives one blob's bytes in order. Nothing is visible until Commit()
// succeeds; a writer destroyed without Commit() leaves nothing behind.
class BlobWriter {
 public:
  virtual ~BlobWriter() = default;
  virtual Status Append(std::string_view bytes) = 0;
  // DataLoss when the bytes do not hash to the name given at creation.
  virtual Status Commit() = 0;
};

class BlobStore {
 public:
  virtual ~BlobStore() = default;

  virtual bool Has(const std::string& sha256) = 0;
  // NotFound when absent.
  virtual Result<uint64_t> Size(const std::string& sha256) = 0;
  // InvalidArgument when sha256 is not 64 lowercase hex digits.
  virtual Result<std::unique_ptr<BlobWriter>> NewWriter(const std::string& sha256) = 0;
  // Up to max_bytes from offset; empty at the end. NotFound when absent.
  virtual Result<std::string> Read(const std::string& sha256, uint64_t offset,
                                   uint64_t max_bytes) = 0;
  // OK when absent.
  virtual Status Delete(const std::string& sha256) = 0;
};

// Files under a directory: DIR/ab/abcdef... (the first two hex digits fan
// out the directory). Writes go to DIR/tmp and are renamed into place.
std::unique_ptr<BlobStore> NewFileBlobStore(const std::string& directory);

bool IsSha256Hex(std::string_view text);

}  // namespace impulse::coordinator
