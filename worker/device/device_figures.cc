#include "worker/device/device_figures.h"

#include <sys/wait.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <sstream>

#include "impulse/device/device_catalog.h"
#include "impulse/device/device_estimate.h"
#include "impulse/impulse_spec.h"
#include "worker/int8/interpreter.h"
#include "worker/training/latency.h"

namespace impulse::worker::device {
namespace {

using impulse::device::DeviceEstimate;
using impulse::device::EstimateDevice;
using impulse::device::Precision;

// Single quotes for /bin/sh.
std::string Quote(const std::string& text) {
  std::string out = "'";
  for (char c : text) out += c == '\'' ? std::string("'\\''") : std::string(1, c);
  return out + "'";
}

bool OnPath(const std::string& program) {
  return std::system(("command -v " + program + " >/dev/null 2>&1").c_str()) == 0;
}

struct Run {
  int exit_code = -1;
  std::string output;  // stdout and stderr
};

// Runs `command` under coreutils' timeout (exit 124 when it fired).
Run RunShell(const std::string& command, double timeout_s) {
  Run run;
  const std::string line = "timeout " + std::to_string(timeout_s) + "s " + command + " 2>&1";
  FILE* pipe = popen(line.c_str(), "r");
  if (pipe == nullptr) return run;
  char buffer[4096];
  for (size_t n; (n = fread(buffer, 1, sizeof(buffer), pipe)) > 0;) run.output.append(buffer, n);
  const int status = pclose(pipe);
  run.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  return run;
}

std::string FirstLine(const std::string& text) {
  const std::string line = text.substr(0, text.find('\n'));
  return line.empty() ? "no output" : line;
}

// text + data of `size`'s Berkeley output ("text data bss dec hex file").
Result<uint64_t> ParseSize(const std::string& output) {
  std::istringstream in(output);
  std::string header;
  std::getline(in, header);
  uint64_t text = 0, data = 0;
  if (header.find("text") == std::string::npos || !(in >> text >> data)) {
    return Internal("size: unexpected output: " + FirstLine(output));
  }
  return text + data;
}

// The median of `repeats` timings of `run`, after one warm-up call.
template <typename Fn>
double MedianMs(int repeats, Fn&& run) {
  run();
  std::vector<double> ms;
  for (int i = 0; i < std::max(1, repeats); ++i) {
    const auto start = std::chrono::steady_clock::now();
    run();
    ms.push_back(std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - start)
                     .count());
  }
  std::nth_element(ms.begin(), ms.begin() + ms.size() / 2, ms.end());
  return ms[ms.size() / 2];
}

double Int8LatencyMs(const int8::QuantizedModel& model, int repeats) {
  uint64_t input_size = 1;
  for (uint32_t d : model.input_shape) input_size *= d;
  std::vector<int8_t> input(input_size, 0);
  std::vector<int8_t> output(model.ops.back().op.output_elements);
  int8::Interpreter interpreter(model);
  return MedianMs(repeats, [&] { interpreter.Invoke(input, output); });
}

// Bytes of the int8 model's own constants: what the object holds beyond code.
uint64_t QuantizedConstantBytes(const int8::QuantizedModel& model) {
  uint64_t bytes = 0;
  for (const int8::QuantizedOp& op : model.ops) {
    bytes += op.weights.size() + 4 * op.bias.size() + 8 * op.output_multipliers.size() +
             8 * op.input_multipliers.size() + 4 * op.exp_table.size();
  }
  return bytes;
}

uint64_t Int8RamBytes(const int8::QuantizedModel& model) {
  uint64_t input = 1;
  for (uint32_t d : model.input_shape) input *= d;
  return model.arena.arena_bytes + input + model.ops.back().op.output_elements;
}

}  // namespace

