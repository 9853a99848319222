// Supervision of the node: dsmil.control starts its workers and its timer
// again when they die (and stops the node when they die too often), and a saga whose actor
// dies is settled from its journal at once, as after a kill, its client told
// so without waiting. The actors are killed for real (exit_reason::kill);
// every wait is on an event (a reply, a down message, a new actor), never a
// sleep that a test asserts on.
#include <future>
#include <thread>

#include "tests/actors/counter_component.hpp"
#include "tests/actors/node_fixture.hpp"

using namespace dsmil;
using namespace dsmil::test;

namespace {

// Kills the node's actor `name` and waits until dsmil.control has started
// another; returns it (invalid when none came).
caf::actor kill_and_wait(node_fixture& f, const std::string& name) {
  f.ok("status"); // the node is up, its workers started
  auto old = f.node.find_actor(name);
  REQUIRE_MESSAGE(old, name);
  caf::anon_send_exit(old, caf::exit_reason::kill);
  for (int i = 0; i < 20000; ++i) {
    auto now = f.node.find_actor(name);
    if (now && now != old) return now;
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
  return {};
}

} // namespace

TEST_CASE("dsmil.reader and dsmil.writer, killed, are started again and serve as before") {
  node_fixture f;
  const auto first = f.ok("checkpoint.create")["id"].get<std::string>();
  CHECK(kill_and_wait(f, "dsmil.reader"));
  CHECK(f.ok("status")["checkpoints"]["count"] == 1);
  CHECK(kill_and_wait(f, "dsmil.writer"));
  // The new writer takes changes; the new reader sees them.
  const auto second = f.ok("checkpoint.create")["id"].get<std::string>();
  auto list = f.ok("checkpoint.list")["checkpoints"];
  REQUIRE(list.size() == 2);
  CHECK(f.ok("checkpoint.show", {{"id", first}})["id"] == first);
  CHECK(f.ok("checkpoint.show", {{"id", second}})["id"] == second);
}

TEST_CASE("the automatic checkpoint timer, killed, is started again and goes on") {
  node_fixture f(false, 1); // a checkpoint every second
  CHECK(kill_and_wait(f, "dsmil.scheduler"));
  const auto count = [&] { return f.ok("status")["checkpoints"]["count"].get<int>(); };
  const auto before = count();
  int now = before;
  for (int i = 0; i < 30000 && now == before; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
    now = count();
  }
  CHECK(now > before);
}

TEST_CASE("a worker that dies more than max_restarts times within window_ms stops the node") {
  node_fixture f(false, 0, [](node_config& c) {
    c.supervision.max_restarts = 2;
    c.supervision.window_ms = 600000;
  });
  caf::scoped_actor self{*f.sys};
  self->monitor(*f.node.control);
  CHECK(kill_and_wait(f, "dsmil.reader"));
  CHECK(kill_and_wait(f, "dsmil.writer"));
  f.ok("status"); // two restarts: still serving
  caf::anon_send_exit(f.node.find_actor("dsmil.reader"), caf::exit_reason::kill);
  bool down = false;
  self->receive([&](caf::down_msg& dm) { down = dm.source == f.node.control->address(); },
                caf::after(std::chrono::seconds(60)) >> [] {});
  CHECK(down);
}

TEST_CASE("a saga whose actor is killed in a step: its client is told at once, and the node "
          "puts back what it changed from the journal") {
  counter_node n;
  auto held = hold_rollback_in_apply(n); // the saga waits in its step
  const auto& id = held.id;
  const auto& at_checkpoint = held.at_checkpoint;
  const auto& before = held.before;
  auto& first = held.reply;
  const auto saga = n.f.ok("status")["rollback"]["id"].get<std::string>();
  auto actor = n.f.node.find_actor("dsmil.saga");
  REQUIRE(actor);
  caf::anon_send_exit(actor, caf::exit_reason::kill);

  // Answered while the counter's apply is still held.
  auto r = first.get();
  CHECK(r.code == static_cast<uint8_t>(errc::internal));
  CHECK(r.message.find("rollback " + saga + " stopped (") == 0);
  CHECK(r.message.find("puts back what it changed from its journal") != std::string::npos);
  // Until its journal is settled the saga still holds the node, and status
  // shows it.
  CHECK(n.f.ok("status")["rollback"]["id"] == saga);

  // The held apply returns; the recovery's compensation, queued behind it,
  // puts the counter back to the pre-rollback state and ends the journal.
  n.counter->apply_gate.open();
  json st;
  for (int i = 0; i < 200000; ++i) {
    st = n.f.ok("status");
    if (st["rollback"].is_null()) break;
  }
  CHECK(st["rollback"].is_null());
  CHECK(n.counter->state() == before);
  auto h = n.f.ok("rollback.history")["rollbacks"];
  REQUIRE(h.size() == 1);
  CHECK(h[0]["id"] == saga);
  CHECK(h[0]["outcome"] == "compensated");
  CHECK(h[0]["recovered"] == true);
  CHECK(h[0]["error"] == "the rollback's actor stopped before it ended");

  // The node takes the next rollback as usual.
  n.f.ok("rollback", {{"id", id}, {"components", {"counter"}}});
  CHECK(n.counter->state() == at_checkpoint);
}

TEST_CASE("an emergency rollback waiting for a saga whose actor is killed runs after the "
          "recovery") {
  counter_node n;
  auto held = hold_rollback_in_apply(n); // waits in the counter's apply
  const auto& id = held.id;
  const auto& at_checkpoint = held.at_checkpoint;
  auto& first = held.reply;
  auto actor = n.f.node.find_actor("dsmil.saga");
  REQUIRE(actor);
  // The first saga is killed before the pre-emption reaches it: the
  // emergency waits for its recovery instead of its compensation.
  caf::anon_send_exit(actor, caf::exit_reason::kill);
  CHECK(first.get().code == static_cast<uint8_t>(errc::internal));
  auto emergency = std::async(std::launch::async, [&] {
    return n.f.ctl("rollback", {{"id", id}, {"type", "emergency"}});
  });
  json st;
  for (int i = 0; i < 200000; ++i) {
    st = n.f.ok("status");
    if (st["rollback"].is_object() && st["rollback"]["emergency_waiting"] == true) break;
  }
  CHECK(st["rollback"]["emergency_waiting"] == true);
  n.counter->apply_gate.open();
  auto r = emergency.get();
  REQUIRE_MESSAGE(r.code == 0, r.message);
  CHECK(n.counter->state() == at_checkpoint);
  auto h = n.f.ok("rollback.history")["rollbacks"];
  REQUIRE(h.size() == 2);
  CHECK(h[0]["type"] == "emergency");
  CHECK(h[0]["outcome"] == "completed");
  CHECK(h[1]["outcome"] == "compensated");
}

TEST_CASE("when dsmil.control dies, even killed, the actors under it stop with it") {
  node_fixture f;
  f.ok("status");
  caf::scoped_actor self{*f.sys};
  for (auto name : {"dsmil.reader", "dsmil.writer"}) {
    auto a = f.node.find_actor(name);
    REQUIRE(a);
    self->monitor(a);
  }
  caf::anon_send_exit(*f.node.control, caf::exit_reason::kill);
  int downs = 0;
  for (int i = 0; i < 2; ++i)
    self->receive([&](caf::down_msg&) { ++downs; }, caf::after(std::chrono::seconds(60)) >> [] {});
  CHECK(downs == 2);
  // The device actors and component handlers stop too, or the actor
  // system's end (the fixture's) would wait for them forever.
}

TEST_CASE("a node stopped while a request waits for a silent device ends at once") {
  // Its end (the fixture's) waits for every actor: one still waiting for
  // the device (as the helper that collects a worker's answers did, until
  // its request timed out) would hold it for the device's ten minutes, past
  // this suite's time limit.
  node_fixture f;
  f.ok("status");
  fault_spec silent;
  silent.latency_ms = 600000;
  const auto reads = f.node.sim->read_count(0x8031);
  f.node.sim->set_fault(0x8031, silent);
  caf::scoped_actor self{*f.sys};
  auto pending =
      self->request(*f.node.control, std::chrono::seconds(600), checkpoint_create_request{});
  // Barrier: the writer's capture waits for 0x8031 now.
  for (int i = 0; i < 20000 && f.node.sim->read_count(0x8031) == reads; ++i)
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  REQUIRE(f.node.sim->read_count(0x8031) > reads);
  auto writer = f.node.find_actor("dsmil.writer");
  REQUIRE(writer);
  self->monitor(writer);
  caf::anon_send_exit(*f.node.control, caf::exit_reason::user_shutdown);
  bool down = false;
  self->receive([&](caf::down_msg&) { down = true; },
                caf::after(std::chrono::seconds(60)) >> [] {});
  CHECK(down);
  (void)pending;
}
