#include <cstring>
#include <memory>

#include <doctest/doctest.h>

#include "runtime/devices/driver.hpp"
#include "runtime/config/node_config.hpp"
#include "runtime/devices/sim_driver.hpp"
#include "tests/test_util.hpp"

using namespace dsmil;

namespace {

struct fixture {
  std::shared_ptr<const device_map> map;
  std::shared_ptr<sim_driver> sim;
  guarded_driver drv;

  explicit fixture(uint64_t seed = 5450)
      : map(std::make_shared<const device_map>(*device_map::parse(embedded_devices_toml(), "d"))),
        sim(std::make_shared<sim_driver>(*map, seed, env::posix())), drv(map, sim) {}
};

device_patch set_register(device_id id, uint32_t idx, uint32_t value) {
  device_patch p;
  p.id = id;
  p.register_index = {idx};
  p.register_value = {value};
  return p;
}

} // namespace

TEST_CASE(
    "a write to a quarantined device is refused below every caller; the backend never sees it") {
  fixture f;
  for (device_id q : {0x8009, 0x800A, 0x800B, 0x8019, 0x8029}) {
    auto before = *f.drv.read(q);
    device_patch p = set_register(q, 0, 0xDEAD);
    p.enabled = 1;
    auto err = f.drv.write(p);
    CHECK(err.code == errc::quarantined);
    CHECK(err.message.find("quarantined") != std::string::npos);
    CHECK(f.sim->write_count(q) == 0);
    CHECK(same_restorable_state(*f.drv.read(q), before));
  }
  CHECK(f.sim->write_count() == 0);
  // A normal device is written, and the count shows the backend saw it.
  CHECK_FALSE(f.drv.write(set_register(0x8031, 3, 7)));
  CHECK(f.sim->write_count() == 1);
  CHECK(f.drv.read(0x8031)->registers[3] == 7);
}

TEST_CASE("ids that do not exist are errors, not defaults") {
  fixture f;
  for (device_id id : {0x800C, 0x800F, 0x806C, 0x7FFF, 0x9000}) {
    CHECK(f.drv.read(id).err().code == errc::no_such_device);
    CHECK(f.drv.write(set_register(id, 0, 1)).code == errc::no_such_device);
  }
  CHECK(f.sim->write_count() == 0);
}

TEST_CASE("patches must fit the device") {
  fixture f;
  CHECK(f.drv.write(set_register(0x8031, 16, 1)).code == errc::invalid_argument);
  CHECK(f.drv.write(set_register(0x8005, 31, 1)).code == errc::none); // 0x8005 has 32
  device_patch blob;
  blob.id = 0x8031;
  blob.set_blob = true;
  blob.config_blob.resize(10);
  CHECK(f.drv.write(blob).code == errc::invalid_argument);
  device_patch level;
  level.id = 0x8031;
  level.security_level = 5;
  CHECK(f.drv.write(level).code == errc::invalid_argument);
}

TEST_CASE("the simulator's initial state is a pure function of the seed") {
  fixture a(1), b(1), c(2);
  for (auto& d : a.map->devices()) {
    auto sa = *a.drv.read(d.id), sb = *b.drv.read(d.id);
    CHECK(same_restorable_state(sa, sb));
    CHECK(sa.registers.size() == d.register_count);
    CHECK(sa.config_blob.size() == d.config_blob_size);
    CHECK(sa.security_level <= 4);
  }
  CHECK_FALSE(same_restorable_state(*a.drv.read(0x8031), *c.drv.read(0x8031)));
}

