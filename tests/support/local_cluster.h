// LocalCluster: a real cluster for end-to-end tests, run by
// deploy/local-cluster as processes (redis-server, the coordinator,
// workers) under a private state directory, and driven through
// impulse-client exactly as a user would.
//
//   auto cluster = LocalCluster::Up("--workers 2 --threads 1");
//   ASSERT_TRUE(cluster.ok()) << cluster.status().ToString();
//   CommandResult run = (*cluster)->Client("--project p list");
//
// The binaries come from the build directory the test was built in.
// One object belongs to one thread; `down --purge` runs when it dies.
#pragma once

#include <memory>
#include <string>

#include "impulse/status.h"
#include "tests/support/command.h"
#include "tests/support/temp_dir.h"

namespace impulse::testing {

class LocalCluster {
 public:
  // `deploy/local-cluster up UP_ARGS`; Unavailable with its output when
  // the cluster does not come up within 120 s.
  static Result<std::unique_ptr<LocalCluster>> Up(const std::string& up_args);
  ~LocalCluster();
  LocalCluster(const LocalCluster&) = delete;
  LocalCluster& operator=(const LocalCluster&) = delete;

  // The coordinator's HOST:PORT.
  const std::string& address() const { return address_; }

  // The shell command of one local-cluster step on this cluster, e.g.
  // Command("kill-worker 1") or Command("start-coordinator").
  std::string Command(const std::string& step) const;
  CommandResult Run(const std::string& step, int timeout_s = 60) const;

  // impulse-client ARGS against this cluster's coordinator.
  CommandResult Client(const std::string& args, int timeout_s = 300) const;

 private:
  LocalCluster() = default;

  TempDir state_;
  std::string address_;
};

// Writes the first `per_class` images of each class of the Fashion-MNIST
// IDX pair PREFIX ("train" or "t10k") from /usr/share/datasets as an
// uncompressed IDX pair PREFIX-*-ubyte into dir.
Status WriteFashionSubset(const std::string& prefix, const std::string& dir, int per_class);

}  // namespace impulse::testing
