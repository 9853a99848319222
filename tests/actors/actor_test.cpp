// Device actors and supervisors under CAF's deterministic scheduler: time is
// the test clock, so backoff, breakers and restart windows run without waiting.
#include <doctest/doctest.h>

#include <caf/all.hpp>
#include <caf/scheduler/test_coordinator.hpp>

#include "actors/caf_glue.hpp"
#include "actors/devices/supervisors.hpp"
#include "runtime/config/node_config.hpp"
#include "runtime/devices/sim_driver.hpp"

using namespace dsmil;
using namespace std::chrono_literals;

namespace {

struct actor_fixture {
  caf::actor_system_config cfg;
  std::unique_ptr<caf::actor_system> sys;
  caf::scheduler::test_coordinator* sched = nullptr;
  std::shared_ptr<const device_map> map;
  std::shared_ptr<sim_driver> sim;
  device_service sup;
  std::unique_ptr<caf::scoped_actor> self;

  actor_fixture() {
    cfg.set("scheduler.policy", caf::atom("testing"));
    configure_actor_system(cfg, false);
    sys = std::make_unique<caf::actor_system>(cfg);
    sched = &dynamic_cast<caf::scheduler::test_coordinator&>(sys->scheduler());
    map = std::make_shared<const device_map>(*device_map::parse(embedded_devices_toml(), "d"));
    sim = std::make_shared<sim_driver>(*map, 7, env::posix());
    supervisor_config sc;
    sc.drv = std::make_shared<guarded_driver>(map, sim);
    sc.map = map;
    sc.breaker = {3, 10000, 2};     // open after 3 failures, for 10 s, 2 successes to close
    sc.retry = {3, 100, 1000, 0.1}; // 3 calls, 100 ms, 200 ms (+/- 10%)
    sc.supervision = {2, 5000};     // 2 restarts in 5 s, then give up
    sup = spawn_root_supervisor(*sys, sc);
    self = std::make_unique<caf::scoped_actor>(*sys);
    sched->run();
  }

  ~actor_fixture() {
    (*self)->send_exit(sup, caf::exit_reason::user_shutdown);
    sched->run();
  }

  // Sends a request, runs the scheduler (advancing time `step` at a time while
  // timers are pending), and returns the answer.
  template <class... Ts> result<device_state> call(Ts&&... xs) {
    result<device_state> out = make_error(errc::internal, "no answer");
    auto h = (*self)->request(sup, caf::infinite, std::forward<Ts>(xs)...);
    sched->run();
    while (sched->has_pending_timeout() && !answered(h)) {
      sched->clock().advance_time(50ms);
      sched->run();
    }
    h.receive([&](device_state& s) { out = std::move(s); },
              [&](caf::error& e) { out = from_caf(e); });
    return out;
  }

  template <class Handle> bool answered(Handle&) { return (*self)->mailbox().size() > 0; }

  std::vector<device_health> health() {
    std::vector<device_health> out;
    auto h = (*self)->request(sup, caf::infinite, health_atom::value);
    sched->run();
    h.receive([&](std::vector<device_health>& v) { out = std::move(v); },
              [&](caf::error& e) { FAIL(caf::to_string(e)); });
    return out;
  }

  device_health health_of(device_id id) {
    for (auto& h : health())
      if (h.id == id) return h;
    FAIL("no health for " << format_device_id(id));
    return {};
  }

  void crash(device_id id) {
    (*self)->send(sup, crash_atom::value, id);
    sched->run();
  }
};

device_patch write_reg(device_id id, uint32_t idx, uint32_t value) {
  device_patch p;
  p.id = id;
  p.register_index = {idx};
  p.register_value = {value};
  return p;
}

} // namespace

TEST_CASE("reads and writes go through the supervisors to the device") {
  actor_fixture f;
  auto s = f.call(write_reg(0x8031, 2, 0xABCD));
  REQUIRE_MESSAGE(s.ok(), s.err().message);
  CHECK(s->registers[2] == 0xABCD);
  CHECK(f.call(read_atom::value, device_id{0x8031})->registers[2] == 0xABCD);
  CHECK(f.call(read_atom::value, device_id{0x800C}).err().code == errc::no_such_device);
  CHECK(f.call(write_reg(0x8019, 0, 1)).err().code == errc::quarantined);
  CHECK(f.sim->write_count(0x8019) == 0);
  CHECK(f.health().size() == 84);
}

TEST_CASE("a crashed device actor is restarted and the device keeps answering with its state") {
  actor_fixture f;
  REQUIRE(f.call(write_reg(0x8042, 0, 77)).ok());
  f.crash(0x8042);
  auto h = f.health_of(0x8042);
  CHECK(h.restarts == 1);
  CHECK_FALSE(h.given_up);
  auto s = f.call(read_atom::value, device_id{0x8042});
  REQUIRE_MESSAGE(s.ok(), s.err().message);
  CHECK(s->registers[0] == 77);
  // Its neighbours never noticed.
  CHECK(f.health_of(0x8041).restarts == 0);
}

