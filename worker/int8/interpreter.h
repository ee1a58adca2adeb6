// The worker's integer-only evaluator: runs a QuantizedModel op by op with
// the C kernels of kernels.h — the same kernels, in the same order, on the
// same arena plan as the exported C library (worker/export/c_emitter.h), so
// the two give bit-identical outputs. No floating point inside the op loop.
//
// Thread safety: one Interpreter per thread (it owns its arena); the model
// it reads is shared read-only and must outlive it.
#pragma once

#include <cstdint>
#include <functional>
#include <span>
#include <vector>

#include "worker/int8/kernel_ops.h"
#include "worker/int8/quantized_model.h"

namespace impulse::worker::int8 {

class Interpreter {
 public:
  // REQUIRES: CheckQuantizedModel(model).ok().
  explicit Interpreter(const QuantizedModel& model);

  // Called after op i ran, with its int8 output (valid only during the call:
  // later ops reuse the arena). For per-layer error analysis.
  using OpObserver = std::function<void(int op, std::span<const int8_t> output)>;

  // input: product(model.input_shape) int8 values (pixel - 128);
  // output: the last op's elements (the classes). REQUIRES: sizes match.
  void Invoke(std::span<const int8_t> input, std::span<int8_t> output,
              const OpObserver& observer = nullptr);

 private:
  const QuantizedModel& model_;
  std::vector<KernelOp> ops_;
  std::vector<int8_t> arena_;
};

}  // namespace impulse::worker::int8
