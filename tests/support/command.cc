#include "tests/support/command.h"

#include <sys/wait.h>

#include <cstdio>
#include <fstream>
#include <sstream>

#include "tests/support/temp_dir.h"

namespace impulse::testing {

std::string ShellQuote(const std::string& text) {
  std::string quoted = "'";
  for (char c : text) {
    if (c == '\'') {
      quoted += "'\\''";
    } else {
      quoted += c;
    }
  }
  return quoted + "'";
}

CommandResult RunCommand(const std::string& command, int timeout_s) {
  TempDir dir;
  const std::string out_file = dir.path() + "/stdout";
  const std::string all_file = dir.path() + "/all";
  // stdout goes to both files; stderr to the combined one only.
  const std::string wrapped = "timeout " + std::to_string(timeout_s) + " sh -c " +
                              ShellQuote(command) + " 2>>" + all_file + " | tee -a " + all_file +
                              " > " + out_file;
  const int status = std::system(("bash -o pipefail -c " + ShellQuote(wrapped)).c_str());
  CommandResult result;
  result.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  std::stringstream out, all;
  out << std::ifstream(out_file).rdbuf();
  all << std::ifstream(all_file).rdbuf();
  result.stdout_text = out.str();
  result.output = all.str();
  return result;
}

}  // namespace impulse::testing
