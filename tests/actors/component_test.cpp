// A sixth component, defined here and nowhere else, goes through checkpoints
// and rollback sagas by the component interface alone: the saga, the store
// and the CLI know nothing of it.
#include "tests/actors/counter_component.hpp"
#include "tests/actors/node_fixture.hpp"

using namespace dsmil;
using namespace dsmil::test;

namespace {

std::vector<std::string> components_of(const json& rolled_back) {
  return rolled_back["components"].get<std::vector<std::string>>();
}

} // namespace

TEST_CASE("a component added through the interface is checkpointed, rolled back and verified") {
  counter_node n;
  n.counter->bump("one");
  n.counter->bump("two");
  const auto at_checkpoint = n.counter->state();
  auto cp = n.f.ok("checkpoint.create");
  CHECK(cp["components"] == json({"configuration", "counter", "devices", "security"}));
  const auto id = cp["id"].get<std::string>();
  CHECK(n.f.ok("checkpoint.verify", {{"id", id}})["valid"] == true);

  const auto devices_before = n.f.snapshot();
  n.counter->bump("three");
  n.f.scramble(7, 2);
  auto dry = n.f.ok("rollback", {{"id", id}, {"dry_run", true}});
  CHECK(dry["warnings"].dump().find("the counter goes back") != std::string::npos);

  SUBCASE("full: the counter and the devices") {
    auto r = n.f.ok("rollback", {{"id", id}, {"ack_critical", true}});
    CHECK(components_of(r["rolled_back"]) ==
          std::vector<std::string>{"configuration", "devices", "counter"});
    CHECK(n.counter->state() == at_checkpoint);
    check_equal(n.f.snapshot(), devices_before);
  }
  SUBCASE("selective: the counter alone") {
    const auto scrambled = n.f.snapshot();
    auto r = n.f.ok("rollback", {{"id", id}, {"components", {"counter"}}});
    CHECK(components_of(r["rolled_back"]) == std::vector<std::string>{"counter"});
    CHECK(n.counter->state() == at_checkpoint);
    check_equal(n.f.snapshot(), scrambled); // devices left as they were
    // The journal names the component's step.
    auto shown = n.f.ok("rollback.show", {{"id", r["saga"]}});
    CHECK(shown["steps"] ==
          json({{{"component", "counter"}, {"name", "counter"}, {"items", json::array()}}}));
  }
  SUBCASE("incremental: nothing of the counter when it did not change") {
    REQUIRE(n.f.ok("rollback", {{"id", id}, {"ack_critical", true}})["success"] == true);
    REQUIRE(n.counter->applies() == 1);
    auto r = n.f.ok("rollback", {{"id", id}, {"type", "incremental"}});
    CHECK(n.counter->applies() == 1);
    CHECK(components_of(r["rolled_back"]) == std::vector<std::string>{});
  }
}

TEST_CASE("a failure of the added component compensates every step that ran, itself included") {
  counter_node n;
  n.counter->bump("one");
  auto id = n.f.ok("checkpoint.create")["id"].get<std::string>();
  n.counter->bump("two");
  n.f.scramble(11, 3);
  const auto counter_before = n.counter->state();
  const auto devices_before = n.f.snapshot();
  n.counter->fail_next_applies(1);
  auto r = n.f.ctl("rollback", {{"id", id}, {"ack_critical", true}});
  CHECK(r.code == static_cast<uint8_t>(errc::rollback_failed));
  CHECK(r.message.find("rollback stopped in counter (counter): injected failure") == 0);
  CHECK(r.message.find("every step that ran was put back") != std::string::npos);
  auto body = json::parse(r.body);
  CHECK(body["outcome"] == "compensated");
  CHECK(body["compensated"]["steps"] == json({"counter", "group 6", "group 5", "group 4", "group 3",
                                              "group 2", "group 1", "group 0", "configuration"}));
  // Half applied, then put back: the counter and every device are as before.
  CHECK(n.counter->state() == counter_before);
  check_equal(n.f.snapshot(), devices_before);
  // The pre-rollback checkpoint holds the counter too, and verifies.
  CHECK(n.f.ok("checkpoint.verify", {{"id", body["pre_rollback"]}})["valid"] == true);
}

TEST_CASE("a component that cannot be captured fails a checkpoint naming it; an optional one is "
          "recorded absent") {
  {
    counter_node n;
    n.counter->set_unreachable(true);
    auto r = n.f.ctl("checkpoint.create");
    CHECK(r.code == static_cast<uint8_t>(errc::unavailable));
    CHECK(r.message == "cannot checkpoint: component counter cannot be captured: the counter "
                       "service does not answer");
    CHECK(n.f.ok("checkpoint.list")["checkpoints"].empty());
  }
  counter_node n(true);
  n.counter->set_unreachable(true);
  auto cp = n.f.ok("checkpoint.create");
  CHECK(cp["components"] == json({"configuration", "devices", "security"}));
  CHECK(cp["warnings"][0].get<std::string>().find("optional component counter is unavailable") ==
        0);
  // A rollback to it leaves the counter as it is, and says so.
  n.counter->set_unreachable(false);
  n.counter->bump("later");
  auto rb = n.f.ok("rollback", {{"id", cp["id"]}, {"ack_critical", true}});
  CHECK(rb["warnings"].dump().find("component counter is not in the checkpoint: left as it is") !=
        std::string::npos);
  CHECK(n.counter->state().first == 1);
}