Result<uint64_t> CompiledFlashBytes(const std::string& source, const std::string& core,
                                    double timeout_s, std::string* compiler) {
  const bool arm = !core.empty() && OnPath("arm-none-eabi-gcc") && OnPath("arm-none-eabi-size");
  const std::string flags =
      arm ? "-mcpu=" + core + " -mthumb -Os -std=c99 -ffreestanding" : "-Os -std=c99";
  *compiler = (arm ? "arm-none-eabi-gcc " : "gcc ") + flags;
  const std::string object =
      (std::filesystem::path(source).parent_path() / (arm ? "model_arm.o" : "model_host.o"))
          .string();
  const Run compile = RunShell((arm ? "arm-none-eabi-gcc " : "gcc ") + flags + " -c " +
                                   Quote(source) + " -o " + Quote(object),
                               timeout_s);
  if (compile.exit_code == 124) {
    return DeadlineExceeded(*compiler + ": still compiling after " +
                            std::to_string(static_cast<int>(timeout_s)) + " s");
  }
  if (compile.exit_code != 0) return Internal(*compiler + ": " + FirstLine(compile.output));
  const Run size = RunShell((arm ? "arm-none-eabi-size " : "size ") + Quote(object), timeout_s);
  if (size.exit_code != 0) return Internal("size: " + FirstLine(size.output));
  return ParseSize(size.output);
}

Result<DeviceReport> MeasureDeviceFigures(const model::LayerGraph& graph,
                                          const int8::QuantizedModel& model,
                                          const std::string& c_library_dir,
                                          const v1::Device& device, const MeasureOptions& options) {
  IMPULSE_ASSIGN_OR_RETURN(DeviceEstimate f32, EstimateDevice(graph, device, Precision::kFloat32));
  IMPULSE_ASSIGN_OR_RETURN(DeviceEstimate i8, EstimateDevice(graph, device, Precision::kInt8));
  DeviceReport report{.float32 = f32.Figures(device.id()), .int8 = i8.Figures(device.id())};
  report.int8.set_ram_bytes(Int8RamBytes(model));

  std::string compiler;
  auto flash = CompiledFlashBytes(c_library_dir + "/model.c", device.core(),
                                  options.compile_timeout_s, &compiler);
  if (flash.ok()) {
    const uint64_t code = *flash - std::min(*flash, QuantizedConstantBytes(model));
    report.int8.set_flash_bytes(*flash);
    report.int8.set_flash_source("measured: " + compiler + ", size text+data");
    report.float32.set_flash_bytes(f32.parameter_bytes + code);
    report.float32.set_flash_source("float32 parameters + " + std::to_string(code) +
                                    " bytes of code measured in the int8 object (" + compiler +
                                    ")");
  } else {
    report.warnings.push_back("device: flash of model_i8/model.c could not be measured (" +
                              flash.status().message() + "); the figures are estimates");
  }

  if (device.id() == "host") {
    const std::string source = "measured: median of " + std::to_string(options.repeats) +
                               " single-image runs on this worker, one thread";
    report.int8.set_latency_ms(Int8LatencyMs(model, options.repeats));
    report.int8.set_latency_source(source + ", integer interpreter");
    IMPULSE_ASSIGN_OR_RETURN(double f32_ms,
                             training::MeasureFloatLatencyMs(graph.model(), options.repeats, 1));
    report.float32.set_latency_ms(f32_ms);
    report.float32.set_latency_source(source + ", LibTorch");
  }
  return report;
}

Result<v1::Device> TaskDevice(const v1::TaskSpec& spec) {
  if (!spec.device().id().empty()) return spec.device();
  return impulse::device::DeviceCatalog::Builtin().Get(WithDefaults(spec.impulse()).target());
}

void AddDeviceFigures(const v1::Device& device, const model::LayerGraph& graph,
                      const int8::QuantizedModel* model, const std::string& c_library_dir,
                      v1::JobResults& results) {
  results.set_target(device.id());
  if (model != nullptr) {
    auto report = MeasureDeviceFigures(graph, *model, c_library_dir, device);
    if (report.ok()) {
      *results.mutable_float32()->mutable_device() = report->float32;
      *results.mutable_int8()->mutable_device() = report->int8;
      for (const std::string& warning : report->warnings) results.add_warnings(warning);
      return;
    }
    results.add_warnings("device: " + report.status().message());
  }
  auto f32 = EstimateDevice(graph, device, Precision::kFloat32);
  if (!f32.ok()) {
    results.add_warnings("device: no figures for " + device.id() + ": " + f32.status().message());
    return;
  }
  *results.mutable_float32()->mutable_device() = f32->Figures(device.id());
}

}  // namespace impulse::worker::device
