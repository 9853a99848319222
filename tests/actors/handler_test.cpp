// Component handlers: a component hung in a step is abandoned at the step's
// time limit and the saga compensates; its handler's worker, dead, is
// restarted; an open breaker fails calls at once, naming the component.
#include "tests/actors/counter_component.hpp"
#include "tests/actors/node_fixture.hpp"

using namespace dsmil;
using namespace dsmil::test;

namespace {

json component_row(const json& status, const std::string& name) {
  for (auto& c : status["components"])
    if (c["name"] == name) return c;
  FAIL("no component " << name << " in status");
  return {};
}

void short_limits(node_config& c) {
  c.rollback_step_timeout_ms = 300;
  c.rollback_compensation_step_timeout_ms = 300;
  c.retry.base_ms = 20; // the saga's retries of what it could not put back
  c.retry.max_ms = 100;
}

} // namespace

TEST_CASE("a component hung in apply is abandoned at step_timeout_ms; its compensation runs "
          "after the hung call returns") {
  counter_node n(false, short_limits);
  n.counter->bump("one");
  const auto id = n.f.ok("checkpoint.create")["id"].get<std::string>();
  n.counter->bump("two");
  const auto before = n.counter->state();
  n.f.ok("config.set", {{"key", "agent_concurrency_limit"}, {"value", "7"}});
  const auto config_before = n.f.ok("config.show");

  n.counter->apply_gate.close(); // the counter's apply never returns until opened
  auto r = n.f.ctl("rollback", {{"id", id}, {"ack_critical", true}});
  CHECK(r.code == static_cast<uint8_t>(errc::timeout));
  CHECK(r.message.find("counter took longer than step_timeout_ms (300 ms): component counter "
                       "did not answer in time") == 0);
  auto body = json::parse(r.body);
  // Everything else was put back; the counter's own compensation waits
  // behind its hung apply, so the saga names it as not put back.
  CHECK(body["outcome"] == "compensation_failed");
  REQUIRE(body["compensated"]["failed"].size() == 1);
  CHECK(body["compensated"]["failed"][0]["id"] == "counter");
  CHECK(body["compensated"]["failed"][0]["error"].get<std::string>().find(
            "took longer than compensation_step_timeout_ms, 300 ms") != std::string::npos);
  CHECK(n.f.ok("config.show") == config_before);
  auto st = n.f.ok("status");
  CHECK(st["compensation_incomplete"]["failed"][0]["id"] == "counter");
  // Status asks the handler, not its hung worker: three calls wait there
  // (the hung apply, then the compensation's apply, whose read-back is not
  // asked while it has not answered, and the release the saga asked as it
  // ended, not waited for past compensation_step_timeout_ms).
  auto counter = component_row(st, "counter");
  CHECK(counter["in_flight"] == 3);
  CHECK(counter["breaker"] == "closed");

  // The hung call returns; the compensation queued behind it runs next, and
  // a capture asked after both sees the pre-rollback state.
  n.counter->apply_gate.open();
  auto cp = n.f.ok("checkpoint.create");
  CHECK(n.counter->state() == before);
  CHECK(n.counter->applies() >= 2);
  (void)cp;
  // The saga keeps trying to put back what it could not: it finds the
  // counter back, verifies it, and journals it settled; status stops
  // warning. (Each look is a request; no sleeps.)
  const auto saga = body["saga"].get<std::string>();
  json st2;
  for (int i = 0; i < 200000; ++i) {
    st2 = n.f.ok("status");
    if (st2["compensation_incomplete"].is_null()) break;
  }
  CHECK(st2["compensation_incomplete"].is_null());
  CHECK(st2["warnings"].dump().find("could not put back") == std::string::npos);
  auto h = n.f.ok("rollback.history")["rollbacks"][0];
  CHECK(h["id"] == saga);
  CHECK(h["outcome"] == "compensation_failed");
  CHECK(h["settled"] == json({"counter"}));
  auto journal = n.f.ok("rollback.show", {{"id", saga}})["journal"];
  CHECK(journal.back()["t"] == "settled");
}

TEST_CASE("a rollback started while a saga still puts back what it could not takes over") {
  counter_node n(false, [](node_config& c) {
    short_limits(c);
    c.retry.base_ms = c.retry.max_ms = 3600000; // its next try is far off
  });
  n.counter->bump("one");
  const auto at_checkpoint = n.counter->state();
  const auto id = n.f.ok("checkpoint.create")["id"].get<std::string>();
  n.counter->bump("two");
  n.counter->fail_next_applies(2); // neither the step nor its putting back succeed
  auto r = n.f.ctl("rollback", {{"id", id}, {"components", {"counter"}}});
  CHECK(json::parse(r.body)["outcome"] == "compensation_failed");
  const auto first = json::parse(r.body)["saga"].get<std::string>();
  CHECK(n.f.ok("status")["compensation_incomplete"]["failed"][0]["id"] == "counter");
  // The counter works again; a new rollback is accepted while the first
  // saga still has the counter to put back, and ends that.
  auto second = n.f.ctl("rollback", {{"id", id}, {"components", {"counter"}}});
  REQUIRE_MESSAGE(second.code == 0, second.message);
  CHECK(n.counter->state() == at_checkpoint);
  CHECK(n.f.ok("status")["compensation_incomplete"].is_null());
  auto h = n.f.ok("rollback.history")["rollbacks"];
  CHECK(h[1]["id"] == first);
  CHECK_FALSE(h[1].contains("settled")); // taken over, not settled
}

