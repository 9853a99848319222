// A sixth component, defined here and nowhere else, goes through checkpoints
// and rollback sagas by the component interface alone: the saga, the store
// and the CLI know nothing of it.
#include <mutex>

#include "runtime/components/component.hpp"
#include "tests/actors/node_fixture.hpp"

using namespace dsmil;
using namespace dsmil::test;

namespace {

// A counter with a log: one record and one stream.
class counter_component final : public component {
public:
  std::string name() const override { return "counter"; }
  bool optional() const override { return optional_; }

  result<component_image> capture() override {
    std::lock_guard<std::mutex> lock(mu_);
    if (unreachable_) return make_error(errc::unavailable, "the counter service does not answer");
    return image(value_, log_);
  }

  result<component_plan> plan(const component_image& now, const component_image& target,
                              const plan_request& req) override {
    component_plan p;
    p.differs = !(now == target);
    if (req.whole && (req.type != rollback_type::incremental || p.differs))
      p.steps.push_back({name(), "counter", {}});
    if (p.differs) p.warnings.push_back("the counter goes back");
    return p;
  }

  std::vector<failed_item> apply(const saga_step&, const component_image& target) override {
    std::lock_guard<std::mutex> lock(mu_);
    ++applies_;
    value_ = std::stoll(target.records.at("value"));
    if (fail_applies_ > 0) { // half done: the value moved, the log did not
      --fail_applies_;
      return {{"counter", "injected failure"}};
    }
    log_ = target.streams.at("log");
    return {};
  }

  std::vector<failed_item> read_back(const saga_step&, const component_image& target) override {
    std::lock_guard<std::mutex> lock(mu_);
    if (!(image(value_, log_) == target)) return {{"counter", "differs after restore"}};
    return {};
  }

  void bump(const std::string& line) {
    std::lock_guard<std::mutex> lock(mu_);
    ++value_;
    log_ += line + "\n";
  }
  std::pair<int64_t, std::string> state() {
    std::lock_guard<std::mutex> lock(mu_);
    return {value_, log_};
  }
  void fail_next_applies(int n) {
    std::lock_guard<std::mutex> lock(mu_);
    fail_applies_ = n;
  }
  void set_unreachable(bool u) {
    std::lock_guard<std::mutex> lock(mu_);
    unreachable_ = u;
  }
  int applies() {
    std::lock_guard<std::mutex> lock(mu_);
    return applies_;
  }
  bool optional_ = false;

private:
  static component_image image(int64_t value, const std::string& log) {
    component_image i;
    i.records["value"] = std::to_string(value);
    i.streams["log"] = log;
    return i;
  }

  std::mutex mu_;
  int64_t value_ = 0;
  std::string log_;
  int fail_applies_ = 0;
  bool unreachable_ = false;
  int applies_ = 0;
};

struct counter_node {
  std::shared_ptr<counter_component> counter = std::make_shared<counter_component>();
  node_fixture f{false, 0, nullptr, nullptr, {counter}};
};

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
  counter_node n;
  n.counter->set_unreachable(true);
  auto r = n.f.ctl("checkpoint.create");
  CHECK(r.code == static_cast<uint8_t>(errc::unavailable));
  CHECK(r.message == "cannot checkpoint: component counter cannot be captured: the counter "
                     "service does not answer");
  CHECK(n.f.ok("checkpoint.list")["checkpoints"].empty());

  n.counter->optional_ = true;
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
