// The embedding API: a node in a host's process through dsmil/node.hpp and
// through the C API (dsmil/dsmil.h), with the host's own agents (here a
// memory host the tests change behind the node's back).
#include <atomic>
#include <future>
#include <map>
#include <mutex>
#include <thread>

#include <caf/actor_system.hpp>
#include <caf/actor_system_config.hpp>

#include "dsmil/dsmil.h"
#include "dsmil/node.hpp"
#include "tests/test_util.hpp"
#include <doctest/doctest.h>

using namespace dsmil;

namespace {

/// Agents whose state is a string each; faults: one agent's restore fails,
/// every restore takes a while.
class memory_agents final : public agent_host {
public:
  explicit memory_agents(int n) {
    for (int i = 0; i < n; ++i) {
      const std::string id = "a-" + std::to_string(i);
      ids_.push_back(id);
      state_[id] = "initial state of " + id;
      running_[id] = true;
    }
  }
  std::vector<agent_info> list() override {
    std::lock_guard<std::mutex> lock(mu_);
    std::vector<agent_info> out;
    for (auto& id : ids_)
      out.push_back({id, running_[id] ? agent_state::running : agent_state::paused, 0});
    return out;
  }
  status quiesce(const std::string& a, std::chrono::steady_clock::time_point) override {
    std::lock_guard<std::mutex> lock(mu_);
    running_[a] = false;
    return {};
  }
  status cancel_pending(const std::string&) override { return {}; }
  status snapshot(const std::string& a, const agent_sink& sink) override {
    std::string s;
    {
      std::lock_guard<std::mutex> lock(mu_);
      s = state_.at(a);
    }
    // In two pieces, as a large state would come.
    if (auto err = sink(std::string_view(s).substr(0, s.size() / 2))) return err;
    return sink(std::string_view(s).substr(s.size() / 2));
  }
  status restore(const std::string& a, std::string_view bytes) override {
    std::this_thread::sleep_for(std::chrono::milliseconds(restore_delay_ms.load()));
    std::lock_guard<std::mutex> lock(mu_);
    if (a == fail_restore_of) return make_error(errc::io_error, "restore of " + a + " refused");
    state_[a] = std::string(bytes);
    return {};
  }
  status resume(const std::string& a) override {
    std::lock_guard<std::mutex> lock(mu_);
    running_[a] = true;
    return {};
  }

  void set(const std::string& a, const std::string& s) {
    std::lock_guard<std::mutex> lock(mu_);
    state_[a] = s;
  }
  std::map<std::string, std::string> states() {
    std::lock_guard<std::mutex> lock(mu_);
    return state_;
  }
  bool all_running() {
    std::lock_guard<std::mutex> lock(mu_);
    for (auto& [id, r] : running_)
      if (!r) return false;
    return true;
  }
  void fail_restore(const std::string& a) {
    std::lock_guard<std::mutex> lock(mu_);
    fail_restore_of = a;
  }
  std::atomic<int> restore_delay_ms{0};

private:
  std::mutex mu_;
  std::vector<std::string> ids_;
  std::map<std::string, std::string> state_;
  std::map<std::string, bool> running_;
  std::string fail_restore_of;
};

node_options options(const test::temp_dir& dir, std::shared_ptr<agent_host> agents) {
  node_options o;
  o.data_dir = dir.path();
  o.log_level = "warn";
  o.agents = std::move(agents);
  return o;
}

// -- the C agent host over memory_agents -------------------------------------------

memory_agents& host_of(void* ctx) {
  return *static_cast<memory_agents*>(ctx);
}

int c_code(const status& s) {
  return static_cast<int>(s.code);
}

dsmil_agent_host c_host(memory_agents& m) {
  dsmil_agent_host h{};
  h.ctx = &m;
  h.list = [](void* ctx, dsmil_agent_add_fn add, void* list_ctx) {
    for (auto& a : host_of(ctx).list())
      add(list_ctx, a.id.c_str(), static_cast<dsmil_agent_state>(a.state), a.tasks_done, a.version);
    return 0;
  };
  h.quiesce = [](void* ctx, const char* a, int64_t ms) {
    return c_code(
        host_of(ctx).quiesce(a, std::chrono::steady_clock::now() + std::chrono::milliseconds(ms)));
  };
  h.cancel_pending = [](void* ctx, const char* a) {
    return c_code(host_of(ctx).cancel_pending(a));
  };
  h.snapshot = [](void* ctx, const char* a, dsmil_agent_sink_fn sink, void* sink_ctx) {
    return c_code(host_of(ctx).snapshot(a, [&](std::string_view b) -> status {
      const int rc = sink(sink_ctx, b.data(), b.size());
      return rc ? make_error(static_cast<errc>(rc), "sink") : status{};
    }));
  };
  h.restore = [](void* ctx, const char* a, const void* b, size_t n) {
    return c_code(host_of(ctx).restore(a, std::string_view(static_cast<const char*>(b), n)));
  };
  h.resume = [](void* ctx, const char* a) { return c_code(host_of(ctx).resume(a)); };
  return h;
}

struct c_waiter {
  std::promise<dsmil_checkpoint_result> checkpoint;
  std::promise<dsmil_rollback_result> rollback;
  std::atomic<int> events{0};
};

void on_checkpoint(const dsmil_checkpoint_result* r, void* ctx) {
  static_cast<c_waiter*>(ctx)->checkpoint.set_value(*r);
}
void on_progress(const char*, const char*, const char*, int64_t, int64_t, void* ctx) {
  ++static_cast<c_waiter*>(ctx)->events;
}
void on_rollback(const dsmil_rollback_result* r, void* ctx) {
  static_cast<c_waiter*>(ctx)->rollback.set_value(*r);
}

} // namespace