TEST_CASE("a component handler whose worker dies is restarted; the call it had fails naming it") {
  counter_node n;
  n.counter->crash_next_captures(1);
  auto r = n.f.ctl("checkpoint.create");
  CHECK(r.code == static_cast<uint8_t>(errc::unavailable));
  CHECK(r.message.find("cannot checkpoint: component counter cannot be captured: component "
                       "counter: its handler stopped") == 0);
  CHECK(r.message.find("and was restarted") != std::string::npos);
  CHECK(n.f.ok("checkpoint.list")["checkpoints"].empty());
  // The restarted worker serves the next checkpoint.
  auto cp = n.f.ok("checkpoint.create");
  CHECK(cp["components"] == json({"configuration", "counter", "devices", "security"}));
  auto counter = component_row(n.f.ok("status"), "counter");
  CHECK(counter["restarts"] == 1);
  CHECK(counter["in_flight"] == 0);
}

TEST_CASE("after failure_threshold failed calls a component's breaker opens and calls fail at "
          "once") {
  counter_node n(false, [](node_config& c) {
    c.breaker.failure_threshold = 2;
    c.breaker.open_ms = 3600000;
  });
  n.counter->set_unreachable(true);
  for (int i = 0; i < 2; ++i) {
    auto r = n.f.ctl("checkpoint.create");
    CHECK(r.message.find("the counter service does not answer") != std::string::npos);
  }
  n.counter->set_unreachable(false); // answers again, but the breaker holds calls off
  auto r = n.f.ctl("checkpoint.create");
  CHECK(r.code == static_cast<uint8_t>(errc::circuit_open)); // as a device's breaker
  CHECK(r.message.find("component counter is failing (2 failures in a row; its breaker is open") !=
        std::string::npos);
  auto st = n.f.ok("status");
  CHECK(component_row(st, "counter")["breaker"] == "open");
  CHECK(component_row(st, "configuration")["breaker"] == "closed");
  CHECK(st["warnings"].dump().find("component counter is failing: its breaker is open after 2 "
                                   "failed calls") != std::string::npos);
}

TEST_CASE("a component that hangs in capture fails a checkpoint at call_timeout_ms naming it; an "
          "optional one is recorded absent") {
  auto limits = [](node_config& c) { c.component_call_timeout_ms = 300; };
  {
    counter_node n(false, limits);
    n.counter->capture_gate.close();
    auto r = n.f.ctl("checkpoint.create");
    CHECK(r.code == static_cast<uint8_t>(errc::timeout));
    CHECK(r.message.find("cannot checkpoint: component counter cannot be captured: component "
                         "counter did not answer in time") == 0);
    CHECK(n.f.ok("checkpoint.list")["checkpoints"].empty());
  }
  counter_node n(true, limits);
  n.counter->capture_gate.close();
  auto cp = n.f.ok("checkpoint.create");
  CHECK(cp["components"] == json({"configuration", "devices", "security"}));
  CHECK(cp["warnings"][0].get<std::string>().find("optional component counter is unavailable") ==
        0);
}

TEST_CASE("a node restarted while a compensation is incomplete goes on putting it back") {
  test::env_dir dir;
  auto counter = make_counter(false);
  std::string saga;
  {
    node_fixture f(false, 0,
                   [&](node_config& c) {
                     short_limits(c);
                     c.data_dir = dir.path();
                     c.retry.base_ms = c.retry.max_ms = 3600000; // no second try before it stops
                   },
                   nullptr, {counter});
    counter->bump("one");
    const auto id = f.ok("checkpoint.create")["id"].get<std::string>();
    counter->bump("two");
    counter->fail_next_applies(2); // neither the step nor its putting back succeed
    auto r = f.ctl("rollback", {{"id", id}, {"components", {"counter"}}});
    REQUIRE(json::parse(r.body)["outcome"] == "compensation_failed");
    saga = json::parse(r.body)["saga"].get<std::string>();
  }
  const auto wanted = std::make_pair(int64_t{2}, std::string("one\ntwo\n")); // pre-rollback
  counter->bump("three"); // where it is now, nobody knows
  CHECK_FALSE(counter->state() == wanted);
  // The same store, a new node: it finds the saga unsettled and tries again.
  node_fixture g(false, 0,
                 [&](node_config& c) {
                   short_limits(c);
                   c.data_dir = dir.path();
                 },
                 nullptr, {counter});
  json st;
  for (int i = 0; i < 200000; ++i) {
    st = g.ok("status");
    if (st["compensation_incomplete"].is_null()) break;
  }
  CHECK(st["compensation_incomplete"].is_null());
  CHECK(counter->state() == wanted);
  auto h = g.ok("rollback.history")["rollbacks"][0];
  CHECK(h["id"] == saga);
  CHECK(h["settled"] == json({"counter"}));
}
