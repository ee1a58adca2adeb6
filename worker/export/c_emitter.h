// The int8 model as a self-contained C99 library (DESIGN.md, "model_i8/"):
// model.h and model.c, one translation unit with the integer kernels of
// worker/int8/kernels.c included verbatim (the same source the worker's
// interpreter links, so the library's outputs equal the worker's bit for
// bit), the weights, biases and requantization parameters as const arrays,
// and one static arena laid out by the plan in the QuantizedModel.
// Compiles with `gcc -std=c99 -Wall -Werror`; no malloc, no floating point
// in the layers, no dependencies beyond <stdint.h> and <string.h>.
#pragma once

#include <string>

#include "impulse/status.h"
#include "worker/int8/quantized_model.h"

namespace impulse::worker::exporters {

struct CLibrary {
  std::string header;  // model.h
  std::string source;  // model.c
};

// model.h declares, for the user: IMPULSE_MODEL_INPUT_{CHANNELS,HEIGHT,
// WIDTH,SIZE,SCALE,ZERO_POINT}, IMPULSE_MODEL_OUTPUT_{SIZE,SCALE,ZERO_POINT},
// IMPULSE_MODEL_ARENA_BYTES, IMPULSE_MODEL_LABEL_COUNT, impulse_model_labels[]
// and `int impulse_model_invoke(const int8_t *input, int8_t *output)`.
// REQUIRES: int8::CheckQuantizedModel(model).ok().
CLibrary EmitCLibrary(const int8::QuantizedModel& model);

// Writes model.h and model.c into `dir` (created when missing).
// InvalidArgument when the model fails CheckQuantizedModel; Internal naming
// the file when it cannot be written.
Status WriteCLibrary(const int8::QuantizedModel& model, const std::string& dir);

}  // namespace impulse::worker::exporters