TEST_CASE(
    "restarts beyond the intensity limit escalate: the device is given up and its breaker opens") {
  actor_fixture f;
  f.crash(0x8052);
  f.crash(0x8052);
  CHECK(f.health_of(0x8052).restarts == 2);
  CHECK(f.call(read_atom::value, device_id{0x8052}).ok());
  f.crash(0x8052); // third crash inside the 5 s window
  auto h = f.health_of(0x8052);
  CHECK(h.given_up);
  CHECK(h.breaker == "open");
  auto r = f.call(read_atom::value, device_id{0x8052});
  CHECK(r.err().code == errc::unavailable);
  CHECK(r.err().message.find("given up") != std::string::npos);
  CHECK(f.call(read_atom::value, device_id{0x8053}).ok());
}

TEST_CASE("crashes spread over more than the window are restarted each time") {
  actor_fixture f;
  for (int i = 0; i < 5; ++i) {
    f.crash(0x8060);
    f.sched->clock().advance_time(3000ms);
  }
  auto h = f.health_of(0x8060);
  CHECK(h.restarts == 5);
  CHECK_FALSE(h.given_up);
}

TEST_CASE("driver errors are retried with backoff on the actor clock, then the breaker opens and "
          "recovers") {
  actor_fixture f;
  fault_spec off;
  off.offline = true;
  f.sim->set_fault(0x8033, off);
  auto start = f.sched->clock().now();
  const auto reads_before = f.sim->read_count(0x8033);
  auto r = f.call(read_atom::value, device_id{0x8033});
  REQUIRE_FALSE(r.ok());
  CHECK(r.err().code == errc::device_offline);
  CHECK(r.err().message.find("after 3 attempts") != std::string::npos);
  CHECK(f.sim->read_count(0x8033) - reads_before == 3); // the driver saw every attempt
  // Two backoff waits: ~100 ms and ~200 ms (+/- 10%), in virtual time.
  auto waited =
      std::chrono::duration_cast<std::chrono::milliseconds>(f.sched->clock().now() - start);
  CHECK(waited.count() >= 250);
  CHECK(waited.count() <= 400);
  CHECK(f.health_of(0x8033).breaker == "open"); // 3 failures = threshold

  // Open: calls fail fast without reaching the driver.
  const auto reads_open = f.sim->read_count(0x8033);
  auto fast = f.call(read_atom::value, device_id{0x8033});
  CHECK(fast.err().code == errc::circuit_open);
  CHECK(f.sim->read_count(0x8033) == reads_open); // never reached the driver
  f.sim->set_fault(0x8033, {});
  CHECK(f.call(read_atom::value, device_id{0x8033}).err().code == errc::circuit_open);

  // After open_ms: half-open; two successes close it.
  f.sched->clock().advance_time(10000ms);
  f.sched->run();
  CHECK(f.health_of(0x8033).breaker == "half-open");
  CHECK(f.call(read_atom::value, device_id{0x8033}).ok());
  CHECK(f.health_of(0x8033).breaker == "half-open");
  CHECK(f.call(read_atom::value, device_id{0x8033}).ok());
  CHECK(f.health_of(0x8033).breaker == "closed");
}

TEST_CASE("a transient error is absorbed by a retry") {
  actor_fixture f;
  fault_spec flaky;
  flaky.error_rate = 0.3;
  f.sim->set_fault(0x8044, flaky);
  int ok = 0, calls = 0;
  const auto reads_before = f.sim->read_count(0x8044);
  for (int i = 0; i < 20; ++i) {
    auto r = f.call(read_atom::value, device_id{0x8044});
    ++calls;
    ok += r.ok();
    if (f.health_of(0x8044).breaker != "closed") break;
  }
  CHECK(ok >= 15); // a call fails only when all 3 attempts fail (about 3%)
  // Some first attempts failed and were retried (the simulator is seeded:
  // this is the same every run), and no call made more than 3 attempts.
  const auto attempts = f.sim->read_count(0x8044) - reads_before;
  CHECK(attempts > static_cast<uint64_t>(calls));
  CHECK(attempts <= 3 * static_cast<uint64_t>(calls));
}

TEST_CASE("injected latency delays the reply on the actor clock instead of blocking") {
  actor_fixture f;
  fault_spec slow;
  slow.latency_ms = 400;
  f.sim->set_fault(0x8021, slow);
  auto start = f.sched->clock().now();
  auto r = f.call(read_atom::value, device_id{0x8021});
  REQUIRE(r.ok());
  auto waited =
      std::chrono::duration_cast<std::chrono::milliseconds>(f.sched->clock().now() - start);
  CHECK(waited.count() >= 400);
}
