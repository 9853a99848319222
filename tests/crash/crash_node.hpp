// What the rollback crash harness reads outside the node (the simulator's
// device state file, the reference agents' state files) and how it drives a
// real dsmild it kills.
#pragma once

#include <cstring>
#include <filesystem>
#include <map>
#include <string>
#include <vector>

#include <caf/all.hpp>
#include <caf/io/all.hpp>
#include <doctest/doctest.h>
#include <nlohmann/json.hpp>

#include "actors/agents/sim_agents.hpp"
#include "actors/caf_glue.hpp"
#include "actors/messages.hpp"
#include "actors/node_client.hpp"
#include "actors/remote_client.hpp"
#include "runtime/auth/node_pki.hpp"
#include "dsmil/fields_json.hpp"
#include "runtime/base/crypto.hpp"
#include "runtime/os/env.hpp"
#include "simd/crc64.hpp"
#include "tests/process.hpp"
#include "tests/test_util.hpp"

namespace dsmil::test {

using nlohmann::json;

// The restorable part of one device, as the state file holds it.
struct dev_state {
  bool enabled = false;
  uint8_t level = 0;
  std::vector<uint32_t> registers;
  std::vector<uint8_t> blob;
  bool operator==(const dev_state& o) const {
    return enabled == o.enabled && level == o.level && registers == o.registers && blob == o.blob;
  }
  bool operator!=(const dev_state& o) const { return !(*this == o); }
};
using snapshot = std::map<device_id, dev_state>;

// Reads the simulator's state file on its own terms (format in
// runtime/devices/sim_driver.cpp): per device, the intact slot with the higher sequence.
inline snapshot read_devices(const std::string& path, const std::vector<device_id>& ids) {
  auto bytes = test::slurp(path);
  REQUIRE(bytes.size() >= 64);
  REQUIRE(std::memcmp(bytes.data(), "DSMSIM01", 8) == 0);
  uint32_t count, slot_bytes;
  std::memcpy(&count, &bytes[16], 4);
  std::memcpy(&slot_bytes, &bytes[20], 4);
  REQUIRE(count == ids.size());
  REQUIRE(bytes.size() == 64 + size_t{count} * 2 * slot_bytes);
  snapshot out;
  for (size_t i = 0; i < count; ++i) {
    const char* best = nullptr;
    uint64_t best_seq = 0;
    for (int w = 0; w < 2; ++w) {
      const char* p = bytes.data() + 64 + (i * 2 + static_cast<size_t>(w)) * slot_bytes;
      uint64_t seq, crc;
      uint32_t len;
      std::memcpy(&seq, p, 8);
      std::memcpy(&crc, p + 8, 8);
      std::memcpy(&len, p + 16, 4);
      if (seq == 0 || len > slot_bytes - 20) continue;
      uint64_t c = simd::crc64(&seq, 8);
      c = simd::crc64(&len, 4, c);
      c = simd::crc64(p + 20, len, c);
      if (c == crc && seq > best_seq) best = p, best_seq = seq;
    }
    REQUIRE_MESSAGE(best, "device " << format_device_id(ids[i]) << " has no intact slot");
    const char* b = best + 20;
    dev_state s;
    uint16_t regs;
    uint32_t blob;
    s.enabled = b[0] == 1;
    s.level = static_cast<uint8_t>(b[1]);
    std::memcpy(&regs, b + 2, 2);
    std::memcpy(&blob, b + 4, 4);
    s.registers.resize(regs);
    std::memcpy(s.registers.data(), b + 8, size_t{regs} * 4);
    s.blob.assign(b + 8 + size_t{regs} * 4, b + 8 + size_t{regs} * 4 + blob);
    out[ids[i]] = std::move(s);
  }
  return out;
}

// Each agent's state file (actors/agents/sim_agents.cpp), hashed: the state
// it has when it parks or is restored, which a kill -9 leaves as it was.
inline std::map<std::string, std::string> read_agents(const std::string& dir, int count) {
  std::map<std::string, std::string> out;
  for (int i = 0; i < count; ++i) {
    char id[32];
    std::snprintf(id, sizeof id, "agent-%02d", i);
    auto path = dir + "/" + id + ".state";
    if (!std::filesystem::exists(path)) continue;
    auto snapshot = sim_agent_host::read_state_file(env::posix(), path);
    out[id] = snapshot ? sha256_hex(*snapshot) : "unreadable: " + snapshot.err().message;
  }
  return out;
}

class node_driver {
public:
  node_driver(caf::actor_system& sys, std::string data_dir, std::string config)
      : sys_(sys), data_dir_(std::move(data_dir)), config_(std::move(config)) {}

