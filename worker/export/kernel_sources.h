// The text of worker/int8/kernels.h and kernels.c, embedded at build time
// (cmake/write_embedded_text.cmake), for the C emitter to paste into
// model.c: the exported library runs the very source the worker compiled.
#pragma once

#include <string_view>

namespace impulse::worker::exporters {

std::string_view KernelsHeaderText();
std::string_view KernelsSourceText();

}  // namespace impulse::worker::exporters
