// A whole node in-process for the node suites: real scheduler, real store
// (on disk, or on the memory env with DSMIL_TEST_ENV=memory).
#pragma once

#include <functional>
#include <map>

#include <doctest/doctest.h>

#include <caf/all.hpp>
#include <nlohmann/json.hpp>

#include "actors/caf_glue.hpp"
#include "actors/messages.hpp"
#include "actors/node_client.hpp"
#include "actors/node/node.hpp"
#include "runtime/devices/sim_driver.hpp"
#include "tests/test_env.hpp"

namespace dsmil::test {

using nlohmann::json;

struct node_fixture {
  test::env_dir dir;
  caf::actor_system_config cfg;
  std::unique_ptr<caf::actor_system> sys;
  node_config ncfg;
  node_handles node;
  device_map map;

  explicit node_fixture(bool encrypt = false, uint32_t automatic_interval_s = 0,
                        const std::function<void(node_config&)>& adjust = nullptr,
                        env* files = nullptr,
                        std::vector<std::shared_ptr<component>> components = {}) {
    configure_actor_system(cfg, false);
    sys = std::make_unique<caf::actor_system>(cfg);
    ncfg = *node_config::embedded();
    ncfg.data_dir = files ? "/node" : dir.path();
    ncfg.store_encrypt = encrypt;
    ncfg.automatic_interval_s = automatic_interval_s;
    if (adjust) adjust(ncfg);
    map = ncfg.devices;
    auto n = start_node(*sys, ncfg, files ? *files : test::test_env(), std::move(components));
    REQUIRE_MESSAGE(n.ok(), n.err().message);
    node = *n;
  }

  ~node_fixture() { caf::anon_send_exit(*node.control, caf::exit_reason::user_shutdown); }

  control_reply ctl(const std::string& command, const json& args = json::object()) {
    auto r = ask_node(*sys, *node.control, std::chrono::seconds(60), command, args);
    if (!r) FAIL(r.err().message);
    return *r;
  }

  json ok(const std::string& command, const json& args = json::object()) {
    auto r = ctl(command, args);
    REQUIRE_MESSAGE(r.code == 0, command << ": " << r.message);
    return json::parse(r.body);
  }

  std::map<device_id, device_state> snapshot() {
    std::map<device_id, device_state> out;
    for (auto& d : map.devices())
      out[d.id] = *node.sim->read(d.id);
    return out;
  }

  // Changes every restorable field of every non-quarantined device, behind
  // the node's back (as a misbehaving component would).
  void scramble(uint64_t seed, int only_group = -1) {
    for (auto& d : map.devices())
      if (!d.quarantined && (only_group < 0 || d.group == only_group))
        REQUIRE_FALSE(node.sim->scramble(d.id, seed));
  }

  uint64_t quarantined_writes() {
    uint64_t n = 0;
    for (auto& d : map.devices())
      if (d.quarantined) n += node.sim->write_count(d.id);
    return n;
  }
};

inline void check_equal(const std::map<device_id, device_state>& a,
                        const std::map<device_id, device_state>& b, int only_group = -1) {
  for (auto& [id, s] : a) {
    if (only_group >= 0 && ((id >> 4) & 0xF) != only_group) continue;
    CAPTURE(format_device_id(id));
    auto& t = b.at(id);
    CHECK(s.registers == t.registers);
    CHECK(s.config_blob == t.config_blob);
    CHECK(s.enabled == t.enabled);
    CHECK(s.security_level == t.security_level);
  }
}

} // namespace dsmil::test
