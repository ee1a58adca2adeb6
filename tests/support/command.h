// Runs a shell command for tests that drive real binaries, capturing its
// output. Every command runs under `timeout`, so a hung process fails the
// test instead of hanging it.
#pragma once

#include <string>

namespace impulse::testing {

struct CommandResult {
  int exit_code = -1;   // the command's exit status; 124 when timed out
  std::string output;   // stdout and stderr, interleaved
  std::string stdout_text;  // stdout alone (stderr goes to output only)
};

// `command` is run by /bin/sh with a wall-clock bound of timeout_s.
CommandResult RunCommand(const std::string& command, int timeout_s = 300);

// Single-quotes `text` for /bin/sh.
std::string ShellQuote(const std::string& text);

}  // namespace impulse::testing
