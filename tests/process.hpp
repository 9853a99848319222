// Running the real programs from tests: dsmild in the background, dsmilctl
// to completion.
#pragma once

#include <csignal>
#include <string>
#include <vector>

namespace dsmil::test {

struct run_result {
  int rc = -1;
  std::string out;
  std::string err;
};

/// Runs argv to completion; captures stdout and stderr.
run_result run(const std::vector<std::string>& argv);

/// A background process whose stdout is readable line by line.
class child_process {
public:
  explicit child_process(const std::vector<std::string>& argv);
  ~child_process();
  child_process(const child_process&) = delete;
  child_process& operator=(const child_process&) = delete;

  /// Next stdout line, or "" at end of output or after `timeout_ms`.
  std::string read_line(int timeout_ms = 20000);
  /// Sends `sig` and waits; returns the exit code (128 + signal if killed).
  int stop(int sig = SIGTERM);
  /// Waits for exit; returns the exit code.
  int wait();
  const std::string& stderr_path() const { return err_path_; }

private:
  pid_t pid_ = -1;
  int out_fd_ = -1;
  std::string buffer_;
  std::string err_path_;
};

/// Path of a built program, from the environment variable `var` set by meson.
std::string program(const char* var);

} // namespace dsmil::test
