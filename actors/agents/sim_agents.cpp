#include "actors/agents/sim_agents.hpp"

#include <condition_variable>
#include <cstring>
#include <mutex>
#include <deque>

#include <caf/all.hpp>

#include "actors/caf_glue.hpp"
#include "runtime/base/coding.hpp"
#include "runtime/devices/sim_driver.hpp"
#include "runtime/os/env.hpp"

namespace dsmil {

namespace {

using task_atom = caf::atom_constant<caf::atom("task")>;
using resume_atom = caf::atom_constant<caf::atom("resume")>;
using link_atom = caf::atom_constant<caf::atom("link")>;
using tick_atom = caf::atom_constant<caf::atom("tick")>;
using load_atom = caf::atom_constant<caf::atom("load")>;

constexpr char magic[4] = {'D', 'S', 'A', 'G'};
constexpr uint32_t format_version = 1;
constexpr size_t task_bytes = 4096;
constexpr size_t max_pending = 4096; ///< tasks waiting at a quiesced agent; older ones dropped
constexpr auto tick = std::chrono::milliseconds(10);

std::string encode(uint64_t tasks_done, const std::string& blob) {
  std::string out(sim_agent_host::header_size, '\0');
  std::memcpy(out.data(), magic, 4);
  coding::encode_fixed32(out.data() + 4, format_version);
  coding::encode_fixed64(out.data() + 8, tasks_done);
  return out + blob;
}

// The state a snapshot holds, checked against the agents' state size.
status decode(std::string_view bytes, size_t state_bytes, uint64_t& tasks_done, std::string& blob) {
  if (bytes.size() != sim_agent_host::header_size + state_bytes ||
      std::memcmp(bytes.data(), magic, 4) != 0 ||
      coding::decode_fixed32(bytes.data() + 4) != format_version)
    return make_error(errc::invalid_argument, "not a snapshot of a sim agent with state_kib = " +
                                                  std::to_string(state_bytes / 1024) + " (" +
                                                  std::to_string(bytes.size()) + " bytes)");
  tasks_done = coding::decode_fixed64(bytes.data() + 8);
  blob.assign(bytes.substr(sim_agent_host::header_size));
  return {};
}

} // namespace

// One agent's state. Its actor takes tasks and runs them under `mu`; the
// host's calls (from the node's threads) take `mu` too, so a snapshot or a
// restore falls between two tasks, never inside one.
struct agent_slot {
  std::mutex mu;
  std::condition_variable cancelled; ///< a stuck agent's quiesce waits on it
  std::string blob;
  uint64_t tasks_done = 0;
  bool quiesced = false;
  bool dirty = false;
  std::deque<uint64_t> pending;
  bool never_quiesce = false;
  bool fail_restore = false;
  std::string parked, resumed; ///< snapshots at the last park and resume, when recording
};

struct sim_agent_host::shared {
  caf::actor_system* sys = nullptr;
  env* os = nullptr;
  sim_agents_config cfg;
  std::vector<std::string> ids;
  std::vector<caf::actor> agents;
  caf::actor coordinator;
  std::unique_ptr<agent_slot[]> slots;
  std::atomic<bool> stopped{false};
  std::atomic<bool> recording{false};
  std::atomic<uint32_t> load{0};           ///< the coordinator's tasks per second
  std::atomic<uint64_t> task_seed{0x5eed}; ///< run_tasks() draws its tasks from it

  std::string file(size_t i) const { return cfg.state_dir + "/" + ids[i] + ".state"; }

  // REQUIRES: slots[i].mu held.
  void run(agent_slot& a, uint64_t seed) {
    const size_t n = a.blob.size() / task_bytes;
    if (n == 0) return;
    uint64_t r = seed;
    const size_t at = (splitmix64(r) % n) * task_bytes;
    for (size_t k = 0; k < task_bytes; k += 8) {
      const uint64_t v = splitmix64(r);
      std::memcpy(a.blob.data() + at + k, &v, 8);
    }
    ++a.tasks_done;
    a.dirty = true;
  }