TEST_CASE("injected faults: offline, error rate, stuck register, thermal spike, latency") {
  fixture f;
  fault_spec off;
  off.offline = true;
  f.sim->set_fault(0x8031, off);
  CHECK(f.drv.read(0x8031).err().code == errc::device_offline);
  CHECK(f.drv.write(set_register(0x8031, 0, 1)).code == errc::device_offline);
  f.sim->set_fault(0x8031, {});
  CHECK(f.drv.read(0x8031).ok());

  fault_spec flaky;
  flaky.error_rate = 0.5;
  f.sim->set_fault(0x8040, flaky);
  int failures = 0;
  for (int i = 0; i < 200; ++i)
    failures += f.drv.read(0x8040).ok() ? 0 : 1;
  CHECK(failures > 60);
  CHECK(failures < 140);

  fault_spec stuck;
  stuck.stuck_register = 2;
  f.sim->set_fault(0x8050, stuck);
  auto before = f.drv.read(0x8050)->registers;
  device_patch p = set_register(0x8050, 2, 0x1234);
  p.register_index.push_back(3);
  p.register_value.push_back(0x5678);
  CHECK_FALSE(f.drv.write(p)); // the device accepts the write and loses part of it
  auto after = f.drv.read(0x8050)->registers;
  CHECK(after[2] == before[2]);
  CHECK(after[3] == 0x5678);

  fault_spec hot;
  hot.thermal_spike = true;
  f.sim->set_fault(0x8060, hot);
  CHECK(f.drv.read(0x8060)->temperature_c > 100.0);
  auto err = f.drv.write(set_register(0x8060, 0, 1));
  CHECK(err.code == errc::permission_denied);
  CHECK(err.message.find("critical limit") != std::string::npos);

  fault_spec slow;
  slow.latency_ms = 25;
  f.sim->set_fault(0x8061, slow);
  CHECK(f.drv.latency_ms(0x8061) == 25);
  CHECK(f.drv.latency_ms(0x8062) == 0);
}

TEST_CASE("with a state file the simulated devices keep their state across restarts") {
  test::temp_dir dir;
  const std::string path = dir.path() + "/devices.sim";
  device_state written;
  {
    fixture f;
    REQUIRE_FALSE(f.sim->persist_to(path));
    device_patch p = set_register(0x8003, 2, 0xC0FFEE);
    p.set_blob = true;
    p.config_blob = f.drv.read(0x8003)->config_blob;
    p.config_blob[0] ^= 0xFF;
    p.enabled = 0;
    p.security_level = 1;
    REQUIRE_FALSE(f.drv.write(p));
    REQUIRE_FALSE(f.drv.write(set_register(0x8003, 3, 7))); // both slots used at least once
    written = *f.drv.read(0x8003);
  }
  fixture again;
  auto seeded = *again.drv.read(0x8003);
  CHECK_FALSE(same_restorable_state(seeded, written));
  REQUIRE_FALSE(again.sim->persist_to(path));
  CHECK(same_restorable_state(*again.drv.read(0x8003), written));
  CHECK(same_restorable_state(*again.drv.read(0x8004), *fixture().drv.read(0x8004)));

  SUBCASE("a write torn before its slot was published leaves the state before it") {
    auto before = *again.drv.read(0x8003);
    REQUIRE_FALSE(again.drv.write(set_register(0x8003, 2, 0xBAD)));
    auto bytes = test::slurp(path);
    // Undo the publication: zero the CRC of the slot holding the newest
    // sequence, as a kill between filling a slot and its sequence would.
    size_t newest = 0;
    uint64_t best = 0;
    for (size_t off = 64; off + 20 <= bytes.size(); off += 64) {
      uint64_t seq;
      std::memcpy(&seq, bytes.data() + off, 8);
      if (seq > best && seq < 1000) best = seq, newest = off;
    }
    REQUIRE(newest > 0);
    std::memset(&bytes[newest + 8], 0, 8);
    test::spit(path, bytes);
    fixture third;
    REQUIRE_FALSE(third.sim->persist_to(path));
    CHECK(same_restorable_state(*third.drv.read(0x8003), before));
  }
  SUBCASE("a file made for another seed is refused, naming the file") {
    fixture other(7);
    auto err = other.sim->persist_to(path);
    REQUIRE(err);
    CHECK(err.message.find(path) != std::string::npos);
    CHECK(err.message.find("another seed") != std::string::npos);
  }
  SUBCASE("a file of the wrong size is refused") {
    test::spit(path, "not a state file");
    auto err = fixture().sim->persist_to(path);
    REQUIRE(err);
    CHECK(err.message.find("another device map") != std::string::npos);
  }
}