TEST_CASE("embed: a node starts only in an actor system prepared for it") {
  test::temp_dir dir;
  caf::actor_system_config cfg;
  caf::actor_system sys{cfg};
  auto n = node::start(sys, options(dir, nullptr));
  REQUIRE_FALSE(n);
  CHECK(n.err().message.find("dsmil::prepare(cfg)") != std::string::npos);
  CHECK(n.err().message.find('\n') == std::string::npos);

  // One agent host only: the reference one or the runtime's.
  auto o = options(dir, std::make_shared<memory_agents>(2));
  o.config_text = "[agents]\nbackend = \"sim\"\n";
  auto both = node::check(o);
  CHECK(both.code == errc::config_error);
  CHECK(both.message.find("one agent host") != std::string::npos);
}

TEST_CASE("embed: a host's agents are checkpointed and rolled back through the C++ API") {
  test::temp_dir dir;
  auto agents = std::make_shared<memory_agents>(6);
  caf::actor_system_config cfg;
  REQUIRE_FALSE(prepare(cfg, options(dir, agents))); // with TLS: it will listen
  caf::actor_system sys{cfg};
  auto started = node::start(sys, options(dir, agents));
  REQUIRE_MESSAGE(started.ok(), (started ? "" : started.err().message));
  auto& n = **started;
  CHECK(n.description().agents == 6);
  CHECK(n.description().devices == 84);

  auto cp = n.checkpoint({"before"}).get();
  REQUIRE_MESSAGE(cp.code == errc::none, cp.message);
  const auto at_checkpoint = agents->states();
  agents->set("a-1", "changed one");
  agents->set("a-4", "changed four");
  const auto before_rollback = agents->states();

  rollback_request req;
  req.id = cp.body->id;
  auto plan = n.plan(req);
  REQUIRE_MESSAGE(plan.code == errc::none, plan.message);
  CHECK(plan.body->dry_run);
  CHECK(agents->states() == before_rollback); // a plan changes nothing

  std::atomic<int> events{0};
  auto done = n.rollback(req, [&](const rollback_event& e) {
                 CHECK_FALSE(e.saga.empty());
                 ++events;
               }).get();
  REQUIRE_MESSAGE(done.code == errc::none, done.message);
  CHECK(done.body->success);
  CHECK(events > 0);
  CHECK(agents->states() == at_checkpoint);
  CHECK(agents->all_running());

  // A restore that fails puts every agent back where the rollback found it.
  agents->set("a-2", "changed two");
  const auto second = agents->states();
  agents->fail_restore("a-4");
  agents->set("a-4", "changed four again");
  const auto before_failing = agents->states();
  auto failed = n.rollback(req).get();
  CHECK(failed.code != errc::none);
  REQUIRE(failed.body);
  CHECK_FALSE(failed.body->success);
  CHECK(agents->states() == before_failing);
  CHECK(agents->all_running());
  auto hist = n.history(5);
  REQUIRE(hist.code == errc::none);
  REQUIRE(hist.body->rollbacks.size() == 2);
  CHECK(hist.body->rollbacks[0].outcome == "compensated");
  CHECK(hist.body->rollbacks[1].outcome == "completed");
  // In-process rollbacks are the host's: node_options::identity names them.
  CHECK(hist.body->rollbacks[1].initiated_by.value_or("") == "embedded");
  (void)second;

  // It listens only when asked; then dsmilctl can reach it.
  auto st = n.call(status_request{});
  REQUIRE(st.code == errc::none);
  CHECK(st.body->node.listen.empty());
  auto port = n.listen("127.0.0.1", 0);
  REQUIRE_MESSAGE(port.ok(), (port ? "" : port.err().message));
  CHECK(n.call(status_request{}).body->node.listen == "127.0.0.1:" + std::to_string(*port));
  n.stop();
  CHECK(n.checkpoints().code == errc::unavailable);
}

