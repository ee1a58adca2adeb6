#include "tests/support/local_cluster.h"

#include <filesystem>
#include <fstream>
#include <sstream>

#include "impulse/idx.h"

namespace impulse::testing {
namespace {

const std::string kSource = IMPULSE_SOURCE_DIR;
const std::string kBuild = IMPULSE_BUILD_DIR;
const std::string kFashion = "/usr/share/datasets/fashion-mnist";

}  // namespace

Result<std::unique_ptr<LocalCluster>> LocalCluster::Up(const std::string& up_args) {
  std::unique_ptr<LocalCluster> cluster(new LocalCluster());
  CommandResult up = RunCommand(cluster->Command("up " + up_args), 120);
  // `up` prints the address as the last line on stdout.
  std::istringstream lines(up.stdout_text);
  for (std::string line; std::getline(lines, line);) {
    if (!line.empty()) cluster->address_ = line;
  }
  if (up.exit_code != 0 || cluster->address_.empty()) {
    return Unavailable("local-cluster up failed: " + up.output);
  }
  return cluster;
}

LocalCluster::~LocalCluster() { RunCommand(Command("down --purge"), 60); }

std::string LocalCluster::Command(const std::string& step) const {
  return "BUILD_DIR=" + ShellQuote(kBuild) + " " + ShellQuote(kSource + "/deploy/local-cluster") +
         " " + step + " --state-dir " + ShellQuote(state_.path() + "/cluster");
}

CommandResult LocalCluster::Run(const std::string& step, int timeout_s) const {
  return RunCommand(Command(step), timeout_s);
}

CommandResult LocalCluster::Client(const std::string& args, int timeout_s) const {
  return RunCommand(
      ShellQuote(kBuild + "/client/impulse-client") + " --coordinator " + address_ + " " + args,
      timeout_s);
}

Status WriteFashionSubset(const std::string& prefix, const std::string& dir, int per_class) {
  IMPULSE_ASSIGN_OR_RETURN(auto images,
                           ReadIdxImages(kFashion + "/" + prefix + "-images-idx3-ubyte.gz"));
  IMPULSE_ASSIGN_OR_RETURN(auto labels,
                           ReadIdxLabels(kFashion + "/" + prefix + "-labels-idx1-ubyte.gz"));
  std::vector<int> taken(10, 0);
  std::string pixels, kept_labels;
  const size_t size = static_cast<size_t>(images.rows) * images.cols;
  for (uint32_t i = 0; i < images.count; ++i) {
    if (taken[labels[i]]++ >= per_class) continue;
    pixels.append(reinterpret_cast<const char*>(images.pixels.data()) + i * size, size);
    kept_labels.push_back(static_cast<char>(labels[i]));
  }
  auto be32 = [](uint32_t v) {
    return std::string{static_cast<char>(v >> 24), static_cast<char>(v >> 16),
                       static_cast<char>(v >> 8), static_cast<char>(v)};
  };
  const auto count = static_cast<uint32_t>(kept_labels.size());
  std::filesystem::create_directories(dir);
  std::ofstream(dir + "/" + prefix + "-images-idx3-ubyte", std::ios::binary)
      << be32(0x803) << be32(count) << be32(images.rows) << be32(images.cols) << pixels;
  std::ofstream(dir + "/" + prefix + "-labels-idx1-ubyte", std::ios::binary)
      << be32(0x801) << be32(count) << kept_labels;
  return Status::Ok();
}

}  // namespace impulse::testing
