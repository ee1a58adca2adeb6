#include "worker/export/c_emitter.h"

#include <algorithm>
#include <cctype>
#include <climits>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <string_view>

#include "worker/export/kernel_sources.h"
#include "worker/int8/kernel_ops.h"

namespace impulse::worker::exporters {
namespace {

using int8::KernelOp;
using int8::QuantizedModel;

// kernels.c's one include, dropped when it follows kernels.h in model.c.
constexpr std::string_view kKernelsInclude = "#include \"worker/int8/kernels.h\"\n";
constexpr const char* kArena = "impulse_arena";

std::string Int(int64_t v) {
  // -2^31 written as a literal would be the negation of a wider 2^31.
  return v == INT32_MIN ? "(-2147483647 - 1)" : std::to_string(v);
}

std::string FloatLiteral(float v) {
  char text[32];
  std::snprintf(text, sizeof text, "%.9ef", static_cast<double>(v));
  return text;
}

// Only [A-Za-z0-9_]: safe inside a C comment.
std::string Plain(const std::string& name) {
  std::string out;
  for (char c : name) out += std::isalnum(static_cast<unsigned char>(c)) ? c : '_';
  return out;
}

// A C string literal: printable ASCII as is, everything else (UTF-8 bytes
// included) as three-digit octal escapes.
std::string CString(const std::string& s) {
  std::string out = "\"";
  for (unsigned char c : s) {
    if (c == '"' || c == '\\') {
      out += '\\';
      out += static_cast<char>(c);
    } else if (c >= 0x20 && c < 0x7f && c != '?') {  // '?': no trigraphs
      out += static_cast<char>(c);
    } else {
      char escape[8];
      std::snprintf(escape, sizeof escape, "\\%03o", c);
      out += escape;
    }
  }
  return out + "\"";
}

template <typename T>
void AppendArray(std::string& out, std::string_view type, const std::string& name, const T* data,
                 size_t n) {
  out += "static const " + std::string(type) + " " + name + "[" + std::to_string(n) + "] = {";
  for (size_t i = 0; i < n; ++i) {
    out += i % 16 == 0 ? "\n  " : " ";
    out += Int(data[i]) + ",";
  }
  out += "\n};\n";
}

std::string Window(const ic_window& w) {
  return "{.input_channels = " + Int(w.input_channels) +
         ", .input_height = " + Int(w.input_height) + ", .input_width = " + Int(w.input_width) +
         ",\n              .output_channels = " + Int(w.output_channels) +
         ", .output_height = " + Int(w.output_height) + ", .output_width = " + Int(w.output_width) +
         ",\n              .kernel_height = " + Int(w.kernel_height) +
         ", .kernel_width = " + Int(w.kernel_width) + ", .stride_height = " + Int(w.stride_height) +
         ", .stride_width = " + Int(w.stride_width) +
         ",\n              .pad_top = " + Int(w.pad_top) + ", .pad_left = " + Int(w.pad_left) + "}";
}

std::string Activation(int32_t min, int32_t max) {
  return ".activation_min = " + Int(min) + ", .activation_max = " + Int(max);
}

// The op's tables and its `static const <type> op<i>` parameter struct;
// returns the kernel function that takes it.
std::string AppendParams(std::string& out, const std::string& id, const KernelOp& k,
                         const int8::QuantizedOp& q) {
  struct Visitor {
    std::string& out;
    const std::string& id;
    const KernelOp& k;
    const int8::QuantizedOp& q;

    std::string operator()(const ic_conv_params& p) const {
      const size_t channels = k.bias.size();
      const bool packed = k.kind == model::OpKind::kConv2D;
      AppendArray(out, "int8_t", id + "_weights",
                  packed ? k.packed_weights.data() : q.weights.data(),
                  packed ? k.packed_weights.size() : q.weights.size());
      AppendArray(out, "int32_t", id + "_bias", k.bias.data(), channels);
      AppendArray(out, "int32_t", id + "_multiplier", k.multipliers.data(), channels);
      AppendArray(out, "int32_t", id + "_shift", k.shifts.data(), channels);
      out += "static const ic_conv_params " + id + " = {\n    .window = " + Window(p.window) +
             ",\n    .input_zero_point = " + Int(p.input_zero_point) +
             ", .output_zero_point = " + Int(p.output_zero_point) + ",\n    " +
             Activation(p.activation_min, p.activation_max) + ",\n    .weights = " + id +
             "_weights, .bias = " + id + "_bias,\n    .output_multiplier = " + id +
             "_multiplier, .output_shift = " + id + "_shift};\n";
      return k.kind == model::OpKind::kConv2D ? "ic_conv2d_run" : "ic_depthwise_conv2d_run";
    }
    std::string operator()(const ic_dense_params& p) const {
      AppendArray(out, "int8_t", id + "_weights", q.weights.data(), q.weights.size());
      AppendArray(out, "int32_t", id + "_bias", k.bias.data(), k.bias.size());
      out += "static const ic_dense_params " + id + " = {\n    .input_size = " + Int(p.input_size) +
             ", .output_size = " + Int(p.output_size) +
             ", .output_zero_point = " + Int(p.output_zero_point) + ",\n    " +
             Activation(p.activation_min, p.activation_max) + ",\n    .weights = " + id +
             "_weights, .bias = " + id +
             "_bias,\n    .output_multiplier = " + Int(p.output_multiplier) +
             ", .output_shift = " + Int(p.output_shift) + "};\n";
      return "ic_dense_run";
    }
    std::string operator()(const ic_add_params& p) const {
      out += "static const ic_add_params " + id + " = {\n    .size = " + Int(p.size) +
             ", .input1_zero_point = " + Int(p.input1_zero_point) +
             ", .input2_zero_point = " + Int(p.input2_zero_point) +
             ", .output_zero_point = " + Int(p.output_zero_point) +
             ",\n    .input1_multiplier = " + Int(p.input1_multiplier) +
             ", .input1_shift = " + Int(p.input1_shift) +
             ",\n    .input2_multiplier = " + Int(p.input2_multiplier) +
             ", .input2_shift = " + Int(p.input2_shift) +
             ",\n    .output_multiplier = " + Int(p.output_multiplier) +
             ", .output_shift = " + Int(p.output_shift) + ",\n    " +
             Activation(p.activation_min, p.activation_max) + "};\n";
      return "ic_add_run";
    }
    std::string operator()(const ic_pool_params& p) const {
      out += "static const ic_pool_params " + id + " = {\n    .window = " + Window(p.window) +
             ",\n    .zero_point = " + Int(p.zero_point) + ", " +
             Activation(p.activation_min, p.activation_max) + "};\n";
      switch (k.kind) {
        case model::OpKind::kMaxPool:
          return "ic_max_pool_run";
        case model::OpKind::kAvgPool:
          return "ic_avg_pool_run";
        default:
          return "ic_global_avg_pool_run";
      }
    }
    std::string operator()(const ic_clamp_params& p) const {
      out += "static const ic_clamp_params " + id + " = {.size = " + Int(p.size) + ", " +
             Activation(p.activation_min, p.activation_max) + "};\n";
      return "ic_clamp_run";
    }
    std::string operator()(const ic_softmax_params& p) const {
      AppendArray(out, "uint32_t", id + "_exp_table", q.exp_table.data(), q.exp_table.size());
      out += "static const ic_softmax_params " + id + " = {.size = " + Int(p.size) +
             ", .exp_table = " + id + "_exp_table};\n";
      return "ic_softmax_run";
    }
  };
  return std::visit(Visitor{out, id, k, q}, k.params);
}

std::string Header(const QuantizedModel& model) {
  const int8::QuantizedOp& last = model.ops.back();
  const auto& in = model.input_shape;
  std::string h = "/* model.h: the int8 model " + Plain(model.architecture) +
                  " as a C99 library, generated by Impulse Cluster.\n"
                  " *\n"
                  " * Tensors are int8, real = scale * (q - zero_point). The input is the\n"
                  " * processing block's pixels, [channels, height, width] channel-major; a\n"
                  " * pixel p (0..255) is q = p - 128. The output is one int8 score per label.\n"
                  " * impulse_model_invoke() runs the model in a static arena of\n"
                  " * IMPULSE_MODEL_ARENA_BYTES; input and output are the caller's. Not\n"
                  " * reentrant: one call at a time. It always returns 0. */\n"
                  "#ifndef IMPULSE_MODEL_H_\n#define IMPULSE_MODEL_H_\n\n#include <stdint.h>\n\n"
                  "#ifdef __cplusplus\nextern \"C\" {\n#endif\n\n";
  h += "#define IMPULSE_MODEL_INPUT_CHANNELS " + Int(in[0]) + "\n";
  h += "#define IMPULSE_MODEL_INPUT_HEIGHT " + Int(in[1]) + "\n";
  h += "#define IMPULSE_MODEL_INPUT_WIDTH " + Int(in[2]) + "\n";
  h += "#define IMPULSE_MODEL_INPUT_SIZE " + Int(int64_t{in[0]} * in[1] * in[2]) + "\n";
  h += "#define IMPULSE_MODEL_INPUT_SCALE " + FloatLiteral(model.input.scale) + "\n";
  h += "#define IMPULSE_MODEL_INPUT_ZERO_POINT (" + Int(model.input.zero_point) + ")\n";
  h += "/* output shape " + model::ShapeString(last.op.output_shape) + " */\n";
  h += "#define IMPULSE_MODEL_OUTPUT_SIZE " + Int(last.op.output_elements) + "\n";
  h += "#define IMPULSE_MODEL_OUTPUT_SCALE " + FloatLiteral(last.output.scale) + "\n";
  h += "#define IMPULSE_MODEL_OUTPUT_ZERO_POINT (" + Int(last.output.zero_point) + ")\n";
  h += "#define IMPULSE_MODEL_ARENA_BYTES " + Int(model.arena.arena_bytes) + "\n";
  h += "#define IMPULSE_MODEL_LABEL_COUNT " + Int(model.labels.size()) + "\n\n";
  if (!model.labels.empty()) {
    h += "/* impulse_model_labels[i] names output i. */\n"
         "extern const char *const impulse_model_labels[IMPULSE_MODEL_LABEL_COUNT];\n";
  }
  h += "int impulse_model_invoke(const int8_t *input, int8_t *output);\n\n"
       "#ifdef __cplusplus\n}\n#endif\n\n#endif /* IMPULSE_MODEL_H_ */\n";
  return h;
}

std::string Source(const QuantizedModel& model) {
  std::string kernels(KernelsSourceText());
  const size_t include = kernels.find(kKernelsInclude);
  if (include != std::string::npos) kernels.erase(include, kKernelsInclude.size());
  std::string c = "/* model.c: the int8 model " + Plain(model.architecture) +
                  " (quantization: " + Plain(model.method) +
                  "), generated by Impulse Cluster.\n"
                  " * One C99 translation unit: the integer kernels (Impulse Cluster's\n"
                  " * worker/int8/kernels.h and kernels.c, verbatim), the weights and\n"
                  " * requantization tables as const arrays, the arena plan as offsets. */\n"
                  "#include \"model.h\"\n\n#define IC_KERNEL static inline\n"
                  "#ifdef __clang__ /* kernels this model does not call are no mistake */\n"
                  "#pragma clang diagnostic ignored \"-Wunused-function\"\n#endif\n\n";
  c += std::string(KernelsHeaderText()) + "\n" + kernels + "\n";
  if (!model.labels.empty()) {
    c += "const char *const impulse_model_labels[IMPULSE_MODEL_LABEL_COUNT] = {\n";
    for (const std::string& label : model.labels) c += "    " + CString(label) + ",\n";
    c += "};\n\n";
  }
  const std::vector<KernelOp> ops = int8::BuildKernelOps(model);
  std::string calls;
  auto tensor = [&](int op) -> std::string {
    if (op < 0) return "input";
    if (op == static_cast<int>(ops.size()) - 1) return "output";
    return std::string(kArena) + " + " + Int(model.arena.offsets[op]);
  };
  for (size_t i = 0; i < ops.size(); ++i) {
    const int8::QuantizedOp& q = model.ops[i];
    const std::string id = "op" + std::to_string(i);
    c += "/* " + id + ": " + model::OpKindName(q.op.kind) + " " + Plain(q.name) + " -> " +
         model::ShapeString(q.op.output_shape) + " */\n";
    const std::string function = AppendParams(c, id, ops[i], q);
    c += "\n";
    calls += "  " + function + "(&" + id;
    for (int input : ops[i].inputs) calls += ", " + tensor(input);
    calls += ", " + tensor(static_cast<int>(i)) + ");\n";
  }
  // A model whose ops all read the input and write the output has no arena
  // (and a zero-length array is not C).
  if (model.arena.arena_bytes > 0) {
    c += "static int8_t " + std::string(kArena) + "[" + Int(model.arena.arena_bytes) + "];\n\n";
  }
  c += "int impulse_model_invoke(const int8_t *input, int8_t *output) {\n" + calls +
       "  return 0;\n}\n";
  return c;
}

}  // namespace

CLibrary EmitCLibrary(const int8::QuantizedModel& model) { return {Header(model), Source(model)}; }

Status WriteCLibrary(const int8::QuantizedModel& model, const std::string& dir) {
  IMPULSE_RETURN_IF_ERROR(int8::CheckQuantizedModel(model).WithContext("model_i8"));
  std::error_code error;
  std::filesystem::create_directories(dir, error);
  if (error) return Internal("model_i8: cannot create " + dir + ": " + error.message());
  const CLibrary library = EmitCLibrary(model);
  for (const auto& [name, text] :
       {std::pair{"model.h", &library.header}, std::pair{"model.c", &library.source}}) {
    const std::string path = (std::filesystem::path(dir) / name).string();
    std::ofstream file(path, std::ios::binary);
    file << *text;
    file.close();
    if (!file) return Internal("model_i8: cannot write " + path);
  }
  return Status::Ok();
}

}  // namespace impulse::worker::exporters