TEST_CASE("embed: the C API runs a node with C callbacks for its agents") {
  test::temp_dir dir;
  memory_agents agents(4);
  auto host = c_host(agents);
  dsmil_options o{};
  o.data_dir = dir.path().c_str();
  o.log_level = "warn";
  o.agents = &host;

  // Bad input: one line, a code, nothing started.
  CHECK(dsmil_node_start(&o, nullptr) == DSMIL_E_INVALID_ARGUMENT);
  CHECK(std::string(dsmil_last_error()).find("out is NULL") != std::string::npos);
  dsmil_options bad = o;
  bad.config_text = "[node]\nlisten = 7\n";
  dsmil_node* none = nullptr;
  CHECK(dsmil_node_start(&bad, &none) == DSMIL_E_CONFIG);
  CHECK(none == nullptr);
  CHECK(std::string(dsmil_strerror(DSMIL_E_NOT_FOUND)) == "not_found");
  CHECK(std::string(dsmil_strerror(DSMIL_E_BUFFER_TOO_SMALL)) == "buffer_too_small");
  CHECK(std::string(dsmil_strerror(200)) == "unknown_error");

  dsmil_node* n = nullptr;
  REQUIRE_MESSAGE(dsmil_node_start(&o, &n) == DSMIL_OK, dsmil_last_error());
  const auto* cm = dsmil_checkpoint_manager_get();
  const auto* re = dsmil_rollback_engine_get();

  c_waiter w;
  REQUIRE(cm->create_checkpoint_async(n, "c-api", DSMIL_CHECKPOINT_MANUAL, "from C", on_checkpoint,
                                      &w) == DSMIL_OK);
  const auto cp = w.checkpoint.get_future().get();
  REQUIRE_MESSAGE(cp.status == DSMIL_OK, cp.error_message);
  CHECK(cp.new_bytes > 0);

  uint32_t count = 0;
  CHECK(cm->list_checkpoints(n, nullptr, 0, &count) == DSMIL_E_BUFFER_TOO_SMALL);
  CHECK(count == 1);
  dsmil_checkpoint_info info[2];
  CHECK(cm->list_checkpoints(n, info, 2, &count) == DSMIL_OK);
  CHECK(std::string(info[0].id) == cp.checkpoint_id);
  CHECK(std::string(info[0].name) == "c-api");
  char* details = nullptr;
  CHECK(cm->get_checkpoint_details(n, cp.checkpoint_id, &info[1], &details) == DSMIL_OK);
  REQUIRE(details);
  CHECK(std::string(details).find("\"agents\"") != std::string::npos);
  dsmil_free(details);
  dsmil_validation_result v;
  CHECK(cm->validate_checkpoint_integrity(n, cp.checkpoint_id, 1, &v) == DSMIL_OK);
  CHECK(v.signature_valid == 1);
  CHECK(cm->validate_checkpoint_integrity(n, "ffffffff", 0, &v) == DSMIL_E_NOT_FOUND);
  CHECK(v.signature_valid == 0);

  dsmil_agent_view held[4], now[4];
  REQUIRE(dsmil_checkpoint_agents(n, cp.checkpoint_id, held, 4, &count) == DSMIL_OK);
  REQUIRE(count == 4);
  agents.set("a-0", "changed from C");
  REQUIRE(dsmil_agent_list(n, now, 4, &count) == DSMIL_OK);
  CHECK(std::string(now[0].state_sha256) != held[0].state_sha256);
  CHECK(std::string(now[1].state_sha256) == held[1].state_sha256);

  const char* only[] = {"a-0"};
  dsmil_rollback_request req{};
  req.checkpoint_id = cp.checkpoint_id;
  req.type = DSMIL_ROLLBACK_SELECTIVE;
  req.agents = only;
  req.agent_count = 1;
  char* plan = nullptr;
  CHECK(re->plan_rollback(n, &req, &plan) == DSMIL_OK);
  REQUIRE(plan);
  CHECK(std::string(plan).find("a-0") != std::string::npos);
  dsmil_free(plan);
  REQUIRE(re->execute_rollback_async(n, &req, on_progress, on_rollback, &w) == DSMIL_OK);
  const auto rb = w.rollback.get_future().get();
  CHECK_MESSAGE(rb.status == DSMIL_OK, rb.error_message);
  CHECK(rb.success == 1);
  CHECK(std::string(rb.outcome) == "completed");
  CHECK(w.events > 0);
  REQUIRE(dsmil_agent_list(n, now, 4, &count) == DSMIL_OK);
  for (int i = 0; i < 4; ++i) {
    CHECK(std::string(now[i].state_sha256) == held[i].state_sha256);
    CHECK(std::string(now[i].state) == "running");
  }
  char* hist = nullptr;
  CHECK(re->get_rollback_history(n, 10, &hist) == DSMIL_OK);
  REQUIRE(hist);
  CHECK(std::string(hist).find(rb.saga_id) != std::string::npos);
  dsmil_free(hist);

  // Any command by name; unknown ones and malformed arguments are refused.
  char* reply = nullptr;
  CHECK(dsmil_command(n, "status", nullptr, &reply) == DSMIL_OK);
  REQUIRE(reply);
  CHECK(std::string(reply).find("\"node\"") != std::string::npos);
  dsmil_free(reply);
  CHECK(dsmil_command(n, "frobnicate", "{}", nullptr) == DSMIL_E_INVALID_ARGUMENT);
  CHECK(std::string(dsmil_last_error()).find("frobnicate") != std::string::npos);
  CHECK(dsmil_command(n, "status", "[1", nullptr) == DSMIL_E_INVALID_ARGUMENT);
  CHECK(dsmil_command(n, "agent.load", "{}", nullptr) == DSMIL_E_NOT_FOUND);
  CHECK(re->cancel_rollback(n) == DSMIL_E_NOT_FOUND);
  dsmil_rollback_request no_id{};
  CHECK(re->execute_rollback_async(n, &no_id, nullptr, nullptr, nullptr) ==
        DSMIL_E_INVALID_ARGUMENT);
  dsmil_node_stop(n);
  CHECK(dsmil_checkpoint_list(nullptr, info, 2, &count) == DSMIL_E_INVALID_ARGUMENT);
}

