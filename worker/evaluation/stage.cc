#include "worker/evaluation/stage.h"

#include <filesystem>

namespace impulse::worker::evaluation {

Status AddArtifact(TaskContext& ctx, const std::string& path, const std::string& name,
                   v1::TaskOutput& output) {
  IMPULSE_ASSIGN_OR_RETURN(std::string sha256, ctx.PutBlob(path));
  std::error_code error;
  const uintmax_t size = std::filesystem::file_size(path, error);
  if (error) return Internal("cannot stat " + path + ": " + error.message());
  v1::Artifact* artifact = output.add_artifacts();
  artifact->set_name(name);
  artifact->set_sha256(sha256);
  artifact->set_size(size);
  return Status::Ok();
}

}  // namespace impulse::worker::evaluation
