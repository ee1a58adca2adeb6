#include "worker/int8/interpreter.h"

#include <cassert>

namespace impulse::worker::int8 {

Interpreter::Interpreter(const QuantizedModel& model)
    : model_(model), ops_(BuildKernelOps(model)), arena_(model.arena.arena_bytes) {}

void Interpreter::Invoke(std::span<const int8_t> input, std::span<int8_t> output,
                         const OpObserver& observer) {
  const size_t last = ops_.size() - 1;
  assert(input.size() == ShapeElements(model_.input_shape));
  assert(output.size() == model_.ops[last].op.output_elements);
  auto tensor = [&](int op) -> int8_t* {
    if (op == static_cast<int>(last)) return output.data();
    return arena_.data() + model_.arena.offsets[op];
  };
  for (size_t i = 0; i < ops_.size(); ++i) {
    const KernelOp& op = ops_[i];
    const int8_t* in1 = op.inputs[0] < 0 ? input.data() : tensor(op.inputs[0]);
    const int8_t* in2 = op.inputs.size() < 2 ? nullptr
                        : op.inputs[1] < 0   ? input.data()
                                             : tensor(op.inputs[1]);
    int8_t* out = tensor(static_cast<int>(i));
    RunKernelOp(op, in1, in2, out);
    if (observer) {
      observer(static_cast<int>(i), std::span<const int8_t>(out, model_.ops[i].op.output_elements));
    }
  }
}

}  // namespace impulse::worker::int8
