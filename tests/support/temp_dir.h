// TempDir: a fresh directory under $TMPDIR (or /tmp), removed with all its
// content when the object dies.
//
// One object belongs to one thread; the directory itself may be used from
// any thread or process.
#pragma once

#include <string>

namespace impulse::testing {

class TempDir {
 public:
  // Aborts the test binary when no directory can be created: every test
  // using it would fail anyway, and a constructor cannot return a Status.
  TempDir();
  ~TempDir();
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;

  // The absolute path, without a trailing '/'.
  const std::string& path() const { return path_; }

 private:
  std::string path_;
};

}  // namespace impulse::testing