  void start() {
    std::vector<std::string> argv = {
        test::program("DSMILD"), "--listen", "127.0.0.1:0", "--data-dir", data_dir_,
        "--log-level",           "warn"};
    if (!config_.empty()) {
      argv.push_back("--config");
      argv.push_back(config_);
    }
    proc_ = std::make_unique<test::child_process>(argv);
    // Log lines (a saga settled at start-up) may come before it.
    const std::string prefix = "dsmild listening on ";
    auto line = proc_->read_line();
    for (int skipped = 0;
         skipped < 100 && !line.empty() && line.compare(0, prefix.size(), prefix) != 0; ++skipped)
      line = proc_->read_line();
    REQUIRE_MESSAGE(line.compare(0, prefix.size(), prefix) == 0,
                    "dsmild did not start: '" << line << "' " << test::slurp(proc_->stderr_path()));
    auto endpoint = line.substr(prefix.size());
    auto colon = endpoint.rfind(':');
    auto signer = load_signer(admin_of(data_dir_));
    REQUIRE_MESSAGE(signer, signer.err().message);
    signer_ = std::make_unique<request_signer>(*signer);
    auto remote = connect_node(sys_, endpoint.substr(0, colon),
                               static_cast<uint16_t>(std::stoi(endpoint.substr(colon + 1))));
    REQUIRE_MESSAGE(remote,
                    "cannot connect to dsmild at " << endpoint << ": " << remote.err().message);
    node_ = *remote;
  }

  int kill() {
    int rc = proc_->stop(SIGKILL);
    proc_.reset();
    return rc;
  }
  void stop() {
    if (proc_) proc_->stop(SIGTERM);
    proc_.reset();
  }

  /// The admin credential dsmild makes under its data dir.
  static credential_files admin_of(const std::string& data_dir) {
    return {data_dir + "/" + tls_layout::admin_cert, data_dir + "/" + tls_layout::admin_key,
            data_dir + "/" + tls_layout::ca_cert};
  }

  control_reply ctl(const std::string& command, const json& args = json::object()) {
    auto r = ask_gate(sys_, node_, *signer_, std::chrono::seconds(60), command, args, &nonce_);
    if (!r) return control_reply{255, r.err().message, "{}"};
    return *r;
  }
  json ok(const std::string& command, const json& args = json::object()) {
    auto r = ctl(command, args);
    REQUIRE_MESSAGE(r.code == 0, command << ": " << r.message);
    return json::parse(r.body);
  }
  // Fire and forget: the answer is never awaited (the node is killed).
  void send(const std::string& command, const json& args) {
    auto bytes = encode_request(command, args);
    REQUIRE(bytes);
    caf::scoped_actor self{sys_};
    self->request(node_, std::chrono::seconds(10), challenge_request{})
        .receive(
            [&](challenge& c) {
              auto sig = signer_->sign(c.nonce, command, *bytes);
              REQUIRE(sig);
              caf::anon_send(node_,
                             signed_request{command, *bytes, signer_->cert_der(), c.nonce, *sig});
            },
            [&](caf::error& e) { FAIL("no nonce from the node: " << caf::to_string(e)); });
  }

private:
  caf::actor_system& sys_;
  std::string data_dir_;
  std::string config_;
  std::unique_ptr<test::child_process> proc_;
  std::unique_ptr<request_signer> signer_;
  gate_nonce nonce_; ///< carried from one answer to the next request
  gate_api node_;
};

} // namespace dsmil::test
