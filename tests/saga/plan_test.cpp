#include <algorithm>
#include <map>

#include <doctest/doctest.h>

#include "runtime/config/node_config.hpp"
#include "runtime/devices/sim_driver.hpp"
#include "runtime/os/env.hpp"
#include "runtime/saga/plan.hpp"
#include "runtime/store/store.hpp"

using namespace dsmil;

namespace {

struct plan_fixture {
  device_map map = *device_map::parse(embedded_devices_toml(), "d");
  sim_driver sim{map, 5450, env::posix()};
  checkpoint_contents target;
  std::vector<device_state> current;

  plan_fixture() {
    for (auto& d : map.devices())
      target.devices.push_back(*sim.read(d.id));
    current = target.devices;
  }
  device_state& now(device_id id) {
    return *std::find_if(current.begin(), current.end(), [&](auto& s) { return s.id == id; });
  }
  uint8_t group_of(device_id id) const { return map.find(id)->group; }
};

} // namespace

TEST_CASE("a full plan restores every device in group dependency order, never a quarantined one") {
  plan_fixture f;
  f.now(0x8031).registers[2] ^= 1;
  f.now(0x8031).enabled = !f.now(0x8031).enabled;
  auto p = plan_rollback(f.map, f.target, f.current, system_config{}, {});
  REQUIRE(p);
  CHECK(p->restore_configuration);
  // Every group comes after the groups it depends on.
  std::map<uint8_t, size_t> first, last;
  for (size_t i = 0; i < p->devices.size(); ++i) {
    auto g = f.group_of(p->devices[i]);
    if (!first.count(g)) first[g] = i;
    last[g] = i;
  }
  for (auto& [g, at] : first)
    for (auto dep : f.map.groups()[g].depends_on)
      CHECK_MESSAGE(last[dep] < at, "group " << int(g) << " restored before group " << int(dep));
  size_t quarantined = 0;
  for (auto& d : f.map.devices())
    quarantined += d.quarantined;
  CHECK(p->quarantined.size() == quarantined);
  for (auto q : p->quarantined)
    CHECK(std::find(p->devices.begin(), p->devices.end(), q) == p->devices.end());
  CHECK(p->devices.size() + quarantined == f.map.devices().size());
  REQUIRE(p->diffs.size() == 1);
  CHECK(p->diffs[0].id == 0x8031);
  CHECK(p->diffs[0].registers == std::vector<uint32_t>{2});
  CHECK(p->diffs[0].enabled);
  CHECK_FALSE(p->diffs[0].blob);
}

TEST_CASE("a selective plan takes every group that depends on the selection, transitively") {
  plan_fixture f;
  rollback_selection sel;
  sel.groups = {3};
  auto p = plan_rollback(f.map, f.target, f.current, system_config{}, sel);
  REQUIRE(p);
  CHECK_FALSE(p->restore_configuration);
  CHECK(p->dependents == std::vector<uint8_t>{4}); // 4 depends on 0 and 3
  for (auto id : p->devices)
    CHECK((f.group_of(id) == 3 || f.group_of(id) == 4));
  sel.groups = {0};
  p = plan_rollback(f.map, f.target, f.current, system_config{}, sel);
  REQUIRE(p);
  auto deps = p->dependents;
  std::sort(deps.begin(), deps.end());
  CHECK(deps == std::vector<uint8_t>{1, 2, 3, 4, 5}); // 6 is optional: depends on nothing
}

TEST_CASE("a change to a critical device is named; a bad selection is refused with one line") {
  plan_fixture f;
  f.now(0x8005).registers[0] ^= 0xff; // 0x8005: TPM, critical
  auto p = plan_rollback(f.map, f.target, f.current, system_config{}, {});
  REQUIRE(p);
  CHECK(p->critical_changes == std::vector<device_id>{0x8005});
  rollback_selection bad;
  bad.devices = {0x800C};
  auto r = plan_rollback(f.map, f.target, f.current, system_config{}, bad);
  REQUIRE_FALSE(r);
  CHECK(r.err().code == errc::no_such_device);
  CHECK(r.err().message == "no such device 0x800c");
  rollback_selection bad_group;
  bad_group.groups = {7};
  CHECK(plan_rollback(f.map, f.target, f.current, system_config{}, bad_group).err().message ==
        "no such group 7; groups are 0-6");
}
