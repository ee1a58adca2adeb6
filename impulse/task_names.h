// The wire names of enums users and scripts see: task kinds
// ("generate-features", "train", "quantize-evaluate") and job/task states
// ("QUEUED", "RUNNING", ...), as DESIGN.md spells them.
#pragma once

#include <optional>
#include <string>
#include <string_view>

#include "impulse/v1/job.pb.h"

namespace impulse {

std::string TaskKindName(v1::TaskKind kind);
std::optional<v1::TaskKind> ParseTaskKind(std::string_view name);

std::string JobStateName(v1::JobState state);   // "SUCCEEDED"
std::string TaskStateName(v1::TaskState state);  // "RUNNING"
std::string JobKindName(v1::JobKind kind);       // "features" | "train" | "tune"

bool IsTerminal(v1::JobState state);

}  // namespace impulse
