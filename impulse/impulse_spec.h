// The impulse file: YAML <-> v1::Impulse, validation and defaults.
//
// docs/IMPULSE.md documents every key; this file is its implementation. The
// YAML keys map 1:1 onto the proto's fields, and in the proto a zero (or an
// UNSPECIFIED enum) means "the documented default", so an impulse that leaves
// a key out and one that spells the default out mean the same job.
//
// Thread safety: the functions share nothing and may run on any thread.
// Failures are InvalidArgument with a message that starts with the field's
// path ("input.width: must be 1..4096, got 0", "learning.conv[1].filters:
// ..."), except LoadImpulseFile's NotFound for a file it cannot read.
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "impulse/status.h"
#include "impulse/v1/impulse.pb.h"

namespace impulse {

// The target an impulse without `target` runs on.
inline constexpr std::string_view kDefaultTarget = "cortex-m4f-80mhz";

// A well-formed device catalog id: 1..64 of [a-z0-9._-]. Which ids exist is
// the device catalog's business (impulse/device/device_catalog.h): its
// built-ins plus the devices users add in a YAML file.
bool IsDeviceId(std::string_view id);

// A byte count as the impulse file and the device file write it: an integer
// with an optional K, M or G suffix (powers of 1024; K is 1024), optionally
// followed by B or iB: 4096, 256K, 1M, 1MiB. InvalidArgument starting with
// `path` otherwise.
Result<uint64_t> ParseByteSize(std::string_view text, const std::string& path);

// Parses and validates an impulse. Refuses unknown keys (naming them and the
// keys allowed there), values of the wrong type, out-of-range values and
// explicit values that would silently mean something else (`epochs: 0`).
// `target` is checked for its form only (see ValidateImpulse).
// The result is NOT filled with defaults: call WithDefaults() for that.
Result<v1::Impulse> ParseImpulseYaml(std::string_view text);

// Reads `path` and parses it; messages from the parser get the path in front.
Result<v1::Impulse> LoadImpulseFile(const std::string& path);

// The YAML for `impulse`: only keys whose values are not zero / unspecified,
// in the documented order. ParseImpulseYaml(ImpulseToYaml(x)) == x for every
// valid x (floats are written in their shortest exact form).
std::string ImpulseToYaml(const v1::Impulse& impulse);

// Checks an impulse that may have come over the wire: zeros are read as the
// documented defaults. The first form checks only that `target` is a
// well-formed id; the second also that it is one of `target_ids` (the
// device catalog's ids: the coordinator, which knows the users' devices,
// uses it), else InvalidArgument "target: unknown device 'x' (a | b | ...)".
Status ValidateImpulse(const v1::Impulse& impulse);
Status ValidateImpulse(const v1::Impulse& impulse, const std::vector<std::string>& target_ids);

// `impulse` with every zero / unspecified field that has a documented default
// filled in: resize squash, color rgb, training (epochs 20, learning_rate
// 0.001, batch_size 64, validation_split 0.2, seed 1, optimizer adam,
// lr_step_gamma 0.1), target cortex-m4f-80mhz, and for transfer learning
// backbone mobilenet_v2, alpha 0.35, fine_tune_learning_rate learning_rate/10;
// conv kernel_size 3. Empty conv / dense_layers lists stay empty: they mean
// the default network, which the layer graph defines. Idempotent.
v1::Impulse WithDefaults(v1::Impulse impulse);

}  // namespace impulse
