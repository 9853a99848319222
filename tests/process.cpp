#include "tests/process.hpp"

#include <cstdlib>
#include <fcntl.h>
#include <poll.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <doctest/doctest.h>

#include "tests/test_util.hpp"

extern char** environ;

namespace dsmil::test {

namespace {

std::vector<char*> c_argv(const std::vector<std::string>& argv) {
  std::vector<char*> v;
  for (auto& a : argv)
    v.push_back(const_cast<char*>(a.c_str()));
  v.push_back(nullptr);
  return v;
}

int exit_code(int status) {
  if (WIFEXITED(status)) return WEXITSTATUS(status);
  if (WIFSIGNALED(status)) return 128 + WTERMSIG(status);
  return -1;
}

std::string temp_path(const char* tag) {
  char tmpl[] = "/tmp/dsmil-proc.XXXXXX";
  int fd = ::mkstemp(tmpl); // reserves a unique name; the file used is name + tag
  ::close(fd);
  ::unlink(tmpl);
  return std::string(tmpl) + tag;
}

} // namespace

std::string program(const char* var) {
  const char* p = std::getenv(var);
  REQUIRE_MESSAGE(p != nullptr, var << " is not set; run the tests with 'meson test'");
  return p;
}

run_result run(const std::vector<std::string>& argv) {
  auto out_path = temp_path(".out"), err_path = temp_path(".err");
  posix_spawn_file_actions_t fa;
  posix_spawn_file_actions_init(&fa);
  posix_spawn_file_actions_addopen(&fa, 1, out_path.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0600);
  posix_spawn_file_actions_addopen(&fa, 2, err_path.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0600);
  posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0);
  pid_t pid;
  auto args = c_argv(argv);
  run_result r;
  if (posix_spawn(&pid, args[0], &fa, nullptr, args.data(), environ) != 0) {
    posix_spawn_file_actions_destroy(&fa);
    FAIL("cannot start " << argv[0]);
    return r;
  }
  posix_spawn_file_actions_destroy(&fa);
  int status = 0;
  ::waitpid(pid, &status, 0);
  r.rc = exit_code(status);
  r.out = slurp(out_path);
  r.err = slurp(err_path);
  ::unlink(out_path.c_str());
  ::unlink(err_path.c_str());
  return r;
}

child_process::child_process(const std::vector<std::string>& argv) {
  int fds[2];
  REQUIRE(::pipe(fds) == 0);
  err_path_ = temp_path(".err");
  posix_spawn_file_actions_t fa;
  posix_spawn_file_actions_init(&fa);
  posix_spawn_file_actions_adddup2(&fa, fds[1], 1);
  posix_spawn_file_actions_addclose(&fa, fds[0]);
  posix_spawn_file_actions_addopen(&fa, 2, err_path_.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0600);
  posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0);
  auto args = c_argv(argv);
  int rc = posix_spawn(&pid_, args[0], &fa, nullptr, args.data(), environ);
  posix_spawn_file_actions_destroy(&fa);
  ::close(fds[1]);
  out_fd_ = fds[0];
  REQUIRE_MESSAGE(rc == 0, "cannot start " << argv[0]);
}

child_process::~child_process() {
  if (pid_ > 0) stop(SIGKILL);
  if (out_fd_ >= 0) ::close(out_fd_);
  ::unlink(err_path_.c_str());
}

std::string child_process::read_line(int timeout_ms) {
  for (;;) {
    auto nl = buffer_.find('\n');
    if (nl != std::string::npos) {
      auto line = buffer_.substr(0, nl);
      buffer_.erase(0, nl + 1);
      return line;
    }
    pollfd p{out_fd_, POLLIN, 0};
    if (::poll(&p, 1, timeout_ms) <= 0) return "";
    char buf[4096];
    auto n = ::read(out_fd_, buf, sizeof(buf));
    if (n <= 0) return "";
    buffer_.append(buf, static_cast<size_t>(n));
  }
}

int child_process::stop(int sig) {
  if (pid_ <= 0) return -1;
  ::kill(pid_, sig);
  return wait();
}

int child_process::wait() {
  if (pid_ <= 0) return -1;
  int status = 0;
  ::waitpid(pid_, &status, 0);
  pid_ = -1;
  return exit_code(status);
}

} // namespace dsmil::test
