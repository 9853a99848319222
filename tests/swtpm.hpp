// A real swtpm (TPM 2.0 simulator) for a test: its own state directory and a
// free loopback port pair, stopped and removed with the object.
#pragma once

#include <string>

namespace dsmil::test {

class swtpm {
public:
  /// Starts swtpm; REQUIRE-fails the test with a clear line when it cannot.
  swtpm();
  ~swtpm();
  swtpm(const swtpm&) = delete;
  swtpm& operator=(const swtpm&) = delete;

  /// TCTI configuration for tpm2-tss: "swtpm:host=127.0.0.1,port=P".
  std::string tcti() const;
  /// Stops the simulator now (the TPM "goes away"); the state stays.
  void stop();
  /// Starts it again on the same port with the same state.
  void start();

private:
  std::string dir_;
  int port_ = 0;
  bool running_ = false;
};

} // namespace dsmil::test
