#include "tests/swtpm.hpp"

#include <arpa/inet.h>
#include <csignal>
#include <cstdlib>
#include <fstream>
#include <netinet/in.h>
#include <stdexcept>
#include <sys/socket.h>
#include <thread>
#include <unistd.h>

#include <doctest/doctest.h>

namespace dsmil::test {

namespace {

// bind() (is the port free?) or connect() (is something listening?) on a
// loopback TCP port.
template <class Op> bool on_loopback(int port, Op op) {
  int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  a.sin_port = htons(static_cast<uint16_t>(port));
  bool ok = op(fd, reinterpret_cast<sockaddr*>(&a), sizeof(a)) == 0;
  ::close(fd);
  return ok;
}

bool port_free(int port) {
  return on_loopback(port, ::bind);
}

bool accepts(int port) {
  return on_loopback(port, ::connect);
}

} // namespace

swtpm::swtpm() {
  char tmpl[] = "/tmp/dsmil-swtpm.XXXXXX";
  REQUIRE(::mkdtemp(tmpl) != nullptr);
  dir_ = tmpl;
  for (int tries = 0; tries < 200 && port_ == 0; ++tries) {
    int p = 20000 + static_cast<int>((static_cast<unsigned>(::getpid()) * 7919u +
                                      static_cast<unsigned>(tries) * 104729u) %
                                     40000u);
    if (p % 2 == 0 && port_free(p) && port_free(p + 1)) port_ = p;
  }
  REQUIRE_MESSAGE(port_ != 0, "no free loopback port pair for swtpm");
  start();
}

void swtpm::start() {
  const std::string cmd =
      "swtpm socket --tpm2 --tpmstate dir=" + dir_ +
      " --server type=tcp,port=" + std::to_string(port_) +
      ",bindaddr=127.0.0.1 --ctrl type=tcp,port=" + std::to_string(port_ + 1) +
      ",bindaddr=127.0.0.1 --flags not-need-init,startup-clear --daemon --pid file=" + dir_ +
      "/pid --log file=" + dir_ + "/log";
  int rc = std::system(cmd.c_str());
  const std::string why =
      "cannot start swtpm (is it installed? run scripts/bootstrap --with-tpm): " + cmd;
  REQUIRE_MESSAGE(rc == 0, why);
  for (int i = 0; i < 200 && !accepts(port_); ++i)
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  const std::string silent = "swtpm did not listen on port " + std::to_string(port_);
  REQUIRE_MESSAGE(accepts(port_), silent);
  running_ = true;
}

void swtpm::stop() {
  if (!running_) return;
  std::ifstream in(dir_ + "/pid");
  int pid = 0;
  if (in >> pid && pid > 0) {
    ::kill(pid, SIGTERM);
    for (int i = 0; i < 200 && ::kill(pid, 0) == 0; ++i)
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  running_ = false;
}

swtpm::~swtpm() {
  stop();
  std::system(("rm -rf '" + dir_ + "'").c_str());
}

std::string swtpm::tcti() const {
  return "swtpm:host=127.0.0.1,port=" + std::to_string(port_);
}

} // namespace dsmil::test