TEST_CASE("embed: a running rollback is cancelled and compensates") {
  test::temp_dir dir;
  memory_agents agents(4);
  auto host = c_host(agents);
  dsmil_options o{};
  o.data_dir = dir.path().c_str();
  o.log_level = "warn";
  o.agents = &host;
  dsmil_node* n = nullptr;
  REQUIRE_MESSAGE(dsmil_node_start(&o, &n) == DSMIL_OK, dsmil_last_error());
  c_waiter w;
  REQUIRE(dsmil_checkpoint_create_async(n, "x", DSMIL_CHECKPOINT_MANUAL, nullptr, on_checkpoint,
                                        &w) == DSMIL_OK);
  const auto cp = w.checkpoint.get_future().get();
  REQUIRE(cp.status == DSMIL_OK);
  for (const char* a : {"a-0", "a-1", "a-2", "a-3"})
    agents.set(a, std::string("later state of ") + a);
  const auto before = agents.states();
  agents.restore_delay_ms = 1500;

  dsmil_rollback_request req{};
  req.checkpoint_id = cp.checkpoint_id;
  req.type = DSMIL_ROLLBACK_FULL;
  REQUIRE(dsmil_rollback_execute_async(n, &req, nullptr, on_rollback, &w) == DSMIL_OK);
  char saga[DSMIL_ID_LENGTH] = "", phase[32] = "";
  for (int i = 0; i < 400 && std::string(phase) != "execution"; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
    REQUIRE(dsmil_rollback_status(n, saga, phase) == DSMIL_OK);
  }
  REQUIRE(std::string(phase) == "execution");
  CHECK(dsmil_rollback_cancel(n) == DSMIL_OK);
  const auto rb = w.rollback.get_future().get();
  CHECK(rb.success == 0);
  CHECK(std::string(rb.outcome) == "preempted");
  CHECK(std::string(rb.saga_id) == saga);
  CHECK(std::string(rb.error_message).find("cancelled") != std::string::npos);
  agents.restore_delay_ms = 0;
  CHECK(agents.states() == before);
  CHECK(agents.all_running());
  dsmil_node_stop(n);
}
