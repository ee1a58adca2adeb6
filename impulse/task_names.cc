#include "impulse/task_names.h"

namespace impulse {
namespace {

// "JOB_STATE_SUCCEEDED" -> "SUCCEEDED": the proto names carry a prefix.
std::string StripPrefix(const std::string& full, std::string_view prefix) {
  if (full.rfind(prefix, 0) == 0) return full.substr(prefix.size());
  return full;
}

}  // namespace

std::string TaskKindName(v1::TaskKind kind) {
  switch (kind) {
    case v1::TASK_KIND_GENERATE_FEATURES: return "generate-features";
    case v1::TASK_KIND_TRAIN: return "train";
    case v1::TASK_KIND_QUANTIZE_EVALUATE: return "quantize-evaluate";
    default: return "unspecified";
  }
}

std::optional<v1::TaskKind> ParseTaskKind(std::string_view name) {
  for (auto kind : {v1::TASK_KIND_GENERATE_FEATURES, v1::TASK_KIND_TRAIN,
                    v1::TASK_KIND_QUANTIZE_EVALUATE}) {
    if (TaskKindName(kind) == name) return kind;
  }
  return std::nullopt;
}

std::string JobStateName(v1::JobState state) {
  return StripPrefix(v1::JobState_Name(state), "JOB_STATE_");
}

std::string TaskStateName(v1::TaskState state) {
  return StripPrefix(v1::TaskState_Name(state), "TASK_STATE_");
}

std::string JobKindName(v1::JobKind kind) {
  switch (kind) {
    case v1::JOB_KIND_FEATURES: return "features";
    case v1::JOB_KIND_TRAIN: return "train";
    case v1::JOB_KIND_TUNE: return "tune";
    default: return "unspecified";
  }
}

bool IsTerminal(v1::JobState state) {
  return state == v1::JOB_STATE_SUCCEEDED || state == v1::JOB_STATE_FAILED ||
         state == v1::JOB_STATE_CANCELLED || state == v1::JOB_STATE_WITHDRAWN;
}

}  // namespace impulse
