// The rollback saga with the devices' own handler (devices_handler.cpp) and
// the device actors on the test clock: a silent device fails its step at the
// step's limit, named; a pre-emption abandons a step waiting for it at once;
// and an abandoned step never writes, whenever its reads come back.
#include "tests/actors/saga_fixture.hpp"

using namespace dsmil;
using namespace dsmil::test;

TEST_CASE("a device that never answers fails its step at step_timeout_ms on the actor clock, "
          "named; the rest is put back") {
  device_saga_fixture f;
  fault_spec hung;
  hung.latency_ms = 600000; // answers in ten minutes
  f.sim->set_fault(0x8031, hung);
  const auto writes_31 = f.sim->write_count(0x8031);
  f.start("s1");
  f.advance(999ms);
  CHECK_FALSE(f.reply());
  // Its read gives up at the step's limit, and 0x8032 is written; putting
  // them back waits for 0x8031 again, until compensation_step_timeout_ms.
  f.advance(1ms);
  CHECK_FALSE(f.reply());
  CHECK(f.register0(0x8032) == (f.before_32.registers[0] ^ 0xff));
  f.advance(1000ms);
  auto r = f.reply();
  REQUIRE(r);
  CHECK(r->code == static_cast<uint8_t>(errc::timeout));
  CHECK(r->message.find("group 3 took longer than step_timeout_ms (1000 ms): 0x8031: cannot read "
                        "it before restoring it") == 0);
  auto body = json::parse(r->body);
  CHECK(body["outcome"] == "compensation_failed");
  REQUIRE(body["compensated"]["failed"].size() == 1);
  CHECK(body["compensated"]["failed"][0]["id"] == "0x8031");
  CHECK(f.sim->write_count(0x8031) == writes_31); // never written blind
  CHECK(f.register0(0x8032) == f.before_32.registers[0]);
  REQUIRE(f.settled.size() == 1);
  CHECK(f.settled[0].items == std::vector<std::string>{"0x8031"});
}

TEST_CASE("an emergency pre-empts a step waiting for a silent device with no time passing; the "
          "abandoned step writes nothing, and the emergency restores it") {
  device_saga_fixture f;
  f.ctx->cfg.rollback_step_timeout_ms = 120000;
  fault_spec hung;
  hung.latency_ms = 600000;
  f.sim->set_fault(0x8031, hung);
  const auto writes_31 = f.sim->write_count(0x8031);
  const auto writes_32 = f.sim->write_count(0x8032);
  auto first = f.start("s1");
  CHECK_FALSE(f.reply()); // waiting for 0x8031
  f.preempt(first);
  f.sim->set_fault(0x8031, fault_spec{}); // answers again (its pending reply stays late)
  f.start("s2", true);
  auto r = f.reply();
  REQUIRE(r);
  CHECK(json::parse(r->body)["outcome"] == "preempted");
  CHECK(json::parse(r->body)["compensated"]["ok"] == true);
  auto r2 = f.reply();
  REQUIRE(r2);
  CHECK_MESSAGE(r2->code == 0, r2->message);
  // Written once each, by the emergency: the pre-empted step never wrote.
  CHECK(f.sim->write_count(0x8031) == writes_31 + 1);
  CHECK(f.sim->write_count(0x8032) == writes_32 + 1);
  CHECK(f.register0(0x8031) == (f.before_31.registers[0] ^ 0xff));
  CHECK(f.at("journal s1 end preempted") < f.at("prepare s2"));
  // The abandoned step's late answer, when it comes, changes nothing.
  f.advance(600000ms);
  CHECK(f.sim->write_count(0x8031) == writes_31 + 1);
  CHECK(f.sim->write_count(0x8032) == writes_32 + 1);
  CHECK(f.register0(0x8032) == (f.before_32.registers[0] ^ 0xff));
}

TEST_CASE("a step abandoned by a pre-emption never writes, even when its reads answer while "
          "the compensation still runs") {
  device_saga_fixture f;
  f.ctx->cfg.rollback_step_timeout_ms = 120000;
  f.ctx->cfg.rollback_compensation_step_timeout_ms = 30000;
  fault_spec slow;
  slow.latency_ms = 5000;
  f.sim->set_fault(0x8031, slow);
  const auto writes_31 = f.sim->write_count(0x8031);
  const auto writes_32 = f.sim->write_count(0x8032);
  auto first = f.start("s1");
  f.preempt(first);
  // Putting back waits for 0x8032 now; 0x8031 answers the step at 5 s.
  fault_spec slower;
  slower.latency_ms = 10000;
  f.sim->set_fault(0x8031, fault_spec{});
  f.sim->set_fault(0x8032, slower);
  f.sched->run();
  f.advance(5000ms);
  CHECK_FALSE(f.reply());
  // 0x8032 answers the putting back at 10 s, and its read-back at 20 s.
  f.advance(5000ms);
  CHECK_FALSE(f.reply());
  f.advance(10000ms);
  auto r = f.reply();
  REQUIRE(r);
  auto body = json::parse(r->body);
  CHECK(body["outcome"] == "preempted");
  CHECK(body["compensated"]["ok"] == true);
  // Neither was written: the abandoned step's reads came back, and it wrote nothing.
  CHECK(f.sim->write_count(0x8031) == writes_31);
  CHECK(f.sim->write_count(0x8032) == writes_32);
  CHECK(f.register0(0x8031) == f.before_31.registers[0]);
  CHECK(f.register0(0x8032) == f.before_32.registers[0]);
}
