// Several commands at once: reads are answered while a checkpoint or a
// rollback saga is held inside a component (by a gate, not slowed by
// sleeps), and changes are refused while a saga runs, naming it. Before the
// node had workers, each read here waited for the held command.
#include <future>

#include "tests/actors/counter_component.hpp"
#include "tests/actors/node_fixture.hpp"

using namespace dsmil;
using namespace dsmil::test;

TEST_CASE("status, lists and shows answer while a checkpoint is held inside a component") {
  counter_node n;
  const auto first = n.f.ok("checkpoint.create")["id"].get<std::string>();
  n.counter->capture_gate.close();
  auto pending = std::async(std::launch::async, [&] { return n.f.ctl("checkpoint.create"); });
  n.counter->capture_gate.wait_entered();

  auto st = n.f.ok("status");
  CHECK(st["checkpoints"]["count"] == 1);
  CHECK(st["checkpoints"]["latest"] == first);
  CHECK(st["rollback"].is_null());
  CHECK(n.f.ok("checkpoint.list")["checkpoints"].size() == 1);
  CHECK(n.f.ok("checkpoint.show", {{"id", first}})["id"] == first);
  CHECK(n.f.ok("device.show", {{"id", "0x8000"}})["id"] == "0x8000");
  CHECK(n.f.ok("device.list")["devices"].size() == n.f.map.devices().size());
  CHECK(n.f.ok("config.show").contains("config_version"));
  CHECK(n.f.ok("keys.show")["provider"] == "software");
  CHECK(n.f.ok("rollback.history").contains("rollbacks"));

  n.counter->capture_gate.open();
  auto made = pending.get();
  REQUIRE_MESSAGE(made.code == 0, made.message);
  CHECK(n.f.ok("status")["checkpoints"]["count"] == 2);
}

TEST_CASE("while a rollback is held in a step, reads answer and changes are refused naming it") {
  counter_node n;
  auto held = hold_rollback_in_apply(n); // waits in the counter's apply
  const auto& id = held.id;
  const auto& at_checkpoint = held.at_checkpoint;
  auto& pending = held.reply;

  auto st = n.f.ok("status");
  REQUIRE(st["rollback"].is_object());
  CHECK(st["rollback"]["phase"] == "execution");
  const auto saga = st["rollback"]["id"].get<std::string>();
  // The pre-rollback checkpoint is made before the first step.
  CHECK(n.f.ok("checkpoint.list")["checkpoints"].size() == 2);
  CHECK(n.f.ok("rollback.show", {{"id", saga}})["id"] == saga);
  auto refused = n.f.ctl("config.set", {{"key", "agent_concurrency_limit"}, {"value", "7"}});
  CHECK(refused.code == static_cast<uint8_t>(errc::busy));
  CHECK(refused.message.find("rollback " + saga + " is running (execution)") == 0);
  auto second = n.f.ctl("rollback", {{"id", id}});
  CHECK(second.code == static_cast<uint8_t>(errc::busy));
  CHECK(second.message.find(saga) != std::string::npos);
  // A long read goes on beside the saga too (a dry run would not: it
  // captures the counter, which the saga holds).
  CHECK(n.f.ok("checkpoint.verify", {{"id", id}})["valid"] == true);

  n.counter->apply_gate.open();
  auto done = pending.get();
  REQUIRE_MESSAGE(done.code == 0, done.message);
  CHECK(n.counter->state() == at_checkpoint);
  CHECK(n.f.ok("status")["rollback"].is_null());
}

TEST_CASE("an emergency rollback pre-empts a saga held in a component at once: it compensates "
          "first, then the emergency runs") {
  counter_node n;
  auto held = hold_rollback_in_apply(n); // waits in the counter's apply
  const auto& id = held.id;
  const auto& at_checkpoint = held.at_checkpoint;
  auto& first = held.reply;
  const auto saga = n.f.ok("status")["rollback"]["id"].get<std::string>();
  auto emergency = std::async(std::launch::async, [&] {
    return n.f.ctl("rollback", {{"id", id}, {"type", "emergency"}});
  });
  // Barrier: the first saga journals the start of its compensation while
  // the counter's apply is still held, so it left the step without waiting
  // for it. (Each look is a request; no sleeps.)
  auto compensating = [&] {
    const auto shown = n.f.ok("rollback.show", {{"id", saga}});
    for (auto& r : shown["journal"])
      if (r.value("t", std::string()) == "compensate_start") return true;
    return false;
  };
  bool seen = false;
  for (int i = 0; i < 100000 && !seen; ++i)
    seen = compensating();
  REQUIRE_MESSAGE(seen, n.f.ok("rollback.show", {{"id", saga}}).dump());
  auto st = n.f.ok("status");
  CHECK(st["rollback"]["id"] == saga);
  CHECK(st["rollback"]["emergency_waiting"] == true);

  // The held apply returns; the compensation behind it puts the counter
  // back, then the emergency rolls it to the checkpoint.
  n.counter->apply_gate.open();
  auto r1 = first.get();
  auto b1 = json::parse(r1.body);
  CHECK(b1["outcome"] == "preempted");
  CHECK(b1["compensated"]["ok"] == true);
  auto r2 = emergency.get();
  REQUIRE_MESSAGE(r2.code == 0, r2.message);
  CHECK(n.counter->state() == at_checkpoint);
  auto h = n.f.ok("rollback.history")["rollbacks"];
  REQUIRE(h.size() == 2);
  CHECK(h[1]["id"] == saga);
  CHECK(h[1]["outcome"] == "preempted");
  CHECK(h[0]["type"] == "emergency");
  CHECK(h[0]["outcome"] == "completed");
}
