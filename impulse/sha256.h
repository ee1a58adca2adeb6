// SHA-256 as lowercase hex: the content address of every blob, dataset
// source and manifest (OpenSSL EVP underneath).
//
// Thread safety: the free functions may be called from any thread; one
// Sha256 object belongs to one thread at a time.
#pragma once

#include <memory>
#include <string>
#include <string_view>

#include "impulse/status.h"

namespace impulse {

// The digest of `bytes`, 64 lowercase hex characters.
std::string Sha256Hex(std::string_view bytes);

// An incremental digest: Update() any number of times, then FinishHex() once.
class Sha256 {
 public:
  Sha256();
  ~Sha256();
  Sha256(const Sha256&) = delete;
  Sha256& operator=(const Sha256&) = delete;
  Sha256(Sha256&&) noexcept;
  Sha256& operator=(Sha256&&) noexcept;

  void Update(std::string_view bytes);
  void Update(const void* data, size_t size);

  // The digest of everything passed to Update(). REQUIRES: called once;
  // afterwards the object only accepts destruction or assignment.
  std::string FinishHex();

 private:
  struct Ctx;
  std::unique_ptr<Ctx> ctx_;
};

// The digest of a file's content, read in 1 MiB pieces (memory stays flat
// whatever the file's size). NotFound when the file cannot be opened,
// Internal on a read error; the message names the path.
Result<std::string> Sha256File(const std::string& path);

}  // namespace impulse
