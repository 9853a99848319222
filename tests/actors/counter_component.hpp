// A test-only component: a counter with a log (one record, one stream),
// defined in the tests and nowhere else. Its capture and apply can be held at
// a gate, so a test can look at the node while a checkpoint or a saga is
// inside it, ordered by the gate, not by sleeps.
#pragma once

#include <condition_variable>
#include <future>
#include <memory>
#include <mutex>

#include "runtime/components/component.hpp"
#include "tests/actors/node_fixture.hpp"

namespace dsmil::test {

/// Where a component call can be held. Open by default.
class gate {
public:
  /// From now on, calls wait in pass() until open().
  void close() {
    std::lock_guard<std::mutex> lock(mu_);
    closed_ = true;
    entered_ = 0;
  }
  void open() {
    std::lock_guard<std::mutex> lock(mu_);
    closed_ = false;
    cv_.notify_all();
  }
  /// Waits until a call has reached the closed gate.
  void wait_entered() {
    std::unique_lock<std::mutex> lock(mu_);
    cv_.wait(lock, [&] { return entered_ > 0; });
  }
  void pass() {
    std::unique_lock<std::mutex> lock(mu_);
    if (!closed_) return;
    ++entered_;
    cv_.notify_all();
    cv_.wait(lock, [&] { return !closed_; });
  }

private:
  std::mutex mu_;
  std::condition_variable cv_;
  bool closed_ = false;
  int entered_ = 0;
};

// A counter with a log: one record and one stream.
class counter_component final : public component {
public:
  std::string name() const override { return "counter"; }
  bool optional() const override { return optional_; }
  /// Read once, when the node starts.

  result<component_image> capture() override {
    capture_gate.pass();
    std::lock_guard<std::mutex> lock(mu_);
    if (crash_captures_ > 0) {
      --crash_captures_;
      throw 42; // not a std::exception: its handler's worker dies
    }
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
    apply_gate.pass();
    std::lock_guard<std::mutex> lock(mu_);
    ++applies_;
    value_ = std::stoll(target.records.at("value"));
    if (fail_applies_ > 0) { // half done: the value moved, the log did not
      --fail_applies_;
      return {{"counter", "injected failure"}};
    }
    log_ = target.streams.at("log").str();
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
  /// The next `n` captures kill the thread that calls them.
  void crash_next_captures(int n) {
    std::lock_guard<std::mutex> lock(mu_);
    crash_captures_ = n;
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
  gate capture_gate; ///< closed: capture() waits there
  gate apply_gate;   ///< closed: apply() waits there

private:
  static component_image image(int64_t value, const std::string& log) {
    component_image i;
    i.records["value"] = std::to_string(value);
    i.streams["log"] = stream_bytes(log);
    return i;
  }

  std::mutex mu_;
  int64_t value_ = 0;
  std::string log_;
  int fail_applies_ = 0;
  bool unreachable_ = false;
  int crash_captures_ = 0;
  int applies_ = 0;
};

inline std::shared_ptr<counter_component> make_counter(bool optional) {
  auto c = std::make_shared<counter_component>();
  c->optional_ = optional;
  return c;
}

/// A node with the counter after its own components. Whether the counter is
/// optional is fixed when the node starts, as for any component.
struct counter_node {
  explicit counter_node(bool optional = false,
                        const std::function<void(node_config&)>& adjust = nullptr)
      : counter(make_counter(optional)), f(false, 0, adjust, nullptr, {counter}) {}
  // A test that stops half-way leaves no call held (the node waits for its
  // handlers when it stops).
  ~counter_node() {
    counter->capture_gate.open();
    counter->apply_gate.open();
  }
  std::shared_ptr<counter_component> counter;
  node_fixture f;
};

/// A selective rollback of the counter, held inside its apply. The counter
/// is bumped and checkpointed (`id`, `at_checkpoint`), bumped again
/// (`before`: the pre-rollback state), then a rollback to the checkpoint is
/// started; when this returns it waits at the closed apply gate, and
/// `reply` is its answer once the gate opens.
struct held_rollback {
  std::string id;
  std::pair<int64_t, std::string> at_checkpoint, before;
  std::future<control_reply> reply;
};

inline held_rollback hold_rollback_in_apply(counter_node& n) {
  held_rollback h;
  n.counter->bump("one");
  h.at_checkpoint = n.counter->state();
  h.id = n.f.ok("checkpoint.create")["id"].get<std::string>();
  n.counter->bump("two");
  h.before = n.counter->state();
  n.counter->apply_gate.close();
  h.reply = std::async(std::launch::async, [&n, id = h.id] {
    return n.f.ctl("rollback", {{"id", id}, {"components", {"counter"}}});
  });
  n.counter->apply_gate.wait_entered();
  return h;
}

} // namespace dsmil::test
