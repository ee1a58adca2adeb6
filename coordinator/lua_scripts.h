// The Lua scripts of coordinator/scripts/, embedded at build time by
// cmake/write_lua_scripts.cmake into a generated lua_scripts.cc.
#pragma once

#include <string_view>

namespace impulse::coordinator {

// The text of coordinator/scripts/NAME.lua; empty for an unknown name.
std::string_view LuaScriptSource(std::string_view name);

}  // namespace impulse::coordinator