  // Parks agent i: it accepts no work until resumed, and its state is left
  // where a killed process finds it. REQUIRES: slots[i].mu held.
  status park(size_t i) {
    auto& a = slots[i];
    a.quiesced = true;
    if (recording) a.parked = encode(a.tasks_done, a.blob);
    if (!a.dirty || cfg.state_dir.empty()) return {};
    const auto path = file(i), tmp = path + ".tmp";
    auto f = os->new_writable_file(tmp, 0644);
    if (!f) return f.err();
    auto err = (*f)->append(encode(a.tasks_done, a.blob));
    if (auto c = (*f)->close(); !err) err = c;
    if (!err) err = os->rename(tmp, path);
    if (!err) a.dirty = false;
    return err;
  }
};

namespace {

// An agent: takes the coordinator's tasks, or keeps them pending while
// quiesced; runs what is pending when resumed.
caf::behavior agent(caf::event_based_actor*, std::shared_ptr<sim_agent_host::shared> s, size_t i) {
  return {
      [s, i](task_atom, uint64_t seed) {
        auto& a = s->slots[i];
        std::lock_guard<std::mutex> lock(a.mu);
        if (!a.quiesced) return s->run(a, seed);
        a.pending.push_back(seed);
        if (a.pending.size() > max_pending) a.pending.pop_front();
      },
      [s, i](resume_atom) {
        auto& a = s->slots[i];
        std::lock_guard<std::mutex> lock(a.mu);
        while (!a.quiesced && !a.pending.empty()) {
          s->run(a, a.pending.front());
          a.pending.pop_front();
        }
      },
  };
}

struct coordinator_state {
  uint64_t next = 0;
  uint64_t seed = 0;
  uint32_t tasks_per_second = 0;
  bool ticking = false;
  static inline const char* name = "dsmil.agents";
};

caf::behavior coordinator(caf::stateful_actor<coordinator_state>* self,
                          std::vector<caf::actor> agents, uint32_t tasks_per_second,
                          uint64_t seed) {
  self->state.seed = seed;
  for (auto& a : agents)
    self->link_to(a);
  auto start_ticking = [self] {
    auto& st = self->state;
    if (st.tasks_per_second == 0 || st.ticking) return;
    st.ticking = true;
    self->send(self, tick_atom::value);
  };
  self->state.tasks_per_second = tasks_per_second;
  start_ticking();
  return {
      [=](tick_atom) {
        auto& st = self->state;
        if (st.tasks_per_second == 0) {
          st.ticking = false;
          return;
        }
        const uint64_t per_tick = std::max<uint64_t>(1, st.tasks_per_second / 100);
        for (uint64_t k = 0; k < per_tick; ++k)
          self->send(agents[st.next++ % agents.size()], task_atom::value, splitmix64(st.seed));
        self->delayed_send(self, tick, tick_atom::value);
      },
      [=](load_atom, uint32_t rate) {
        self->state.tasks_per_second = rate;
        start_ticking();
      },
      [=](link_atom, const caf::actor& a) { self->link_to(a); },
  };
}

} // namespace

result<std::shared_ptr<sim_agent_host>>
sim_agent_host::start(caf::actor_system& sys, const sim_agents_config& cfg, env& e) {
  auto s = std::make_shared<shared>();
  s->sys = &sys;
  s->os = &e;
  s->cfg = cfg;
  s->slots = std::make_unique<agent_slot[]>(cfg.count);
  const size_t state_bytes = size_t{cfg.state_kib} * 1024;
  if (!cfg.state_dir.empty())
    if (auto err = e.create_dirs(cfg.state_dir)) return err;
  for (uint32_t i = 0; i < cfg.count; ++i) {
    char id[32];
    std::snprintf(id, sizeof id, "agent-%02u", i);
    s->ids.push_back(id);
    auto& a = s->slots[i];
    if (!cfg.state_dir.empty() && e.exists(s->file(i))) {
      auto bytes = e.read_file(s->file(i));
      if (!bytes) return bytes.err();
      if (auto err = decode(*bytes, state_bytes, a.tasks_done, a.blob))
        return make_error(errc::config_error,
                          "agent state file " + s->file(i) + ": " + err.message +
                              "; it was made with other [agents] settings: remove " +
                              cfg.state_dir + " to start the agents afresh");
    } else {
      uint64_t r = cfg.seed ^ (0x9e3779b97f4a7c15ull * (i + 1));
      a.blob.resize(state_bytes);
      for (size_t k = 0; k + 8 <= state_bytes; k += 8) {
        const uint64_t v = splitmix64(r);
        std::memcpy(a.blob.data() + k, &v, 8);
      }
    }
  }
  for (uint32_t i = 0; i < cfg.count; ++i)
    s->agents.push_back(sys.spawn(agent, s, size_t{i}));
  s->coordinator = sys.spawn(coordinator, s->agents, cfg.tasks_per_second, cfg.seed);
  s->load = cfg.tasks_per_second;
  return std::shared_ptr<sim_agent_host>(new sim_agent_host(std::move(s)));
}

sim_agent_host::~sim_agent_host() {
  stop();
}

void sim_agent_host::stop() {
  if (s_->stopped.exchange(true)) return;
  caf::anon_send_exit(s_->coordinator, caf::exit_reason::user_shutdown);
}

void sim_agent_host::set_load(uint32_t tasks_per_second) {
  s_->load = tasks_per_second;
  caf::anon_send(s_->coordinator, load_atom::value, tasks_per_second);
}

uint32_t sim_agent_host::load() const {
  return s_->load;
}

void sim_agent_host::link_to(const caf::actor& a) {
  caf::anon_send(s_->coordinator, link_atom::value, a);
}

result<size_t> sim_agent_host::find(const std::string& agent) const {
  for (size_t i = 0; i < s_->ids.size(); ++i)
    if (s_->ids[i] == agent) return i;
  return make_error(errc::not_found,
                    "no agent '" + agent + "'; agents are agent-00 to " + s_->ids.back());
}

std::vector<agent_info> sim_agent_host::list() {
  std::vector<agent_info> out;
  for (size_t i = 0; i < s_->ids.size(); ++i) {
    auto& a = s_->slots[i];
    std::lock_guard<std::mutex> lock(a.mu);
    out.push_back(
        {s_->ids[i], a.quiesced ? agent_state::paused : agent_state::running, a.tasks_done});
  }
  return out;
}

status sim_agent_host::quiesce(const std::string& agent,
                               std::chrono::steady_clock::time_point deadline) {
  auto i = find(agent);
  if (!i) return i.err();
  auto& a = s_->slots[*i];
  std::unique_lock<std::mutex> lock(a.mu);
  // Stuck in a task: quiesced only by cancel_pending.
  if (a.never_quiesce && !a.cancelled.wait_until(lock, deadline, [&] { return a.quiesced; }))
    return make_error(errc::timeout, "agent " + agent + " is stuck in a task");
  return s_->park(*i);
}

status sim_agent_host::cancel_pending(const std::string& agent) {
  auto i = find(agent);
  if (!i) return i.err();
  auto& a = s_->slots[*i];
  std::lock_guard<std::mutex> lock(a.mu);
  a.pending.clear();
  auto err = s_->park(*i);
  a.cancelled.notify_all();
  return err;
}

status sim_agent_host::snapshot(const std::string& agent, const agent_sink& sink) {
  auto i = find(agent);
  if (!i) return i.err();
  std::string bytes;
  {
    auto& a = s_->slots[*i];
    std::lock_guard<std::mutex> lock(a.mu);
    bytes = encode(a.tasks_done, a.blob);
  }
  return sink(bytes);
}

status sim_agent_host::restore(const std::string& agent, std::string_view bytes) {
  auto i = find(agent);
  if (!i) return i.err();
  auto& a = s_->slots[*i];
  std::lock_guard<std::mutex> lock(a.mu);
  if (a.fail_restore)
    return make_error(errc::io_error, "agent " + agent + ": injected restore failure");
  if (!a.quiesced)
    return make_error(errc::busy, "agent " + agent + " is running; quiesce it first");
  uint64_t done = 0;
  std::string blob;
  if (auto err = decode(bytes, a.blob.size(), done, blob))
    return make_error(err.code, "agent " + agent + ": " + err.message);
  if (!s_->cfg.state_dir.empty())
    if (auto err = write_durable(*s_->os, s_->cfg.state_dir, s_->file(*i), bytes))
      return make_error(err.code, "agent " + agent + ": " + err.message);
  a.blob = std::move(blob);
  a.tasks_done = done;
  a.dirty = false;
  return {};
}

status sim_agent_host::resume(const std::string& agent) {
  auto i = find(agent);
  if (!i) return i.err();
  {
    auto& a = s_->slots[*i];
    std::lock_guard<std::mutex> lock(a.mu);
    if (s_->recording && a.quiesced) a.resumed = encode(a.tasks_done, a.blob);
    a.quiesced = false;
  }
  caf::anon_send(s_->agents[*i], resume_atom::value); // runs what is pending
  return {};
}

status sim_agent_host::set_never_quiesce(const std::string& agent, bool on) {
  auto i = find(agent);
  if (!i) return i.err();
  std::lock_guard<std::mutex> lock(s_->slots[*i].mu);
  s_->slots[*i].never_quiesce = on;
  return {};
}

status sim_agent_host::run_tasks(const std::string& agent, uint64_t n) {
  auto i = find(agent);
  if (!i) return i.err();
  auto& a = s_->slots[*i];
  std::lock_guard<std::mutex> lock(a.mu);
  if (a.quiesced) return make_error(errc::busy, "agent " + agent + " is quiesced");
  uint64_t r = s_->task_seed.fetch_add(1) * 0x9e3779b97f4a7c15ull;
  for (uint64_t k = 0; k < n; ++k)
    s_->run(a, splitmix64(r));
  return {};
}

void sim_agent_host::record_states(bool on) {
  s_->recording = on;
}

std::string sim_agent_host::parked_state(const std::string& agent) const {
  auto i = find(agent);
  if (!i) return {};
  std::lock_guard<std::mutex> lock(s_->slots[*i].mu);
  return s_->slots[*i].parked;
}

std::string sim_agent_host::resumed_state(const std::string& agent) const {
  auto i = find(agent);
  if (!i) return {};
  std::lock_guard<std::mutex> lock(s_->slots[*i].mu);
  return s_->slots[*i].resumed;
}

status sim_agent_host::set_fail_restore(const std::string& agent, bool on) {
  auto i = find(agent);
  if (!i) return i.err();
  std::lock_guard<std::mutex> lock(s_->slots[*i].mu);
  s_->slots[*i].fail_restore = on;
  return {};
}

} // namespace dsmil
